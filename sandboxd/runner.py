"""The runner: drives one execution from its exec stream to its final status.

It pumps the exec's output (grouping consecutive frames of a stream, appending to the
log, publishing to the live feed, enforcing the output cap), feeds stdin, runs the
watchdog (timeout and stop requests: TERM, then KILL), and settles how the command
ended. Recording the outcome is the registry's part (:mod:`sandboxd.executions`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from .config import LimitsConfig
from .engine import EXEC_MARKER, STDERR, STDOUT, Engine, ExecStream, FrameParser
from .errors import BadRequest, DockerError, NotFound, SandboxdError
from .events import group_runs, output_event, truncated_warning
from .execution import Execution
from .metrics import Metrics
from .output import StreamDecoder
from .protocol import Status

log = logging.getLogger(__name__)

_READ_SIZE = 1024 * 1024


class Runner:
    def __init__(self, engine: Engine, limits: LimitsConfig, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.limits = limits
        self.metrics = metrics

    async def run(self, ex: Execution) -> None:
        """Run ``ex`` until its output ends, then set how it ended (never raises but
        for cancellation; the caller records the outcome)."""
        try:
            with ex.abort_scope:
                async with self.engine.open_exec_stream(ex.exec_id, tty=ex.request.tty) as stream:
                    if self.metrics is not None:
                        self.metrics.exec_start.observe(time.monotonic() - ex.requested_at)
                    if ex.request.size is not None:
                        await self.resize(ex, *ex.request.size)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._watchdog, ex, nursery.cancel_scope)
                        if ex.request.stdin:
                            nursery.start_soon(self._feed_stdin, ex, stream)
                        await self._pump(ex, stream)
                        nursery.cancel_scope.cancel()
            if ex.error_code is not None:
                ex.end(Status.ERROR)
            else:
                await self.settle(ex)
        except SandboxdError as exc:
            ex.end(Status.ERROR, exc.message)
            ex.error_code = ex.error_code or exc.code
            log.warning("execution %s failed: %s", ex.id, exc.message)
        except Exception:
            log.exception("execution %s: internal error", ex.id)
            ex.end(Status.ERROR, "internal error")

    async def _pump(self, ex: Execution, stream: ExecStream) -> None:
        """Read the exec's frames until EOF and publish them, in order, per stream."""
        parser = FrameParser()
        decoders = {STDOUT: StreamDecoder(), STDERR: StreamDecoder()}
        cap = ex.request.max_output_bytes or self.limits.max_output_bytes
        total = 0
        tty = ex.request.tty
        while data := await stream.receive_some(_READ_SIZE):
            # Consecutive frames of one stream go out as one message: a process writing
            # in small pieces should not cost one WebSocket message per write. With a
            # TTY the engine sends the terminal's raw output, unframed.
            runs = [(STDOUT, [memoryview(data)])] if tty else group_runs(parser.feed(data))
            for sid, pieces in runs:
                if ex.truncated or sid not in decoders:
                    continue
                size = sum(len(p) for p in pieces)
                if total + size > cap:
                    pieces, size = _trim(pieces, cap - total), cap - total
                    ex.truncated = True
                total += size
                await self._publish_output(ex, sid, decoders[sid], pieces, size)
                if ex.truncated:
                    await self._flush(ex, decoders)
                    await ex.publish(truncated_warning(ex.id, ex.container_id))
                    ex.request_stop("output limit reached")
        await self._flush(ex, decoders)

    async def _publish_output(
        self, ex: Execution, sid: int, decoder: StreamDecoder, pieces: list[memoryview] | None, size: int = 0
    ) -> None:
        if pieces is not None:
            assert ex.log is not None
            ex.log.append(sid, ex.offsets[sid], pieces, size)
            ex.offsets[sid] += size
            if self.metrics is not None:
                (self.metrics.stdout_bytes if sid == STDOUT else self.metrics.stderr_bytes).inc(size)
        event = output_event(ex.id, ex.container_id, sid, decoder, pieces, size, text=ex.wants_text())
        if event is not None:
            await ex.publish(event)

    async def _flush(self, ex: Execution, decoders: dict[int, StreamDecoder]) -> None:
        """End of output: a partial UTF-8 character still held goes out (as base64)."""
        for sid, decoder in decoders.items():
            await self._publish_output(ex, sid, decoder, None)

    async def _feed_stdin(self, ex: Execution, stream: ExecStream) -> None:
        async with ex.stdin_receive:
            async for data in ex.stdin_receive:
                try:
                    if data is None:
                        await stream.send_eof()
                        return
                    await stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    return  # the process closed its stdin or ended; later writes get an error

    async def _watchdog(self, ex: Execution, pump_scope: trio.CancelScope) -> None:
        """Enforce the timeout and stop requests: TERM, KILL after a grace, then give up."""
        with trio.move_on_after(ex.request.timeout):
            await ex.stop_requested.wait()
        if not ex.stop_requested.is_set():
            ex.request_stop("timeout")
        grace = self.limits.kill_grace_seconds
        for sig in ("TERM", "KILL"):
            with trio.move_on_after(grace):
                # None found: the command may not have started yet; ask again until the
                # grace is over or its output ends (which cancels this watchdog).
                while (found := await self.signal(ex, sig)) == 0:
                    await trio.sleep(0.1)
                ex.unreachable = found is None and sig == "KILL"
                await trio.sleep(grace)
        # Something still holds the output open (a process that escaped its group and
        # cleared its environment, or one we could not reach): stop reading so the
        # execution can end.
        ex.reason = (ex.reason or "") + " (output still open after SIGKILL; stopped reading)"
        pump_scope.cancel()

    async def signal(self, ex: Execution, sig: str) -> int | None:
        """Signal the execution's processes: how many, or None if they could not be reached."""
        try:
            return await self.engine.signal_execution(
                ex.container_id, f"{EXEC_MARKER}={ex.id}", sig, user=ex.request.user
            )
        except SandboxdError as exc:
            log.warning("execution %s: could not send SIG%s: %s", ex.id, sig, exc.message)
            return None

    async def resize(self, ex: Execution, cols: int, rows: int) -> None:
        """Set the terminal size of a TTY execution (the process gets SIGWINCH)."""
        if not ex.request.tty:
            raise BadRequest(f"execution {ex.id} has no terminal to resize")
        if ex.finished.is_set():
            return
        try:
            await self.engine.exec_resize(ex.exec_id, cols, rows)
        except DockerError as exc:
            log.info("execution %s: resize failed: %s", ex.id, exc.message)

    async def settle(self, ex: Execution) -> None:
        """Output has ended: find out how the command ended."""
        info: dict[str, Any] = {}
        try:
            for _ in range(50):  # the exit code is recorded just after the output closes
                info = await self.engine.exec_inspect(ex.exec_id)
                if not info.get("Running"):
                    break
                await trio.sleep(0.02)
        except NotFound:
            info = {"Running": True}  # the exec went with its container; checked below
        code = info.get("ExitCode") if not info.get("Running") else None
        ex.exit_code = code
        if (code is None or code >= 128) and ex.stop_reason is None and (
            gone := await self._sandbox_gone(ex.container_id, patience=5 if code in (None, 137) else 1)
        ):
            # Killed from outside: the exit code says nothing about the command.
            ex.error_code = "SANDBOX_STOPPED"
            ex.end(Status.ERROR, gone)
            return
        reason = ex.stop_reason
        if reason == "timeout":
            ex.end(Status.TIMEOUT, f"timed out after {ex.request.timeout:g} s")
        elif reason is not None:
            ex.end(Status.KILLED, reason)
        elif code is None:
            ex.end(Status.ERROR, "the engine did not report an exit code")
        else:
            ex.end(Status.SUCCESS if code == 0 else Status.FAILED)
            # Exit 137 alone is any SIGKILL: the sandbox's OOM-kill count tells.
            if code != 0 and ex.oom_kills_before is not None and \
                    (await self.engine.oom_kills(ex.container_id) or 0) > ex.oom_kills_before:
                ex.reason = "oom"
        if ex.unreachable:
            ex.reason = f"{ex.reason}; its processes could not be reached to kill them and may still be running"

    async def _sandbox_gone(self, container_id: str, patience: int = 1) -> str | None:
        """Why the sandbox is no longer running, or None if it is.

        A SIGKILL to the whole container reaches the exec before the engine records the
        container as stopped, so a death by SIGKILL is looked at a few times, 0.1 s apart.
        """
        for attempt in range(patience):
            try:
                info = await self.engine.inspect_container(container_id)
            except NotFound:
                return "the sandbox was removed during the execution"
            if not (info.get("State") or {}).get("Running"):
                return "the sandbox stopped during the execution (killed from outside sandboxd?)"
            if attempt + 1 < patience:
                await trio.sleep(0.1)
        return None


def _trim(pieces: list[memoryview], limit: int) -> list[memoryview]:
    """The first ``limit`` bytes of ``pieces``."""
    out = []
    for piece in pieces:
        if limit <= 0:
            break
        out.append(piece[:limit])
        limit -= len(out[-1])
    return out


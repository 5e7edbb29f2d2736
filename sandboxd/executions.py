"""Executions: one ``docker exec`` each, streamed live to the session that started it
and through the log store to everyone else.

An :class:`Execution` belongs to the daemon, not to the session that started it: its
task runs in the :class:`ExecutionManager`'s nursery, so a client that disconnects
does not stop its command, and the final status is recorded either way.

Flow control. Output is read from the engine only as fast as the *starting* session
takes it: that session's live subscription is a small bounded channel, and the pump
awaits it, so a slow reader makes the process in the container block on write instead
of the daemon buffering. Every chunk is first appended to the execution's log
(:mod:`sandboxd.logstore`); other watchers read from there at their own pace
(:mod:`sandboxd.replay`), so they can neither slow the command down nor grow memory.
If the starting session goes away, nothing holds the command back; stopping and
completing never wait for it (:mod:`sandboxd.livefeed`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import trio

from .config import LimitsConfig
from .engine import EXEC_MARKER, STDERR, STDOUT, Engine, ExecStream, FrameParser
from .errors import (
    BadRequest,
    Conflict,
    DockerError,
    LimitExceeded,
    NotFound,
    SandboxdError,
    SandboxStopped,
)
from .events import STREAM_NAMES, ServerEvent, complete_data, output_event
from .livefeed import StarterFeed, Subscription  # noqa: F401 - Subscription: re-exported
from .logstore import ExecutionLog, ExecutionRecords
from .metrics import Metrics
from .output import StreamDecoder
from .plugin_types import ANONYMOUS, Principal
from .protocol import SIGNALS

log = logging.getLogger(__name__)

_READ_SIZE = 1024 * 1024

STATUS_RUNNING = "running"


@dataclass
class ExecutionRequest:
    container_id: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    stdin: bool = False
    timeout: float = 600.0
    user: str | None = None
    #: Remove the container when the execution ends (one-off sandbox).
    ephemeral: bool = False
    #: Output after which the command is stopped (None: the config's limit).
    max_output_bytes: int | None = None
    #: Who asked, and how many executions they may have running at once.
    principal: Principal = ANONYMOUS
    max_concurrent: int | None = None
    #: Paths written into the sandbox for this execution (``files``).
    uploaded: tuple[str, ...] = ()
    #: The sandbox's image, for the record.
    image: str = ""
    #: A pseudo-terminal (one raw output stream), and its first size (cols, rows).
    tty: bool = False
    size: tuple[int, int] | None = None
    #: Id of the client it belongs to (may talk to it without joining the sandbox).
    started_by: str | None = None
    #: When it was asked for (monotonic), for the start-latency metric.
    requested_at: float = field(default_factory=time.monotonic)


class Execution(StarterFeed):
    """One command running (or run) in a sandbox."""

    def __init__(self, execution_id: str, request: ExecutionRequest, exec_id: str) -> None:
        self.id = execution_id
        self.request = request
        self.container_id = request.container_id
        self.exec_id = exec_id
        self.status = STATUS_RUNNING
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.truncated = False
        self.started_at = time.time()
        #: When it was asked for (monotonic), for the start-latency metric.
        self.requested_at = request.requested_at
        self.finished_at: float | None = None
        StarterFeed.__init__(self)
        #: The output log; watchers other than the starter read it.
        self.log: ExecutionLog | None = None
        #: Bytes of each stream written to the log so far (stream id -> offset).
        self.offsets = {STDOUT: 0, STDERR: 0}
        self.finished = trio.Event()
        #: Id of the client it belongs to.
        self.started_by = request.started_by
        self._stop_reason: str | None = None
        self._stop = trio.Event()
        #: Set (with ``reason``) when the execution ended because something failed
        #: around it: ENGINE_UNAVAILABLE, SANDBOX_STOPPED, ...
        self.error_code: str | None = None
        #: The sandbox's OOM-kill count when the execution was created (None: unknown).
        self.oom_kills_before: int | None = None
        #: A stop could not reach the command's processes (no pid left to start a helper).
        self.unreachable = False
        self._abort_scope = trio.CancelScope()
        self._stdin_send, self._stdin_receive = trio.open_memory_channel[bytes | None](16)
        self._stdin_open = request.stdin

    @property
    def bytes_out(self) -> dict[str, int]:
        """Output bytes per stream (what the log holds)."""
        return {STREAM_NAMES[sid]: n for sid, n in self.offsets.items()}

    @property
    def duration_ms(self) -> int:
        end = self.finished_at or time.time()
        return int((end - self.started_at) * 1000)

    def summary_record(self) -> dict[str, Any]:
        """The execution as the log store describes it (see ``logstore._describe``)."""
        return {
            "executionId": self.id,
            "containerId": self.container_id,
            "image": self.request.image,
            "owner": self.request.principal.user,
            "command": list(self.request.command),
            "workdir": self.request.workdir,
            "status": self.status,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
            "bytes": self.bytes_out,
            "truncated": self.truncated,
            "errorCode": self.error_code,
        }

    def _warning(self, code: str, message: str) -> ServerEvent:
        return ServerEvent("warning", {
            "executionId": self.id, "containerId": self.container_id,
            "code": code, "message": message,
        })

    # --- control ----------------------------------------------------------------

    def abort(self, code: str, reason: str) -> None:
        """Stop following the command now, without touching the engine."""
        if self.error_code is None:
            self.error_code, self.reason = code, reason
        self._abort_scope.cancel()

    def request_stop(self, reason: str) -> None:
        """Stop the command (TERM, then KILL after the grace period); first reason wins."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        self.stop_waiting()  # stopping never waits on the starter's socket

    async def write_stdin(self, data: bytes) -> None:
        if not self._stdin_open:
            raise BadRequest(f"stdin of execution {self.id} is not open")
        try:
            await self._stdin_send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise Conflict(f"stdin of execution {self.id} is closed") from None

    async def close_stdin(self) -> None:
        if not self._stdin_open:
            raise BadRequest(f"stdin of execution {self.id} is not open")
        self._stdin_open = False
        try:
            await self._stdin_send.send(None)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._stdin_send.close()


class ExecutionManager:
    """Starts executions, owns their tasks, and remembers how they ended.

    Cancellation: the manager's nursery outlives every session; on daemon shutdown
    :meth:`stop_all` asks each execution to stop and the nursery waits for them.
    """

    def __init__(
        self,
        engine: Engine,
        limits: LimitsConfig,
        nursery: trio.Nursery,
        records: ExecutionRecords,
        on_finished: Callable[[Execution], Any] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.records = records
        self._nursery = nursery
        self._running: dict[str, Execution] = {}
        self._finished: OrderedDict[str, Execution] = OrderedDict()
        self._on_finished = on_finished
        #: None in code that runs executions without a daemon.
        self.metrics = metrics

    # --- queries ------------------------------------------------------------------

    def get(self, execution_id: str) -> Execution:
        ex = self.find(execution_id)
        if ex is None:
            raise NotFound.execution(execution_id)
        return ex

    def find(self, execution_id: str) -> Execution | None:
        """A running or recently finished execution (older ones: the log store)."""
        return self._running.get(execution_id) or self._finished.get(execution_id)

    def running_in(self, container_id: str) -> list[Execution]:
        return [ex for ex in self._running.values() if ex.container_id == container_id]

    def running(self) -> Iterable[Execution]:
        return list(self._running.values())

    # --- lifecycle ------------------------------------------------------------------

    async def create(self, request: ExecutionRequest) -> Execution:
        """Create the exec in the engine; the command starts with :meth:`start`."""
        if len(self._running) >= self.limits.max_executions:
            raise LimitExceeded(f"the daemon runs at most {self.limits.max_executions} executions at once")
        if len(self.running_in(request.container_id)) >= self.limits.max_executions_per_sandbox:
            raise LimitExceeded(
                f"a sandbox runs at most {self.limits.max_executions_per_sandbox} executions at once"
            )
        if request.max_concurrent is not None:
            mine = sum(1 for ex in self._running.values() if ex.request.principal.user == request.principal.user)
            if mine >= request.max_concurrent:
                raise LimitExceeded(f"you may run at most {request.max_concurrent} executions at once")
        execution_id = f"exec-{secrets.token_hex(8)}"
        env = {**request.env, EXEC_MARKER: execution_id}
        if request.tty:
            env.setdefault("TERM", "xterm-256color")
        try:
            exec_id = await self.engine.exec_create(
                request.container_id, request.command, env=env, workdir=request.workdir,
                user=request.user, stdin=request.stdin, tty=request.tty,
            )
        except DockerError as exc:
            if "is not running" in exc.message or "is paused" in exc.message:
                raise SandboxStopped(
                    "the sandbox is not running (stopped or killed outside sandboxd); remove it and create another"
                ) from None
            raise
        ex = Execution(execution_id, request, exec_id)
        ex.oom_kills_before = await self.engine.oom_kills(request.container_id)
        ex.log = ExecutionLog(self.records.log_path(ex.id))
        self.records.started(
            id=ex.id, container_id=ex.container_id, image=request.image, owner=request.principal.user,
            command=request.command, workdir=request.workdir, started_at=ex.started_at,
        )
        self._running[ex.id] = ex
        return ex

    def start(self, ex: Execution) -> None:
        """Start the command; watchers subscribed before this miss nothing."""
        ex.started_at = time.time()
        self._nursery.start_soon(self._run, ex, name=f"execution {ex.id}")

    def discard(self, ex: Execution, reason: str) -> None:
        """Forget an execution that was created but will never be started: it is
        recorded as an error, its live feed is closed, and nothing waits on it."""
        if ex.finished.is_set():
            return
        ex.status, ex.reason, ex.finished_at = "error", reason, time.time()
        self._running.pop(ex.id, None)
        ex._stdin_send.close()
        if ex.log is not None:
            ex.log.close()
        self.records.finished(
            id=ex.id, status=ex.status, exit_code=None, reason=reason, finished_at=ex.finished_at,
            stdout_bytes=0, stderr_bytes=0, truncated=False, log_bytes=0, error_code=None,
        )
        ex.unsubscribe_live()
        ex.finished.set()

    def stop_all(self, reason: str = "the daemon is shutting down") -> None:
        for ex in self.running():
            ex.request_stop(reason)

    async def _run(self, ex: Execution) -> None:
        try:
            with ex._abort_scope:
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
                ex.status = "error"
            else:
                await self._settle(ex)
        except SandboxdError as exc:
            ex.status, ex.reason = "error", exc.message
            ex.error_code = ex.error_code or exc.code
            log.warning("execution %s failed: %s", ex.id, exc.message)
        except Exception:
            log.exception("execution %s: internal error", ex.id)
            ex.status, ex.reason = "error", "internal error"
        finally:
            await self._complete(ex)

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
            runs = [(STDOUT, [memoryview(data)])] if tty else _runs(parser.feed(data))
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
                    await ex._publish(ex._warning(
                        "OUTPUT_TRUNCATED", f"output passed {cap} bytes; the command is stopped"))
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
            await ex._publish(event)

    async def _flush(self, ex: Execution, decoders: dict[int, StreamDecoder]) -> None:
        """End of output: a partial UTF-8 character still held goes out (as base64)."""
        for sid, decoder in decoders.items():
            await self._publish_output(ex, sid, decoder, None)

    async def _feed_stdin(self, ex: Execution, stream: ExecStream) -> None:
        async with ex._stdin_receive:
            async for data in ex._stdin_receive:
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
            await ex._stop.wait()
        if not ex._stop.is_set():
            ex.request_stop("timeout")
        grace = self.limits.kill_grace_seconds
        for sig in ("TERM", "KILL"):
            with trio.move_on_after(grace):
                # None found: the command may not have started yet; ask again until the
                # grace is over or its output ends (which cancels this watchdog).
                while (found := await self._signal(ex, sig)) == 0:
                    await trio.sleep(0.1)
                ex.unreachable = found is None and sig == "KILL"
                await trio.sleep(grace)
        # Something still holds the output open (a process that escaped its group and
        # cleared its environment, or one we could not reach): stop reading so the
        # execution can end.
        ex.reason = (ex.reason or "") + " (output still open after SIGKILL; stopped reading)"
        pump_scope.cancel()

    async def _signal(self, ex: Execution, sig: str) -> int | None:
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

    async def send_signal(self, ex: Execution, signal: str | None) -> None:
        """Client ``kill``: no signal (or TERM/KILL) stops the command; others are passed on."""
        if ex.finished.is_set():
            raise Conflict(f"execution {ex.id} has already finished")
        if signal is None or signal in ("TERM", "KILL"):
            ex.request_stop("killed")
            if signal == "KILL":
                await self._signal(ex, "KILL")
        else:
            assert signal in SIGNALS
            await self._signal(ex, signal)

    async def _settle(self, ex: Execution) -> None:
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
        if (code is None or code >= 128) and ex._stop_reason is None and (
            gone := await self._sandbox_gone(ex.container_id, patience=5 if code in (None, 137) else 1)
        ):
            # Killed from outside: the exit code says nothing about the command.
            ex.status, ex.error_code, ex.reason = "error", "SANDBOX_STOPPED", gone
            return
        reason = ex._stop_reason
        if reason == "timeout":
            ex.status, ex.reason = "timeout", f"timed out after {ex.request.timeout:g} s"
        elif reason is not None:
            ex.status, ex.reason = "killed", reason
        elif code is None:
            ex.status, ex.reason = "error", "the engine did not report an exit code"
        else:
            ex.status = "success" if code == 0 else "failed"
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

    def abort_all(self, code: str, reason: str) -> None:
        """End every running execution now, as ``error``: the engine is gone."""
        for ex in self.running():
            ex.abort(code, reason)

    async def _complete(self, ex: Execution) -> None:
        """Record the outcome, tell the live watcher, then run the finish callback.

        Cancellation: the record is written before the first checkpoint, so even a
        cancelled execution (daemon shutdown) ends with a status; the callback (which
        runs plugins and removes one-off sandboxes) is shielded and bounded.
        """
        ex.finished_at = time.time()
        if ex.status == STATUS_RUNNING:
            ex.status, ex.reason = "error", ex.reason or "interrupted"
        self._running.pop(ex.id, None)
        self._finished[ex.id] = ex
        while len(self._finished) > self.limits.finished_executions_kept:
            self._finished.popitem(last=False)
        ex._stdin_send.close()
        log_bytes = 0
        if ex.log is not None:
            log_bytes = ex.log.size
            ex.log.close()
        self.records.finished(
            id=ex.id, status=ex.status, exit_code=ex.exit_code, reason=ex.reason, finished_at=ex.finished_at,
            stdout_bytes=ex.bytes_out["stdout"], stderr_bytes=ex.bytes_out["stderr"], truncated=ex.truncated,
            log_bytes=log_bytes, error_code=ex.error_code,
        )
        log.info("execution %s %s exit=%s in %d ms", ex.id, ex.status, ex.exit_code, ex.duration_ms)
        if self.metrics is not None:
            self.metrics.executions.labels(ex.status).inc()
        try:
            await ex._publish(ServerEvent("execution-complete", complete_data(ex.summary_record())), wait=False)
        finally:
            ex.unsubscribe_live()
            ex.finished.set()
            if self._on_finished is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(30):
                    try:
                        await self._on_finished(ex)
                    except SandboxdError as exc:
                        log.warning("after execution %s: %s", ex.id, exc.message)


def _runs(frames: list[tuple[int, memoryview]]) -> list[tuple[int, list[memoryview]]]:
    """Group consecutive frames of the same stream (no copying)."""
    out: list[tuple[int, list[memoryview]]] = []
    for sid, payload in frames:
        if out and out[-1][0] == sid:
            out[-1][1].append(payload)
        else:
            out.append((sid, [payload]))
    return out


def _trim(pieces: list[memoryview], limit: int) -> list[memoryview]:
    """The first ``limit`` bytes of ``pieces``."""
    out = []
    for piece in pieces:
        if limit <= 0:
            break
        out.append(piece[:limit])
        limit -= len(out[-1])
    return out

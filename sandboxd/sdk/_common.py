"""Pieces both API flavours share: request builders and the consumer side of an execution."""

from __future__ import annotations

import codecs
import time
from typing import Any, Callable, Mapping, Sequence

from ..errors import SandboxdError
from ._core import ClientCore
from ._errors import DaemonUnavailable
from ._state import ExecState
from ._types import ExecutionResult, FileContent, OutputChunk, files_spec

#: Seconds without a frame from the daemon after which a request is preceded by a ping,
#: so a connection the daemon dropped meanwhile is replaced before a request is sent on it.
IDLE_PROBE_SECONDS = 15.0

TextCallback = Callable[[str], Any]
ChunkCallback = Callable[[OutputChunk], Any]


def create_request(
    image: str | None, labels: Mapping[str, str] | None, memory_bytes: int | None, cpus: float | None,
    pids_limit: int | None, ttl_seconds: float | None, placement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return _drop_none({"image": image, "labels": dict(labels) if labels else None, "memoryBytes": memory_bytes,
                       "cpus": cpus, "pidsLimit": pids_limit, "ttlSeconds": ttl_seconds,
                       "placement": dict(placement) if placement else None})


def execute_request(
    sandbox_id: str | None, command: Sequence[str] | str, *, image: str | None = None,
    env: Mapping[str, str] | None, workdir: str | None,
    timeout: float | None, files: Mapping[str, FileContent] | None, stdin: bool, tty: bool,
    cols: int | None, rows: int | None, user: str | None = None,
) -> dict[str, Any]:
    """An ``execute-command`` data object. A string command runs as ``/bin/sh -c STRING``."""
    if (sandbox_id is None) == (image is None):
        raise ValueError("give exactly one of sandbox_id and image")
    cmd: Any = command if isinstance(command, str) else [str(c) for c in command]
    return _drop_none({
        "containerId": sandbox_id, "image": image, "command": cmd, "env": dict(env) if env else None, "workdir": workdir,
        "timeout": timeout, "files": files_spec(files), "stdin": stdin or None, "tty": tty or None,
        "cols": cols if tty else None, "rows": rows if tty else None, "user": user,
    })


def stdin_payload(data: str | bytes) -> dict[str, Any]:
    import base64

    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return {"data": base64.b64encode(raw).decode("ascii"), "encoding": "base64"}


def kill_request(execution_id: str, signal: str | int) -> dict[str, Any]:
    return {"executionId": execution_id, "signal": signal}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class OutputSink:
    """Where a handle's chunks go once consumed: callbacks (text decoded across chunk
    boundaries) and, with ``capture``, the bytes the result will carry."""

    def __init__(self, on_stdout: TextCallback | None, on_stderr: TextCallback | None,
                 on_output: ChunkCallback | None, capture: bool) -> None:
        self.on_stdout, self.on_stderr, self.on_output = on_stdout, on_stderr, on_output
        self.capture = capture
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")}

    def deliver(self, chunk: OutputChunk) -> list[Any]:
        """Record ``chunk``; return what the callbacks returned (awaitables for async ones)."""
        if self.capture:
            self.out[chunk.stream] += chunk.data
        results = []
        if self.on_output is not None:
            results.append(self.on_output(chunk))
        text_cb = self.on_stdout if chunk.stream == "stdout" else self.on_stderr
        if text_cb is not None:
            text = self._decoders[chunk.stream].decode(chunk.data)
            if text:
                results.append(text_cb(text))
        return results

    def finish(self) -> list[Any]:
        """End of output: flush a character cut at the very end (as U+FFFD)."""
        results = []
        for stream, cb in (("stdout", self.on_stdout), ("stderr", self.on_stderr)):
            tail = self._decoders[stream].decode(b"", final=True)
            if cb is not None and tail:
                results.append(cb(tail))
        return results

    def result(self, st: ExecState) -> ExecutionResult:
        assert st.complete is not None
        return ExecutionResult.from_complete(st.complete, bytes(self.out["stdout"]), bytes(self.out["stderr"]))


def reason_of(exc: BaseException) -> str:
    """Why a connection was lost, for the errors of the requests it took with it."""
    return exc.message if isinstance(exc, SandboxdError) else f"the connection to the daemon broke ({exc})"


class Backoff:
    """Delays between reconnection attempts (0.1 s doubling to 2 s) until ``timeout``."""

    def __init__(self, core: ClientCore, timeout: float) -> None:
        self.core, self.timeout = core, timeout
        self.delay, self.give_up = 0.1, time.monotonic() + timeout

    def next_delay(self, error: BaseException) -> float:
        """How long to wait before the next attempt, after ``error``.

        Raises:
            DaemonUnavailable: out of time; every waiting request and execution gets it too.
        """
        message = error.message if isinstance(error, SandboxdError) else str(error)
        if time.monotonic() + self.delay > self.give_up:
            final = DaemonUnavailable(f"{message}; gave up reconnecting after {self.timeout:g} s")
            self.core.fail_all(final)
            raise final
        delay, self.delay = self.delay, min(self.delay * 2, 2.0)
        return delay


class HandleBase:
    """What the sync and async execution handles share."""

    def __init__(self, client: Any, state: ExecState, sink: OutputSink) -> None:
        self.client = client
        self._st = state
        self._sink = sink
        self._result: ExecutionResult | None = None

    @property
    def id(self) -> str:
        return self._st.id

    @property
    def sandbox_id(self) -> str:
        return self._st.container_id

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The ``warning`` events about this execution so far (``code``, ``message``)."""
        return list(self._st.warnings)

    @property
    def offsets(self) -> dict[str, int]:
        """Bytes of each stream received so far: pass as ``since`` to resume elsewhere."""
        return dict(self._st.offsets)

    def _queue_control(self, event: str, data: dict[str, Any]) -> None:
        """Queue a stdin/resize frame; raise the error an earlier one got, if any."""
        if (error := self._st.control_error) is not None:
            self._st.control_error = None
            raise error
        self._join_if_needed()
        self.client._conn.core.send(event, data, execution_id=self.id)

    def _join_if_needed(self) -> None:
        # The daemon takes stdin/kill/resize for an execution only from the session that
        # started it or one joined to its sandbox (after a reconnect or an attach, we are
        # neither).
        if not self._st.live:
            self.client._conn.core.ensure_joined(self.sandbox_id)

    def _finish(self) -> ExecutionResult:
        self._result = self._sink.result(self._st)
        self.client._conn.core.forget(self._st.id)
        return self._result

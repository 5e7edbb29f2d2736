"""One execution: a command running (or run) in a sandbox, and its state.

An :class:`Execution` belongs to the daemon, not to the session that started it: its
task runs in the registry's nursery (:mod:`sandboxd.executions`), driven by the runner
(:mod:`sandboxd.runner`), so a client that disconnects does not stop its command, and
the final status is recorded either way.

Flow control. Output is read from the engine only as fast as the *starting* client
takes it: its live feed (:class:`Subscription`) is a small bounded channel, and the
runner awaits it, so a slow reader makes the process in the container block on write
instead of the daemon buffering. Every chunk is first appended to the execution's log
(:mod:`sandboxd.logstore`); other watchers read from there at their own pace
(:mod:`sandboxd.replay`), so they can neither slow the command down nor grow memory.
If the starting client goes away, nothing holds the command back; stopping and
completing never wait for it (:mod:`sandboxd.livefeed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import trio

from .engine import STDERR, STDOUT
from .errors import BadRequest, Conflict
from .events import STREAM_NAMES
from .livefeed import StarterFeed, Subscription
from .logstore import ExecutionLog
from .plugin_types import ANONYMOUS, Principal
from .protocol import ExecutionRecord, Status, execution_record

__all__ = ["Execution", "ExecutionRequest", "Subscription"]

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
    """One command running (or run) in a sandbox.

    State moves one way: running, then (by :meth:`end`) one final status. Control from
    outside goes through :meth:`request_stop` (TERM, then KILL) and :meth:`abort`
    (stop following at once); stdin through :meth:`write_stdin`/:meth:`close_stdin`.
    """

    def __init__(self, execution_id: str, request: ExecutionRequest, exec_id: str) -> None:
        self.id = execution_id
        self.request = request
        self.container_id = request.container_id
        self.exec_id = exec_id
        self.status = Status.RUNNING
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
        #: Why a stop was asked for (the first reason wins), and the signal to the watchdog.
        self.stop_reason: str | None = None
        self.stop_requested = trio.Event()
        #: Set (with ``reason``) when the execution ended because something failed
        #: around it: ENGINE_UNAVAILABLE, SANDBOX_STOPPED, ...
        self.error_code: str | None = None
        #: The sandbox's OOM-kill count when the execution was created (None: unknown).
        self.oom_kills_before: int | None = None
        #: A stop could not reach the command's processes (no pid left to start a helper).
        self.unreachable = False
        #: Cancelled by :meth:`abort`; the runner reads the stream inside it.
        self.abort_scope = trio.CancelScope()
        self._stdin_send, self.stdin_receive = trio.open_memory_channel[bytes | None](16)
        self._stdin_open = request.stdin

    @property
    def bytes_out(self) -> dict[str, int]:
        """Output bytes per stream (what the log holds)."""
        return {STREAM_NAMES[sid]: n for sid, n in self.offsets.items()}

    @property
    def duration_ms(self) -> int:
        end = self.finished_at or time.time()
        return int((end - self.started_at) * 1000)

    def record(self) -> ExecutionRecord:
        """The execution as the protocol describes it (the store's records have the same shape)."""
        return execution_record(
            id=self.id, container_id=self.container_id, image=self.request.image,
            owner=self.request.principal.user, command=self.request.command, workdir=self.request.workdir,
            status=self.status, exit_code=self.exit_code, reason=self.reason, started_at=self.started_at,
            finished_at=self.finished_at, stdout_bytes=self.offsets[STDOUT], stderr_bytes=self.offsets[STDERR],
            truncated=self.truncated, error_code=self.error_code,
        )

    def end(self, status: Status, reason: str | None = None) -> None:
        """The final status (the first call after the command ended wins over none)."""
        self.status = status
        if reason is not None:
            self.reason = reason

    # --- the live feed (see :mod:`sandboxd.livefeed`) ------------------------------------

    # --- control ----------------------------------------------------------------------

    def abort(self, code: str, reason: str) -> None:
        """Stop following the command now, without touching the engine."""
        if self.error_code is None:
            self.error_code, self.reason = code, reason
        self.abort_scope.cancel()

    def request_stop(self, reason: str) -> None:
        """Stop the command (TERM, then KILL after the grace period); first reason wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_requested.set()
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

    def close_input(self) -> None:
        """The execution is over: later stdin gets an error."""
        self._stdin_send.close()

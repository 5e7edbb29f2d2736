"""The execution registry: admits executions, owns their tasks, remembers how they ended.

Executions (:mod:`sandboxd.execution`) are created here against the limits, started in
the registry's nursery, where the runner (:mod:`sandboxd.runner`) drives each one, and
completed here: the record is written, the live feed gets ``execution-complete``, and
the ``on_finished`` callback runs.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

import trio

from .config import LimitsConfig
from .engine import EXEC_MARKER, Engine
from .errors import Conflict, DockerError, LimitExceeded, NotFound, SandboxdError, SandboxStopped
from .events import event_of
from .execution import Execution, ExecutionRequest
from .livefeed import Subscription
from .logstore import ExecutionLog, ExecutionRecords
from .metrics import Metrics
from .protocol import SIGNALS, Status
from .protocol.server import ExecutionComplete
from .runner import Runner

__all__ = ["Execution", "ExecutionManager", "ExecutionRequest", "Subscription"]

log = logging.getLogger(__name__)


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
        self.runner = Runner(engine, limits, metrics)

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
        ex.end(Status.ERROR, reason)
        ex.finished_at = time.time()
        self._running.pop(ex.id, None)
        ex.close_input()
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
            await self.runner.run(ex)
        finally:
            await self._complete(ex)

    async def resize(self, ex: Execution, cols: int, rows: int) -> None:
        """Set the terminal size of a TTY execution (the process gets SIGWINCH)."""
        await self.runner.resize(ex, cols, rows)

    async def send_signal(self, ex: Execution, signal: str | None) -> None:
        """Client ``kill``: no signal (or TERM/KILL) stops the command; others are passed on."""
        if ex.finished.is_set():
            raise Conflict(f"execution {ex.id} has already finished")
        if signal is None or signal in ("TERM", "KILL"):
            ex.request_stop("killed")
            if signal == "KILL":
                await self.runner.signal(ex, "KILL")
        else:
            assert signal in SIGNALS
            await self.runner.signal(ex, signal)

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
        if ex.status == Status.RUNNING:
            ex.end(Status.ERROR, ex.reason or "interrupted")
        self._running.pop(ex.id, None)
        self._finished[ex.id] = ex
        while len(self._finished) > self.limits.finished_executions_kept:
            self._finished.popitem(last=False)
        ex.close_input()
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
            self.metrics.executions.labels(str(ex.status)).inc()
        try:
            await ex.publish(event_of(ExecutionComplete.of(ex.record())), wait=False)
        finally:
            ex.unsubscribe_live()
            ex.finished.set()
            if self.limits.kill_leftovers_on_exit and not (ex.request.tty or ex.request.ephemeral) and ex.status in (
                    "success", "failed"):  # a one-off sandbox is removed anyway
                with trio.CancelScope(shield=True), trio.move_on_after(30):
                    await self.runner.signal(ex, "KILL")  # what it left behind (docs/daemon.md, leftovers)
            if self._on_finished is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(30):
                    try:
                        await self._on_finished(ex)
                    except SandboxdError as exc:
                        log.warning("after execution %s: %s", ex.id, exc.message)



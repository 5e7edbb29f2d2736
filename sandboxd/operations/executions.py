"""Use cases on executions: start one, talk to it, follow it, list them.

:meth:`ExecutionOperations.start_execution` is the one way a command starts, whichever
front end asked. Its order is the API's guarantee, not something a caller arranges:

1. resolve the sandbox (or create a one-off one), authorize, validate the command,
   upload ``files``, apply limits from config and plugins, create the exec;
2. subscribe the starter's live feed (a bounded channel: the command runs no faster
   than the starter reads it);
3. call ``accept`` (the front end replies ``command-accepted`` and takes the feed);
4. announce the execution to every other client that joined the sandbox (their inboxes);
5. start the command, then fire ``sandboxd_execution_started``.

If anything up to 4 fails, it is undone: the created exec is recorded as never started
(no dangling running record), and a one-off sandbox is removed (no orphan container).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

import trio

from ..errors import Forbidden, NotFound, SandboxdError
from ..events import ServerEvent, event_of, truncated_warning
from ..execguard import check_sizes, checked_workdir, resolve_program
from ..execution import Execution, ExecutionRequest, Subscription
from ..plugin_types import ExecutionInfo, ExecutionLimits, Principal, RunResult, SandboxInfo
from ..protocol.server import ExecutionComplete, ExecutionDetached, Offsets
from ..replay import replay
from .sandboxes import SandboxOperations
from .watchers import LiveFeed

if TYPE_CHECKING:
    from ..protocol import ExecuteCommand
    from .watchers import Watcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """An execution just admitted, with its starter's live feed in place.

    ``feed`` is a bounded channel of output events ending with ``execution-complete``;
    whoever holds it must read it (or call ``execution.unsubscribe_live()``), since the
    command is paced by it. It is None only if the execution is already over.
    """

    execution: Execution
    feed: Subscription | None


#: ``accept`` callback of :meth:`ExecutionOperations.start_execution`.
Accept = Callable[[Started], Awaitable[None]]


class ExecutionOperations(SandboxOperations):
    async def start_execution(
        self,
        principal: Principal,
        request: ExecuteCommand,
        *,
        starter: Watcher | None = None,
        accept: Accept | None = None,
        binary: bool = False,
    ) -> Started:
        """Admit and start ``request`` for ``principal``; see the module docstring.

        ``starter``: the client the execution belongs to (it may send stdin, resize and
        kill it without joining the sandbox); it is not announced to. ``accept`` is
        awaited with the execution and its live feed before the command starts: the
        WebSocket session sends ``command-accepted`` there and starts forwarding the
        feed. Without ``accept``, a ``starter`` gets the feed through its inbox (REST's
        "output to session X"); with neither, the caller reads ``Started.feed`` itself
        (REST's "wait for the result"). ``binary``: the feed's reader wants only raw
        bytes (lets the pump skip UTF-8 work).

        Raises:
            SandboxdError: any refusal on the way (NOT_FOUND, FORBIDDEN,
                COMMAND_REJECTED, LIMIT_EXCEEDED, ...); nothing is left behind.
        """
        received = time.monotonic()
        check_sizes(request.command, request.env, request.workdir, self.config)
        user = self._user(request.user)
        one_off = request.container_id is None
        if one_off:
            sandbox = await self.create_sandbox(principal, request.image, ephemeral=True)
        else:
            assert request.container_id is not None
            sandbox = await self.open_sandbox(principal, request.container_id, "execute")
        ex: Execution | None = None
        started = False
        try:
            if one_off:
                await self.plugins.authorize(principal, "execute", sandbox.info())
            workdir = await checked_workdir(self.engine, sandbox, request.workdir, self.config)
            await self.plugins.validate_command(
                principal, sandbox.info(), request.command, dict(request.env), workdir,
                resolve=lambda: resolve_program(self.engine, sandbox, request.command[0], workdir, self.config))
            uploaded: list[str] = []
            if request.files:
                await self.plugins.authorize(principal, "upload", sandbox.info())
                uploaded = await self._upload(sandbox, request.files, workdir)
            limits = await self.execution_limits(principal, request.timeout, interactive=request.tty)
            ex = await self.executions.create(ExecutionRequest(
                container_id=sandbox.id,
                command=request.command,
                env=dict(request.env),
                workdir=workdir,
                stdin=request.stdin or request.tty,
                timeout=limits.timeout_seconds,
                tty=request.tty,
                size=request.size,
                user=user,
                ephemeral=one_off,
                max_output_bytes=limits.max_output_bytes,
                principal=principal,
                max_concurrent=limits.max_concurrent,
                image=sandbox.image,
                uploaded=tuple(uploaded),
                started_by=starter.id if starter is not None else None,
                requested_at=received,
            ))
            result = Started(ex, ex.subscribe_live(binary=binary))
            if accept is not None:
                await accept(result)
            elif starter is not None and result.feed is not None:
                starter.deliver(LiveFeed(ex, result.feed))
            self.watchers.announce(ex, exclude=starter.id if starter is not None else None)
            self.executions.start(ex)
            started = True
        finally:
            if not started:
                with trio.CancelScope(shield=True), trio.move_on_after(30):
                    await self._undo_start(ex, sandbox.id if one_off else None)
        await self.plugins.execution_started(self.execution_info(ex))
        return result

    def _user(self, asked: str | None) -> str | None:
        """The user an execution runs as: the configured one, or ``asked`` if allowed.

        Raises:
            Forbidden: ``asked`` is not in ``sandbox.allowed_users``.
        """
        default = self.config.sandbox.user or None
        if asked is None or asked == default or asked in self.config.sandbox.allowed_users:
            return asked or default
        raise Forbidden(f"user {asked!r} is not allowed here (sandbox.allowed_users)")

    async def _undo_start(self, ex: Execution | None, one_off_sandbox: str | None) -> None:
        if ex is not None:
            self.executions.discard(ex, "the execution could not be started")
        if one_off_sandbox is not None and (sandbox := self.sandboxes.get(one_off_sandbox)) is not None:
            try:
                await self.sandboxes.remove(sandbox)
            except SandboxdError as exc:
                log.warning("could not remove one-off sandbox %s: %s", sandbox.id[:12], exc.message)

    async def execution_limits(
        self, principal: Principal, requested_timeout: float | None, *, interactive: bool = False
    ) -> ExecutionLimits:
        """Limits for an execution; an interactive (TTY) one defaults to the longest timeout."""
        c = self.config.limits
        default = c.max_exec_timeout_seconds if interactive else c.exec_timeout_seconds
        limits = ExecutionLimits(
            timeout_seconds=min(requested_timeout or default, c.max_exec_timeout_seconds),
            max_output_bytes=c.max_output_bytes,
            max_concurrent=c.max_executions,
        )
        return await self.plugins.execution_limits(principal, limits, c)

    # --- talking to a running execution ----------------------------------------------

    async def visible_execution(
        self, principal: Principal, execution_id: str, action: str, watcher: Watcher | None = None
    ) -> Execution:
        """An execution ``watcher`` started or follows (its sandbox joined), if policy
        allows ``action`` on its sandbox. Without a watcher (REST), the principal must
        be the one who started it. Others' executions look exactly like unknown ones.
        """
        ex = self.executions.get(execution_id)
        if watcher is not None:
            if ex.started_by != watcher.id and ex.container_id not in watcher.joined:
                raise NotFound.execution(execution_id)
        elif ex.request.principal.user != principal.user:
            raise NotFound.execution(execution_id)
        sandbox = self.sandboxes.get(ex.container_id)
        if sandbox is not None:
            try:
                await self.plugins.authorize(principal, action, sandbox.info())
            except NotFound:
                raise NotFound.execution(execution_id) from None
        return ex

    async def write_stdin(self, principal: Principal, execution_id: str, data: bytes,
                          watcher: Watcher | None = None) -> None:
        ex = await self.visible_execution(principal, execution_id, "stdin", watcher)
        await ex.write_stdin(data)

    async def close_stdin(self, principal: Principal, execution_id: str, watcher: Watcher | None = None) -> None:
        ex = await self.visible_execution(principal, execution_id, "stdin", watcher)
        await ex.close_stdin()

    async def resize(self, principal: Principal, execution_id: str, cols: int, rows: int,
                     watcher: Watcher | None = None) -> None:
        ex = await self.visible_execution(principal, execution_id, "stdin", watcher)
        await self.executions.resize(ex, cols, rows)

    async def signal_execution(self, principal: Principal, execution_id: str, signal: str | None,
                               watcher: Watcher | None = None) -> Execution:
        """``kill``: no signal (or TERM/KILL) stops the command; others are passed on."""
        ex = await self.visible_execution(principal, execution_id, "kill", watcher)
        await self.executions.send_signal(ex, signal)
        return ex

    # --- records and logs ---------------------------------------------------------------

    def record(self, execution_id: str) -> dict[str, Any] | None:
        """An execution's record, live or stored; None if unknown."""
        ex = self.executions.find(execution_id)
        return ex.record() if ex else self.records.get(execution_id)

    async def attachable(self, principal: Principal, execution_id: str) -> dict[str, Any]:
        """The record of an execution ``principal`` may watch; others look unknown."""
        record = self.record(execution_id)
        if record is None:
            raise NotFound.execution(execution_id)
        sandbox = self.sandboxes.get(record["containerId"])
        info = sandbox.info() if sandbox else _record_sandbox(record)
        try:
            await self.plugins.authorize(principal, "join", info)
        except NotFound:
            raise NotFound.execution(execution_id) from None
        return record

    async def list_executions(self, principal: Principal, container_id: str | None) -> list[dict[str, Any]]:
        """Records of recent executions (of one sandbox) that ``principal`` may see."""
        if container_id is not None:
            sandbox = await self.open_sandbox(principal, container_id, "view")
            rows = self.records.list(sandbox.id)
        else:
            rows = self.records.list()
        return [r for r in rows if await self.plugins.allowed(principal, "view", _record_sandbox(r))]

    def offsets(self, execution_id: str) -> dict[int, int]:
        """Bytes of each stream logged so far (empty if the execution is not in memory)."""
        ex = self.executions.find(execution_id)
        return dict(ex.offsets) if ex else {}

    async def replay_output(
        self, execution_id: str, container_id: str, since: dict[int, int], *,
        send: Callable[[ServerEvent], Awaitable[None]], text: bool, follow: bool,
    ) -> bool:
        """Send an execution's output from ``since`` on, from its log (see
        :func:`sandboxd.replay.replay`); True once a finished execution was sent whole."""
        ex = self.executions.find(execution_id)
        live = ex.log if ex is not None and not ex.finished.is_set() else None
        return await replay(
            path=self.log_path(execution_id), execution_id=execution_id, container_id=container_id,
            live=live, since=since, send=send, text=text, follow=follow,
        )

    def replay_ending(self, execution_id: str, record: dict[str, Any], complete: bool) -> list[ServerEvent]:
        """What a follower is told after :meth:`replay_output` returned ``complete``: the
        ``OUTPUT_TRUNCATED`` warning if the output was cut, then ``execution-complete``;
        or, when it stopped before the end, ``execution-detached`` with the offsets reached."""
        container_id = record["containerId"]
        if not complete:
            offsets = self.offsets(execution_id)
            return [event_of(ExecutionDetached(
                execution_id=execution_id, container_id=container_id, offsets=Offsets.of(offsets)))]
        record = self.record(execution_id) or record
        warning = [truncated_warning(execution_id, container_id)] if record["truncated"] else []
        return [*warning, event_of(ExecutionComplete.of(record))]

    def log_path(self, execution_id: str) -> Path:
        return self.records.log_path(execution_id)

    # --- plugins' view ------------------------------------------------------------------

    def execution_info(self, ex: Execution) -> ExecutionInfo:
        """``ex`` as plugins see it, with ``run_in_sandbox`` and ``send_event``."""
        sandbox = self.sandboxes.get(ex.container_id)
        info = ExecutionInfo(
            id=ex.id,
            sandbox=sandbox.info() if sandbox else SandboxInfo(ex.container_id, "", None),
            principal=ex.request.principal,
            command=ex.request.command,
            workdir=ex.request.workdir,
            uploaded=tuple(ex.request.uploaded),
        )
        if ex.finished.is_set():
            info.status, info.exit_code, info.duration_ms = ex.status, ex.exit_code, ex.duration_ms
            info.truncated, info.bytes_out = ex.truncated, ex.bytes_out

        async def run_in_sandbox(command: Sequence[str], *, env: dict[str, str] | None = None,
                                 workdir: str | None = None) -> RunResult:
            return await self.run_quietly(ex.container_id, command, env=env, workdir=workdir or ex.request.workdir,
                                          user=ex.request.user)

        async def send_event(name: str, data: dict[str, Any]) -> None:
            data = {"executionId": ex.id, "containerId": ex.container_id, **data}
            for watcher in self.watchers:
                if watcher.id == ex.started_by or ex.container_id in watcher.joined:
                    await watcher.notify(name, data)

        info.run_in_sandbox = run_in_sandbox
        info.send_event = send_event
        return info

    async def execution_finished(self, ex: Execution) -> None:
        """After an execution ended: mark its sandbox active, fire
        ``sandboxd_execution_finished``, remove a one-off sandbox."""
        if (sandbox := self.sandboxes.get(ex.container_id)) is not None:
            sandbox.last_active = time.monotonic()
        await self.plugins.execution_finished(self.execution_info(ex))
        if ex.request.ephemeral:
            sandbox = self.sandboxes.get(ex.container_id)
            if sandbox is not None:
                try:
                    await self.sandboxes.remove(sandbox)
                except SandboxdError as exc:
                    log.warning("could not remove one-off sandbox %s: %s", ex.container_id[:12], exc.message)


def _record_sandbox(record: dict[str, Any]) -> SandboxInfo:
    """The sandbox of a recorded execution, as policy sees it (it may be gone)."""
    return SandboxInfo(record["containerId"], record.get("image") or "", record.get("owner"))

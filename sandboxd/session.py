"""One WebSocket connection: read client events, dispatch them, stream output back.

A session is transport-agnostic: it is given ``receive`` and ``send`` callables, so it
never sees the WebSocket object, and its nursery holds one forwarding task per
execution it watches. Errors raised anywhere below dispatch are turned into ``error``
events here, in one place; the session then carries on with the next frame.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from typing import Any, Awaitable, Callable

import trio

from . import files
from . import protocol as p
from .errors import BadRequest, InternalError, NotFound, SandboxdError
from .events import ServerEvent, complete_data
from .executions import Execution, ExecutionRequest, Subscription
from .hub import Hub
from .plugin_types import ANONYMOUS, Principal, SandboxInfo
from .replay import replay

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class SessionClosed(Exception):
    """The client went away; raised by ``receive`` and ``send``."""


class Session:
    def __init__(
        self,
        hub: Hub,
        send: Callable[[str | bytes], Awaitable[None]],
        receive: Callable[[], Awaitable[str | bytes]],
        peer: str = "?",
        principal: Principal = ANONYMOUS,
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.id = f"s{next(_ids)}"
        self.peer = peer
        self._send = send
        self._receive = receive
        #: Containers this session joined, by full id.
        self.joined: set[str] = set()
        #: Whether this session speaks the seed's alias event names (fixed by its first join).
        self.alias: bool | None = None
        #: Whether output goes out as binary frames (``configure-session``).
        self.binary_output = False
        #: Executions this session started and gets live.
        self._live: dict[str, Execution] = {}
        #: Executions this session follows through their logs, by id.
        self._tailers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Serve the client until it disconnects.

        Cancellation: cancelling ``run`` ends every forwarding task; executions this
        session started keep running in the hub and just lose this watcher.
        """
        self.hub.sessions.add(self)
        log.info("session %s opened from %s as %s", self.id, self.peer, self.principal.user)
        await self.hub.plugins.notify(
            "sandboxd_session_opened", session_id=self.id, principal=self.principal, peer=self.peer
        )
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    while True:
                        message = await self._receive()
                        await self.handle(message)
                except SessionClosed:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.hub.sessions.discard(self)
            for ex in list(self._live.values()):
                ex.unsubscribe_live()
            self._live.clear()
            log.info("session %s closed", self.id)
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.hub.plugins.notify("sandboxd_session_closed", session_id=self.id, principal=self.principal)

    def follows(self, ex: Execution) -> bool:
        """Whether this client gets ``ex``'s output: it started it, joined its sandbox or attached."""
        return ex.started_by == self.id or ex.container_id in self.joined or ex.id in self._tailers

    async def send_event(self, event: str, data: dict[str, Any]) -> None:
        await self._send(p.encode(event, data, alias=bool(self.alias)))

    async def try_send_event(self, event: str, data: dict[str, Any], timeout: float = 5.0) -> None:
        """Send from outside the session's own tasks; a gone or stuck client is skipped."""
        with trio.move_on_after(timeout):
            try:
                await self.send_event(event, data)
            except SessionClosed:
                pass

    async def handle(self, text: str | bytes) -> None:
        """Handle one frame; every error becomes an ``error`` event with a stable code."""
        ref = None
        try:
            message = p.parse_client_message(text)
            ref = message.ref
            await self._dispatch(message)
        except SandboxdError as exc:
            if ref is None:
                ref = p.peek_ref(text)
            await self.send_event("error", p.with_ref({"message": exc.message, "code": exc.code}, ref))
        except (SessionClosed, trio.Cancelled):
            raise
        except Exception:
            log.exception("session %s: internal error handling a frame", self.id)
            err = InternalError("internal error; see the daemon's log")
            await self.send_event("error", p.with_ref({"message": err.message, "code": err.code}, ref))

    async def _dispatch(self, m: p.ClientMessage) -> None:
        hub, me = self.hub, self.principal
        if isinstance(m, p.ExecuteCommand):
            await self._execute(m)
        elif isinstance(m, p.StdinData):
            ex = await self._visible_execution(m.execution_id, "stdin")
            await ex.write_stdin(m.data)
        elif isinstance(m, p.Resize):
            ex = await self._visible_execution(m.execution_id, "stdin")
            await hub.executions.resize(ex, m.cols, m.rows)
        elif isinstance(m, p.StdinClose):
            ex = await self._visible_execution(m.execution_id, "stdin")
            await ex.close_stdin()
        elif isinstance(m, p.Kill):
            ex = await self._visible_execution(m.execution_id, "kill")
            await hub.executions.send_signal(ex, m.signal)
            await self.send_event("kill-sent", p.with_ref({"executionId": ex.id, "signal": m.signal or "TERM"}, m.ref))
        elif isinstance(m, p.JoinContainer):
            await self._join(m)
        elif isinstance(m, p.LeaveContainer):
            sandbox = await hub.sandboxes.resolve(m.container_id)
            if sandbox.id not in self.joined:
                raise NotFound.sandbox(m.container_id)
            self.joined.discard(sandbox.id)
            for ex in hub.executions.running_in(sandbox.id):
                if (scope := self._tailers.pop(ex.id, None)) is not None:
                    scope.cancel()
            await self.send_event("container-left", p.with_ref({"containerId": sandbox.id}, m.ref))
        elif isinstance(m, p.CreateContainer):
            sandbox = await hub.create_sandbox(me, m.image, request=m)
            await self.send_event("container-created", p.with_ref({"containerId": sandbox.id, "image": sandbox.image}, m.ref))
        elif isinstance(m, p.InspectContainer):
            sandbox = await hub.open_sandbox(me, m.container_id, "view")
            running = [ex.id for ex in hub.executions.running_in(sandbox.id)]
            idle = 0.0 if running else time.monotonic() - sandbox.last_active
            await self.send_event("container-info", p.with_ref({
                **sandbox.describe(), "limits": sandbox.limits, "runningExecutions": running,
                "idleSeconds": round(idle, 3)}, m.ref))
        elif isinstance(m, p.ListContainers):
            containers = [s.describe() for s in await hub.visible_sandboxes(me)]
            await self.send_event("containers", p.with_ref({"containers": containers}, m.ref))
        elif isinstance(m, p.RemoveContainer):
            sandbox = await hub.open_sandbox(me, m.container_id, "remove")
            for ex in hub.executions.running_in(sandbox.id):
                ex.request_stop("the sandbox was removed")
            await hub.sandboxes.remove(sandbox)
            await self.send_event("container-removed", p.with_ref({"containerId": sandbox.id}, m.ref))
        elif isinstance(m, p.Ping):
            await self.send_event("pong", p.with_ref({}, m.ref))
        elif isinstance(m, p.UploadFiles):
            sandbox = await hub.open_sandbox(me, m.container_id, "upload")
            paths = await self._upload(sandbox, m.files, m.workdir)
            await self.send_event("files-uploaded", p.with_ref({"containerId": sandbox.id, "paths": paths}, m.ref))
        elif isinstance(m, p.DownloadFile):
            sandbox = await hub.open_sandbox(me, m.container_id, "download")
            content = await files.download(hub.engine, sandbox, m.path, user=hub.config.sandbox.user or None,
                                           max_bytes=hub.config.limits.download_max_bytes)
            await self.send_event("file-downloaded", p.with_ref({
                "containerId": sandbox.id, "path": m.path, "size": len(content),
                "content": base64.b64encode(content).decode("ascii"), "encoding": "base64",
            }, m.ref))
        elif isinstance(m, p.AttachExecution):
            record = await self._attachable(m.execution_id)
            if (scope := self._tailers.pop(m.execution_id, None)) is not None:
                scope.cancel()  # a second attach restarts from the new offsets
            if (live := self._live.pop(m.execution_id, None)) is not None:
                live.unsubscribe_live()  # the attach replaces our live feed: one copy only
            await self.send_event("execution-attached", p.with_ref({
                "executionId": record["executionId"], "containerId": record["containerId"],
                "status": record["status"], "since": {"stdout": m.since.get(1, 0), "stderr": m.since.get(2, 0)},
            }, m.ref))
            self._start_tail(m.execution_id, dict(m.since), follow=m.follow)
        elif isinstance(m, p.ListExecutions):
            if m.container_id is not None:
                sandbox = await hub.open_sandbox(me, m.container_id, "view")
                rows = hub.records.list(sandbox.id)
            else:
                rows = hub.records.list()
            visible = [r for r in rows if await hub.plugins.allowed(me, "view", _record_sandbox(r))]
            await self.send_event("executions", p.with_ref({"executions": visible}, m.ref))
        elif isinstance(m, p.ConfigureSession):
            self.binary_output = m.binary_output
            for ex in self._live.values():
                if ex.live is not None:
                    ex.live.binary = m.binary_output
            await self.send_event("session-configured", p.with_ref({
                "binaryOutput": m.binary_output, "user": me.user, "roles": sorted(me.roles)}, m.ref))
        else:  # pragma: no cover - the parser only returns the types above
            raise BadRequest(f"unhandled message {type(m).__name__}")

    async def _join(self, m: p.JoinContainer) -> None:
        sandbox = await self.hub.open_sandbox(self.principal, m.container_id, "join")
        if self.alias is None:
            self.alias = m.alias
        self.joined.add(sandbox.id)
        if m.alias:
            await self.send_event("container-joined", p.with_ref({"containerId": sandbox.id}, m.ref))
        else:
            await self.send_event("container-joined", p.with_ref({"containerId": sandbox.id, "success": True}, m.ref))
        for ex in self.hub.executions.running_in(sandbox.id):
            self.watch(ex, owner=False)

    async def _execute(self, m: p.ExecuteCommand) -> None:
        hub, me = self.hub, self.principal
        received = time.monotonic()
        if m.container_id is not None:
            sandbox = await hub.open_sandbox(me, m.container_id, "execute")
        else:
            sandbox = await hub.create_sandbox(me, m.image, ephemeral=True)
        try:
            if m.container_id is None:
                await hub.plugins.authorize(me, "execute", sandbox.info())
            await hub.plugins.validate_command(me, sandbox.info(), m.command, dict(m.env), m.workdir)
            uploaded: list[str] = []
            if m.files:
                await hub.plugins.authorize(me, "upload", sandbox.info())
                uploaded = await self._upload(sandbox, m.files, m.workdir)
            limits = await hub.execution_limits(me, m.timeout, interactive=m.tty)
            request = ExecutionRequest(
                container_id=sandbox.id,
                command=m.command,
                env=dict(m.env),
                workdir=m.workdir,
                stdin=m.stdin or m.tty,
                timeout=limits.timeout_seconds,
                tty=m.tty,
                size=m.size,
                user=hub.config.sandbox.user or None,
                ephemeral=m.container_id is None,
                max_output_bytes=limits.max_output_bytes,
                principal=me,
                max_concurrent=limits.max_concurrent,
                image=sandbox.image,
                uploaded=tuple(uploaded),
            )
            ex = await hub.executions.create(request)
        except BaseException:
            if m.container_id is None:  # the one-off sandbox was for nothing
                with trio.CancelScope(shield=True):
                    await hub.sandboxes.remove(sandbox)
            raise
        ex.started_by = self.id
        ex.requested_at = received
        # Subscribe everyone before the command starts, so nobody misses a byte; the
        # starter's forwarder waits for ``accepted`` so command-accepted goes out first.
        self.watch(ex, owner=True)
        for other in hub.watchers_of(sandbox.id):
            if other is not self:
                other.watch(ex, owner=False)
        hub.executions.start(ex)
        await self.send_event(
            "command-accepted", p.with_ref({"executionId": ex.id, "containerId": sandbox.id}, m.ref)
        )
        ex.accepted.set()
        await hub.plugins.notify("sandboxd_execution_started", execution=hub.execution_info(ex))

    def watch(self, ex: Execution, *, owner: bool) -> None:
        """Start sending ``ex``'s output to this client.

        The starter gets the live channel (with backpressure on the command); anyone
        else follows the execution's log from where it is now.
        """
        if self._nursery is None:
            return
        if owner:
            sub = ex.subscribe_live(binary=self.binary_output)
            if sub is not None:
                self._live[ex.id] = ex
                self._nursery.start_soon(self._forward, ex, sub)
        elif ex.id not in self._tailers and ex.id not in self._live and ex.log is not None:
            self._start_tail(ex.id, dict(ex.offsets), follow=True, announce=True)

    async def _forward(self, ex: Execution, sub: Subscription) -> None:
        await ex.accepted.wait()  # command-accepted goes out first
        try:
            async with sub.receive_channel:
                async for event in sub.receive_channel:
                    await self._send_event_object(event)
        except SessionClosed:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            self._live.pop(ex.id, None)

    async def _send_event_object(self, event: ServerEvent) -> None:
        frame = event.encoded(bool(self.alias), self.binary_output)
        if frame is not None:
            await self._send(frame)

    def _start_tail(self, execution_id: str, since: dict[int, int], *, follow: bool, announce: bool = False) -> None:
        scope = trio.CancelScope()
        self._tailers[execution_id] = scope
        assert self._nursery is not None
        self._nursery.start_soon(self._tail, execution_id, since, follow, scope, announce)

    async def _tail(
        self, execution_id: str, since: dict[int, int], follow: bool, scope: trio.CancelScope, announce: bool
    ) -> None:
        """Follow one execution's log; then say how it ended (or where we stopped).

        ``announce``: first tell the client what it is about to watch (``execution-started``),
        for sessions that joined the sandbox rather than asked for this execution.
        """
        hub = self.hub
        try:
            with scope:
                ex = hub.executions.find(execution_id)
                record = ex.summary_record() if ex else hub.records.get(execution_id)
                if record is None:
                    return
                live = ex.log if ex is not None and not ex.finished.is_set() else None
                if announce:
                    await self.send_event("execution-started", {
                        "executionId": execution_id, "containerId": record["containerId"],
                        "command": record["command"], "owner": record["owner"],
                        "since": {"stdout": since.get(1, 0), "stderr": since.get(2, 0)},
                    })
                complete = await replay(
                    path=hub.records.log_path(execution_id), execution_id=execution_id,
                    container_id=record["containerId"], live=live, since=since,
                    send=self._send_event_object, text=not self.binary_output, follow=follow,
                )
                if complete:
                    ex = hub.executions.find(execution_id)
                    record = ex.summary_record() if ex else hub.records.get(execution_id) or record
                    if record["truncated"]:
                        await self.send_event("warning", {
                            "executionId": execution_id, "containerId": record["containerId"],
                            "code": "OUTPUT_TRUNCATED", "message": "the output reached the limit and was cut"})
                    await self.send_event("execution-complete", complete_data(record))
                else:
                    offsets = dict(ex.offsets) if ex else {}
                    await self.send_event("execution-detached", {
                        "executionId": execution_id, "containerId": record["containerId"],
                        "offsets": {"stdout": offsets.get(1, 0), "stderr": offsets.get(2, 0)}})
        except SessionClosed:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            if self._tailers.get(execution_id) is scope:
                del self._tailers[execution_id]

    async def _upload(self, sandbox: Any, spec: Any, workdir: str | None) -> list[str]:
        workdir = workdir or await files.workdir_of(self.hub.engine, sandbox)
        if not workdir.startswith("/"):
            raise BadRequest("upload-files: workdir must be an absolute path")
        parsed = files.parse_files(spec, workdir, self.hub.config.limits)
        return await files.upload_files(self.hub.engine, sandbox, parsed, workdir=workdir,
                                        user=self.hub.config.sandbox.user or None)

    async def _attachable(self, execution_id: str) -> dict[str, Any]:
        """The record of an execution this principal may watch; others look unknown."""
        ex = self.hub.executions.find(execution_id)
        record = ex.summary_record() if ex else self.hub.records.get(execution_id)
        if record is None:
            raise NotFound.execution(execution_id)
        sandbox = self.hub.sandboxes.get(record["containerId"])
        info = sandbox.info() if sandbox else _record_sandbox(record)
        try:
            await self.hub.plugins.authorize(self.principal, "join", info)
        except NotFound:
            raise NotFound.execution(execution_id) from None
        return record

    async def _visible_execution(self, execution_id: str, action: str) -> Execution:
        """An execution this session started or watches, if policy allows ``action``.

        Others' executions look exactly like unknown ones.
        """
        ex = self.hub.executions.get(execution_id)
        if ex.started_by != self.id and ex.container_id not in self.joined:
            raise NotFound.execution(execution_id)
        sandbox = self.hub.sandboxes.get(ex.container_id)
        if sandbox is not None:
            try:
                await self.hub.plugins.authorize(self.principal, action, sandbox.info())
            except NotFound:
                raise NotFound.execution(execution_id) from None
        return ex


def _record_sandbox(record: dict[str, Any]) -> SandboxInfo:
    """The sandbox of a recorded execution, as policy sees it (it may be gone)."""
    return SandboxInfo(record["containerId"], record.get("image") or "", record.get("owner"))

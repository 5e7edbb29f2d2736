"""The session core every stateful front end shares: one handler per client message.

A front end's connection (a native WebSocket, a Socket.IO socket) subclasses
:class:`SessionCore` and provides the transport: :meth:`~Following.emit` (a server
event by name and data) and :meth:`~Following.emit_output` (an output event, which may
go out in binary form). It parses its frames into :mod:`sandboxd.protocol` messages
and passes each to :meth:`SessionCore.handle`. Each handler maps one message to one
call of :class:`~sandboxd.operations.Operations` and its result to a server event;
errors become ``error`` events with a stable code, here, in one place.
"""

from __future__ import annotations

import base64
import itertools
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import trio

from .. import protocol as p
from ..errors import InternalError, RateLimited, SandboxdError
from ..operations import Operations, Started, Watcher
from ..plugin_types import ANONYMOUS, Principal
from ..protocol import server as s
from ..ratelimit import TokenBucket
from .following import Following, SessionClosed
from .transfers import TransferHandlers

log = logging.getLogger(__name__)

_ids = itertools.count(1)

Handler = Callable[[Any, Any], Awaitable[None]]


class SessionCore(TransferHandlers, Following):
    """One connected client: its identity, its settings, and the message handlers."""

    def __init__(self, ops: Operations, peer: str = "?", principal: Principal = ANONYMOUS,
                 *, session_id: str | None = None) -> None:
        super().__init__()
        self.ops = ops
        self.principal = principal
        #: Unique among connected clients (a Socket.IO socket's is its ``socket.id``).
        self.id = session_id or f"s{next(_ids)}"
        self.peer = peer
        #: How this client is known to the operations layer (joined sandboxes, inbox).
        self.watcher = Watcher(self.id, principal, self.notify, tails=self._tailers)
        #: Whether this session speaks the seed's alias event names (fixed by its first join).
        self.alias: bool | None = None
        #: Whether output goes out as binary frames (``configure-session``).
        self.binary_output = False
        server = ops.config.server
        self._bucket = TokenBucket(server.requests_per_second, server.request_burst)

    @property
    def joined(self) -> set[str]:
        return self.watcher.joined

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """Register the session and run its inbox; on exit, end all its following.

        Cancellation: leaving ends every forwarding task; executions this session
        started keep running and just lose this watcher.
        """
        plugins = self.ops.plugins
        self.ops.watchers.add(self.watcher)
        log.info("session %s opened from %s as %s", self.id, self.peer, self.principal.user)
        await plugins.session_opened(self.id, self.principal, self.peer)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.drain_inbox)
                try:
                    yield
                except SessionClosed:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.ops.watchers.remove(self.watcher)
            self.close_live()
            log.info("session %s closed", self.id)
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await plugins.session_closed(self.id, self.principal)

    async def notify(self, name: str, data: dict[str, Any], timeout: float = 5.0) -> None:
        """Send from outside the session's own tasks; a gone or stuck client is skipped."""
        with trio.move_on_after(timeout):
            try:
                await self.emit(name, data)
            except SessionClosed:
                pass

    async def handle(self, message: p.ClientMessage) -> None:
        """Handle one message; every error becomes an ``error`` event with a stable code."""
        if not isinstance(message, _UNMETERED) and not self._bucket.take():
            await self.report(RateLimited(
                f"more than {self.ops.config.server.requests_per_second:g} requests a second; slow down"), message.ref)
            return
        try:
            await _HANDLERS[type(message)](self, message)
        except SandboxdError as exc:
            await self.report(exc, message.ref)
        except (SessionClosed, trio.Cancelled):
            raise
        except Exception:
            log.exception("session %s: internal error handling a message", self.id)
            await self.report(InternalError("internal error; see the daemon's log"), message.ref)

    async def reply(self, name: str, data: dict[str, Any], ref: p.Ref) -> None:
        """Send an event given by name and data (file transfers); typed messages go
        through :meth:`send`."""
        await self.emit(name, p.with_ref(data, ref))

    async def report(self, exc: SandboxdError, ref: p.Ref) -> None:
        await self.send(s.Error(message=exc.message, code=exc.code, ref=s.ref(ref)))

    # --- handlers: one per client message ------------------------------------------------

    async def on_execute(self, m: p.ExecuteCommand) -> None:
        async def accept(started: Started) -> None:
            ex = started.execution
            await self.send(s.CommandAccepted(execution_id=ex.id, container_id=ex.container_id, ref=s.ref(m.ref)))
            self.follow_live(ex, started.feed)

        await self.ops.start_execution(self.principal, m, starter=self.watcher, accept=accept,
                                       binary=self.binary_output)

    async def on_stdin(self, m: p.StdinData) -> None:
        await self.ops.write_stdin(self.principal, m.execution_id, m.data, self.watcher)

    async def on_resize(self, m: p.Resize) -> None:
        await self.ops.resize(self.principal, m.execution_id, m.cols, m.rows, self.watcher)

    async def on_stdin_close(self, m: p.StdinClose) -> None:
        await self.ops.close_stdin(self.principal, m.execution_id, self.watcher)

    async def on_kill(self, m: p.Kill) -> None:
        ex = await self.ops.signal_execution(self.principal, m.execution_id, m.signal, self.watcher)
        await self.send(s.KillSent(execution_id=ex.id, signal=m.signal or "TERM", ref=s.ref(m.ref)))

    async def on_join(self, m: p.JoinContainer) -> None:
        sandbox, running = await self.ops.join_sandbox(self.watcher, m.container_id)
        if self.alias is None:
            self.alias = m.alias
        await self.send(s.ContainerJoined(container_id=sandbox.id, ref=s.ref(m.ref)), alias=m.alias)
        for ex in running:
            if ex.id not in self._tailers and ex.id not in self._live and ex.log is not None:
                self.start_tail(ex.id, dict(ex.offsets), follow=True, announce=True)

    async def on_leave(self, m: p.LeaveContainer) -> None:
        sandbox, running = await self.ops.leave_sandbox(self.watcher, m.container_id)
        for execution_id in running:
            self.stop_tail(execution_id)
        await self.send(s.ContainerLeft(container_id=sandbox.id, ref=s.ref(m.ref)))

    async def on_create(self, m: p.CreateContainer) -> None:
        sandbox = await self.ops.create_sandbox(self.principal, m.image, request=m)
        await self.send(s.ContainerCreated(container_id=sandbox.id, image=sandbox.image, ref=s.ref(m.ref)))

    async def on_inspect(self, m: p.InspectContainer) -> None:
        d = await self.ops.inspect_sandbox(self.principal, m.container_id)
        await self.send(msgspec.convert({
            **d.sandbox.describe(), "limits": d.sandbox.limits, "runningExecutions": d.running,
            "idleSeconds": d.idle_seconds, "ref": s.ref(m.ref)}, s.ContainerInfo))

    async def on_list_containers(self, m: p.ListContainers) -> None:
        containers = [sandbox.describe() for sandbox in await self.ops.list_sandboxes(self.principal)]
        await self.send(s.Containers(containers=containers, ref=s.ref(m.ref)))

    async def on_list_engines(self, m: p.ListEngines) -> None:
        engines = [e.describe() for e in await self.ops.list_engines(self.principal)]
        await self.send(s.Engines(engines=engines, ref=s.ref(m.ref)))

    async def on_list_images(self, m: p.ListImages) -> None:
        images = await self.ops.list_images(self.principal)
        await self.send(s.Images(images=[s.ImageEngines(k, list(v)) for k, v in images.items()], ref=s.ref(m.ref)))

    async def on_remove(self, m: p.RemoveContainer) -> None:
        sandbox = await self.ops.remove_sandbox(self.principal, m.container_id)
        await self.send(s.ContainerRemoved(container_id=sandbox.id, ref=s.ref(m.ref)))

    async def on_ping(self, m: p.Ping) -> None:
        await self.send(s.Pong(ref=s.ref(m.ref)))

    async def on_upload(self, m: p.UploadFiles) -> None:
        sandbox, paths = await self.ops.upload(self.principal, m.container_id, m.files, m.workdir)
        await self.send(s.FilesUploaded(container_id=sandbox.id, paths=paths, ref=s.ref(m.ref)))

    async def on_download(self, m: p.DownloadFile) -> None:
        sandbox, content = await self.ops.download(self.principal, m.container_id, m.path)
        await self.send(s.FileDownloaded(
            container_id=sandbox.id, path=m.path, size=len(content),
            content=base64.b64encode(content).decode("ascii"), ref=s.ref(m.ref)))

    async def on_attach(self, m: p.AttachExecution) -> None:
        record = await self.ops.attachable(self.principal, m.execution_id)
        self.stop_tail(m.execution_id)  # a second attach restarts from the new offsets
        self.stop_live(m.execution_id)  # the attach replaces our live feed: one copy only
        await self.send(s.ExecutionAttached(
            execution_id=record["executionId"], container_id=record["containerId"], status=record["status"],
            since=s.Offsets.of(m.since), ref=s.ref(m.ref)))
        self.start_tail(m.execution_id, dict(m.since), follow=m.follow)

    async def on_list_executions(self, m: p.ListExecutions) -> None:
        rows = await self.ops.list_executions(self.principal, m.container_id)
        await self.send(s.Executions(executions=list(rows), ref=s.ref(m.ref)))

    async def on_configure(self, m: p.ConfigureSession) -> None:
        self.set_binary(m.binary_output)
        await self.send(s.SessionConfigured(
            binary_output=m.binary_output, user=self.principal.user, roles=sorted(self.principal.roles),
            session_id=self.id, ref=s.ref(m.ref)))


#: Messages the rate limit does not count: cheap, and bounded by backpressure anyway.
_UNMETERED = (p.StdinData, p.StdinClose, p.Resize, p.Ping)

_HANDLERS: dict[type, Handler] = {
    p.ExecuteCommand: SessionCore.on_execute,
    p.StdinData: SessionCore.on_stdin,
    p.Resize: SessionCore.on_resize,
    p.StdinClose: SessionCore.on_stdin_close,
    p.Kill: SessionCore.on_kill,
    p.JoinContainer: SessionCore.on_join,
    p.LeaveContainer: SessionCore.on_leave,
    p.CreateContainer: SessionCore.on_create,
    p.InspectContainer: SessionCore.on_inspect,
    p.ListContainers: SessionCore.on_list_containers,
    p.ListEngines: SessionCore.on_list_engines,
    p.ListImages: SessionCore.on_list_images,
    p.RemoveContainer: SessionCore.on_remove,
    p.Ping: SessionCore.on_ping,
    p.UploadFiles: SessionCore.on_upload,
    p.DownloadFile: SessionCore.on_download,
    p.AttachExecution: SessionCore.on_attach,
    p.ListExecutions: SessionCore.on_list_executions,
    p.ConfigureSession: SessionCore.on_configure,
    p.UploadStart: SessionCore.on_upload_start,
    p.UploadChunk: SessionCore.on_upload_chunk,
    p.UploadEnd: SessionCore.on_upload_end,
    p.DownloadStart: SessionCore.on_download_start,
}

"""One WebSocket connection: read client events, dispatch them, stream output back.

A session is transport-agnostic: it is given ``receive`` and ``send`` callables, so it
never sees the WebSocket object, and its nursery holds one forwarding task per
execution it watches. Errors raised anywhere below dispatch are turned into ``error``
events here, in one place; the session then carries on with the next frame.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Awaitable, Callable

import trio

from . import protocol as p
from .errors import BadRequest, InternalError, NotFound, SandboxdError
from .executions import Execution, ExecutionRequest, Subscription
from .hub import Hub

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
    ) -> None:
        self.hub = hub
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
        self._watching: dict[str, Execution] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Serve the client until it disconnects.

        Cancellation: cancelling ``run`` ends every forwarding task; executions this
        session started keep running in the hub and just lose this watcher.
        """
        self.hub.sessions.add(self)
        log.info("session %s opened from %s", self.id, self.peer)
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
            for ex in list(self._watching.values()):
                ex.unsubscribe(self)
            self._watching.clear()
            log.info("session %s closed", self.id)

    async def send_event(self, event: str, data: dict[str, Any]) -> None:
        await self._send(p.encode(event, data, alias=bool(self.alias)))

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
        hub = self.hub
        if isinstance(m, p.ExecuteCommand):
            await self._execute(m)
        elif isinstance(m, p.StdinData):
            await self._visible_execution(m.execution_id).write_stdin(m.data)
        elif isinstance(m, p.StdinClose):
            await self._visible_execution(m.execution_id).close_stdin()
        elif isinstance(m, p.Kill):
            ex = self._visible_execution(m.execution_id)
            await hub.executions.send_signal(ex, m.signal)
            await self.send_event("kill-sent", p.with_ref({"executionId": ex.id, "signal": m.signal or "TERM"}, m.ref))
        elif isinstance(m, p.JoinContainer):
            await self._join(m)
        elif isinstance(m, p.LeaveContainer):
            sandbox = await hub.sandboxes.resolve(m.container_id)
            self.joined.discard(sandbox.id)
            for ex in list(self._watching.values()):
                sub = ex.subscriptions.get(self)
                if ex.container_id == sandbox.id and sub is not None and not sub.owner:
                    ex.unsubscribe(self)
                    self._watching.pop(ex.id, None)
            await self.send_event("container-left", p.with_ref({"containerId": sandbox.id}, m.ref))
        elif isinstance(m, p.CreateContainer):
            sandbox = await hub.sandboxes.create(m.image)
            await self.send_event("container-created", p.with_ref({"containerId": sandbox.id, "image": sandbox.image}, m.ref))
        elif isinstance(m, p.ListContainers):
            containers = [s.describe() for s in hub.sandboxes.list()]
            await self.send_event("containers", p.with_ref({"containers": containers}, m.ref))
        elif isinstance(m, p.RemoveContainer):
            sandbox = await hub.sandboxes.resolve(m.container_id)
            for ex in hub.executions.running_in(sandbox.id):
                ex.request_stop("the sandbox was removed")
            await hub.sandboxes.remove(sandbox)
            await self.send_event("container-removed", p.with_ref({"containerId": sandbox.id}, m.ref))
        elif isinstance(m, p.Ping):
            await self.send_event("pong", p.with_ref({}, m.ref))
        elif isinstance(m, p.ConfigureSession):
            self.binary_output = m.binary_output
            for ex in self._watching.values():
                if (sub := ex.subscriptions.get(self)) is not None:
                    sub.binary = m.binary_output
            await self.send_event("session-configured", p.with_ref({"binaryOutput": m.binary_output}, m.ref))
        else:  # pragma: no cover - the parser only returns the types above
            raise BadRequest(f"unhandled message {type(m).__name__}")

    async def _join(self, m: p.JoinContainer) -> None:
        sandbox = await self.hub.sandboxes.resolve(m.container_id)
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
        hub = self.hub
        limits = hub.config.limits
        timeout = min(m.timeout or limits.exec_timeout_seconds, limits.max_exec_timeout_seconds)
        if m.container_id is not None:
            sandbox = await hub.sandboxes.resolve(m.container_id)
        else:
            sandbox = await hub.sandboxes.create(m.image, ephemeral=True)
        request = ExecutionRequest(
            container_id=sandbox.id,
            command=m.command,
            env=dict(m.env),
            workdir=m.workdir,
            stdin=m.stdin,
            timeout=timeout,
            user=hub.config.sandbox.user or None,
            ephemeral=m.container_id is None,
        )
        try:
            ex = await hub.executions.create(request)
        except BaseException:
            if request.ephemeral:
                with trio.CancelScope(shield=True):
                    await hub.sandboxes.remove(sandbox)
            raise
        ex.started_by = self.id
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

    def watch(self, ex: Execution, *, owner: bool) -> None:
        """Start forwarding ``ex``'s events to this client."""
        if self._nursery is None:
            return
        sub = ex.subscribe(
            self, owner=owner, budget=self.hub.config.limits.observer_buffer_bytes, binary=self.binary_output
        )
        if sub is None:
            return
        self._watching[ex.id] = ex
        self._nursery.start_soon(self._forward, ex, sub)

    async def _forward(self, ex: Execution, sub: Subscription) -> None:
        if sub.owner:
            await ex.accepted.wait()  # command-accepted goes out first
        try:
            async with sub.receive_channel:
                async for event in sub.receive_channel:
                    sub.taken(event)
                    frame = event.encoded(bool(self.alias), self.binary_output)
                    if frame is not None:
                        await self._send(frame)
        except SessionClosed:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            self._watching.pop(ex.id, None)

    def _visible_execution(self, execution_id: str) -> Execution:
        """An execution this session started or can watch; others look unknown."""
        ex = self.hub.executions.get(execution_id)
        if ex.started_by != self.id and ex.container_id not in self.joined:
            raise NotFound.execution(execution_id)
        return ex

"""Engine.IO sessions on trio: one bounded outbox and inbox, whichever transport.

An :class:`EngineSocket` outlives the HTTP requests that carry it (long-polling is many
requests), so its task runs in a nursery of the server's, not in a request's. The
transports only move packets between the network and the socket's two channels:

- the **outbox** holds whole items (a Socket.IO packet and its attachments stay
  together) and is small: a sender waits when it is full, so a client that stops
  polling (or reading its WebSocket) stops the command that writes to it, and the
  daemon's memory stays bounded;
- the **inbox** holds client messages; a POST waits while it is full.

The heartbeat pings every ``ping_interval`` and closes the socket when no pong comes
within ``ping_timeout``, as the reference server does.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable

import trio

from . import engineio as eio

log = logging.getLogger(__name__)

#: Items (one Socket.IO packet each, with its attachments) waiting to go out.
OUTBOX_ITEMS = 16
#: Client messages waiting to be handled.
INBOX_MESSAGES = 16


@dataclass(frozen=True)
class EngineSettings:
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    #: Most bytes of packets one polling response carries (more wait for the next poll).
    poll_budget: int = 1_000_000


class SocketClosed(Exception):
    """The Engine.IO session is closed (the client left, timed out or misbehaved)."""


def new_sid() -> str:
    """A random session id: 20 URL-safe characters, like the reference server's."""
    return secrets.token_urlsafe(15)


class EngineSocket:
    """One Engine.IO session.

    Cancellation: :meth:`run` owns the heartbeat and the handler; :meth:`close` (from
    any task) ends it, wakes any waiting poll, and fails pending sends.
    """

    def __init__(self, sid: str, settings: EngineSettings, transport: str) -> None:
        self.sid = sid
        self.settings = settings
        #: "polling" or "websocket" (after an upgrade, or from the start).
        self.transport = transport
        self.close_reason: str | None = None
        self._out_send, self._out_recv = trio.open_memory_channel[list[eio.Packet]](OUTBOX_ITEMS)
        self._in_send, self._in_recv = trio.open_memory_channel[str | bytes](INBOX_MESSAGES)
        self._closed = trio.Event()
        self._pong = trio.Event()
        self._scope: trio.CancelScope | None = None
        # Polling state: one GET and one POST at a time.
        self.poll_active = False
        self.post_active = False
        self._poll_scope: trio.CancelScope | None = None
        #: Set once the client sent ``2probe`` on a WebSocket: polls get ``6`` (noop).
        self.upgrading = False
        self.websocket_attached = False

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def run(self, handler: Callable[[EngineSocket], Awaitable[None]]) -> None:
        """Heartbeat and ``handler`` until the socket closes (or the handler returns)."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self.closed:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._heartbeat)

                async def handle() -> None:
                    try:
                        await handler(self)
                    except SocketClosed:
                        pass
                    self.close("server closed the session")

                nursery.start_soon(handle)
        finally:
            self.close("session ended")

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.close_reason = reason
        log.debug("engine.io %s closed: %s", self.sid, reason)
        self._closed.set()
        self._out_send.close()
        self._in_send.close()
        if self._poll_scope is not None:
            self._poll_scope.cancel()
        if self._scope is not None:
            self._scope.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- what the Socket.IO layer uses -------------------------------------------------

    async def send(self, item: list[eio.Packet]) -> None:
        """Queue one item (packets that must stay together); waits while the outbox is
        full. Raises SocketClosed."""
        try:
            await self._out_send.send(item)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise SocketClosed from None

    async def receive(self) -> str | bytes:
        """The next message from the client. Raises SocketClosed."""
        try:
            return await self._in_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise SocketClosed from None

    # --- what the transports use -------------------------------------------------------

    async def on_packet(self, kind: str, data: str | bytes) -> None:
        """A packet from the client (either transport).

        Raises:
            eio.EngineIOError: a packet the client must not send here (the caller closes).
        """
        if kind == eio.MESSAGE:
            try:
                await self._in_send.send(data)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise SocketClosed from None
        elif kind == eio.PONG:
            self._pong.set()
        elif kind == eio.CLOSE:
            self.close("client closed the session")
        elif kind == eio.NOOP:
            pass
        else:
            raise eio.EngineIOError(f"unexpected packet type {kind}")

    async def next_items(self, timeout: float) -> list[eio.Packet]:
        """For one poll: wait (at most ``timeout``) for something to send, then take
        what is queued, up to the poll budget. Empty if nothing came; ``[NOOP]`` when
        an upgrade or close interrupted the wait."""
        packets: list[eio.Packet] = []
        with trio.CancelScope() as scope:
            self._poll_scope = scope
            with trio.move_on_after(timeout):
                try:
                    packets.extend(await self._out_recv.receive())
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    pass
        self._poll_scope = None
        if self.closed and not packets:
            return [eio.CLOSE]
        if scope.cancelled_caught:
            return [eio.NOOP]
        size = sum(len(p) for p in packets)
        while size < self.settings.poll_budget:
            try:
                item = self._out_recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            packets.extend(item)
            size += sum(len(p) for p in item)
        return packets

    def start_upgrade(self) -> None:
        """``2probe`` arrived on a WebSocket: a pending poll returns now with a noop."""
        self.upgrading = True
        if self._poll_scope is not None:
            self._poll_scope.cancel()

    async def take_item(self) -> list[eio.Packet]:
        """The next item for a WebSocket writer. Raises SocketClosed."""
        try:
            return await self._out_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise SocketClosed from None

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self.settings.ping_interval)
            self._pong = trio.Event()
            with trio.move_on_after(self.settings.ping_timeout):
                try:
                    await self.send([eio.PING])
                except SocketClosed:
                    return
                await self._pong.wait()
                continue
            log.info("engine.io %s: no pong within %ss; closing", self.sid, self.settings.ping_timeout)
            self.close("ping timeout")
            return

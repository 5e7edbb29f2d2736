"""One native WebSocket connection: frames in, frames out, over the session core.

The session is a transport adapter. It is given ``receive`` and ``send`` callables,
so it never sees the WebSocket object; it parses each frame into a typed client
message for :class:`~sandboxd.frontend.SessionCore` (which maps it to an operation),
and encodes server events as JSON text frames, or output as binary frames when the
client asked for them (``configure-session``), in the dialect it joined with.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from . import protocol as p
from .errors import SandboxdError
from .events import ServerEvent
from .frontend import SessionClosed, SessionCore
from .operations import Services
from .plugin_types import ANONYMOUS, Principal

__all__ = ["Session", "SessionClosed"]


class Session(SessionCore):
    def __init__(
        self,
        hub: Services,
        send: Callable[[str | bytes], Awaitable[None]],
        receive: Callable[[], Awaitable[str | bytes]],
        peer: str = "?",
        principal: Principal = ANONYMOUS,
    ) -> None:
        super().__init__(hub.ops, peer, principal)
        self._send = send
        self._receive = receive

    async def run(self) -> None:
        """Serve the client until it disconnects."""
        async with self.opened():
            while True:
                await self.handle_frame(await self._receive())

    async def handle_frame(self, text: str | bytes) -> None:
        """Handle one frame; a frame that does not parse gets an ``error`` event."""
        try:
            message = p.parse_client_message(text)
        except SandboxdError as exc:
            await self.report(exc, p.peek_ref(text))
            return
        await self.handle(message)

    async def emit(self, name: str, data: dict[str, Any]) -> None:
        await self._send(p.encode(name, data, alias=bool(self.alias)))

    async def emit_output(self, event: ServerEvent) -> None:
        frame = event.encoded(bool(self.alias), self.binary_output)
        if frame is not None:
            await self._send(frame)

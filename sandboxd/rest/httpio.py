"""One HTTP/1.1 exchange on a connection the server already read the head of.

:mod:`sandboxd.http` reads the request head (it has to, to route WebSocket handshakes);
this module picks the conversation up from there with a fresh :class:`h11.Connection`
fed the bytes already read, so the head is parsed once more by the same parser and any
body bytes that came with it are not lost. It reads the body (whole and capped, or as a
stream of chunks), and sends a response (whole, or streamed with chunked encoding).

Every read is bounded in time: a whole body within ``body_timeout``; a streamed body
may take as long as it needs, but never ``body_timeout`` without a byte. One request
per connection (``Connection: close``), which keeps the state machine trivial.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator

import h11
import trio

from ..errors import BadRequest, LimitExceeded, SandboxdError
from ..http import MAX_HEAD_BYTES, Request

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024


class BodyTooLarge(LimitExceeded):
    """A request body over its cap (HTTP 413)."""


class BodyTimeout(BadRequest):
    """A request body that did not arrive in time (HTTP 408)."""


class ClientGone(Exception):
    """The client closed the connection (or broke it) while we were talking."""


class Exchange:
    """The request being answered, and the means to answer it."""

    def __init__(self, stream: trio.abc.Stream, request: Request, *, body_timeout: float) -> None:
        self.stream = stream
        self.request = request
        self.body_timeout = body_timeout
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._conn.receive_data(request.raw)
        event = self._conn.next_event()
        assert isinstance(event, h11.Request), "the server read a whole head before routing"
        #: Set once a response has started; errors after that can only close the connection.
        self.responded = False

    @property
    def content_length(self) -> int | None:
        value = self.request.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    # --- reading ---------------------------------------------------------------------

    async def _next_event(self) -> h11.Event:
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(f"malformed request body: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            if self._conn.they_are_waiting_for_100_continue:
                await self._send(h11.InformationalResponse(status_code=100, headers=[]))
            try:
                data = await self.stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise ClientGone from None
            if not data:
                raise ClientGone
            self._conn.receive_data(bytes(data))

    async def body_chunks(self, limit: int) -> AsyncIterator[bytes]:
        """The body as it arrives, at most ``limit`` bytes.

        Raises:
            BodyTooLarge: the body is (or announces itself) longer than ``limit``.
            BodyTimeout: ``body_timeout`` passed without a byte.
            BadRequest: the body is malformed (chunked encoding, length mismatch).
            ClientGone: the client went away.
        """
        if (length := self.content_length) is not None and length > limit:
            raise BodyTooLarge(f"the request body is larger than {limit} bytes")
        total = 0
        while True:
            with trio.move_on_after(self.body_timeout) as waited:
                event = await self._next_event()
            if waited.cancelled_caught:
                raise BodyTimeout(f"no request body data for {self.body_timeout:g} s")
            if isinstance(event, h11.Data):
                total += len(event.data)
                if total > limit:
                    raise BodyTooLarge(f"the request body is larger than {limit} bytes")
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise ClientGone

    async def read_body(self, limit: int) -> bytes:
        """The whole body (``limit`` bytes at most), within ``body_timeout`` in all."""
        if self.request.method in ("GET", "HEAD", "DELETE", "OPTIONS") and not self.content_length:
            return b""
        parts: list[bytes] = []
        with trio.move_on_after(self.body_timeout) as waited:
            async for chunk in self.body_chunks(limit):
                parts.append(chunk)
        if waited.cancelled_caught:
            raise BodyTimeout(f"the request body did not arrive within {self.body_timeout:g} s")
        return b"".join(parts)

    async def discard_body(self, limit: int = 1 << 20, timeout: float = 1.0) -> None:
        """Read and drop what is left of the body (a little, briefly), after answering
        early: closing a socket with unread data makes the kernel send a reset, which
        can destroy the answer before the client reads it."""
        if self._conn.their_state is not h11.SEND_BODY:
            return
        with trio.move_on_after(timeout):
            try:
                async for _ in self.body_chunks(limit):
                    pass
            except (SandboxdError, ClientGone):
                pass

    # --- writing ---------------------------------------------------------------------

    async def _send(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise ClientGone from None

    async def respond(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        """Send a whole response."""
        await self.start(status, [*headers, ("Content-Length", str(len(body)))])
        if body and self.request.method != "HEAD":
            await self._send(h11.Data(data=body))
        await self.end()

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Start a response; without a ``Content-Length`` header it is sent chunked."""
        self.responded = True
        base = [("Connection", "close"), ("Cache-Control", "no-store")]
        await self._send(h11.Response(status_code=status, headers=[*base, *headers]))

    async def send_data(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            await self._send(h11.Data(data=data))

    async def end(self) -> None:
        await self._send(h11.EndOfMessage())

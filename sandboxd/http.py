"""Plain HTTP on the WebSocket port, before any upgrade.

The daemon reads each connection's request head itself (with h11, which trio-websocket
already depends on through wsproto) so that it can answer ``/healthz`` and 404s, and
refuse a handshake (401, 403, 503) *before* upgrading. A WebSocket request is then
handed to trio-websocket on a :class:`ReplayStream` that gives back the bytes already
read, so the handshake is parsed exactly once more by the library that owns it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import trio

from .plugin_types import HTTPRequest

MAX_HEAD_BYTES = 16 * 1024


class BadHTTPRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    #: Every byte read from the connection so far (the head, maybe more).
    raw: bytes
    peer: str = "?"
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = parse_qs(parts.query)

    def for_plugins(self) -> HTTPRequest:
        return HTTPRequest(
            self.method, self.path, {k: v[0] for k, v in self.query.items()}, dict(self.headers), self.peer
        )

    @property
    def is_websocket(self) -> bool:
        return (
            self.method == "GET"
            and "websocket" in self.headers.get("upgrade", "").lower()
            and "upgrade" in self.headers.get("connection", "").lower()
        )


async def read_request(stream: trio.abc.Stream, peer: str = "?") -> Request:
    """Read one request head.

    Raises:
        BadHTTPRequest: malformed, too large, or the client went away.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    raw = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadHTTPRequest(exc.error_status_hint, str(exc)) from None
        if isinstance(event, h11.Request):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            return Request(event.method.decode("ascii"), event.target.decode("latin-1"), headers, bytes(raw), peer)
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(MAX_HEAD_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                raise BadHTTPRequest(400, "connection closed before the request head")
            raw += data
            conn.receive_data(bytes(data))
        else:
            raise BadHTTPRequest(400, "unexpected HTTP event")


async def send_response(
    stream: trio.abc.Stream,
    status: int,
    body: bytes | str | dict[str, Any],
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> None:
    """Send one complete response and close the connection."""
    if isinstance(body, dict):
        body = json.dumps(body, indent=None).encode()
        content_type = "application/json"
    elif isinstance(body, str):
        body = body.encode()
    conn = h11.Connection(h11.SERVER)
    # h11 wants to have seen a request before it sends a response.
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    all_headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
        *((headers or {}).items()),
    ]
    data = conn.send(h11.Response(status_code=status, headers=all_headers))
    data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


class ReplayStream(trio.abc.Stream):
    """A stream that first gives back ``prefix``, then reads from ``stream``."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._stream.aclose()

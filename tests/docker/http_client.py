"""A small HTTP/1.1 client on trio and h11, for the REST tests: whole or streamed bodies
both ways, and raw access for slow or oversized requests. Every call is bounded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable
from urllib.parse import urlsplit

import h11
import trio


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """The stable error code of an error response."""
        return self.json()["error"]["code"] if self.status >= 400 else None


class HTTP:
    def __init__(self, base: str, token: str | None = None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def _headers(self, headers: dict[str, str] | None, body: bytes | None, streamed: bool) -> list[tuple[str, str]]:
        out = {"Host": f"{self.host}:{self.port}", "Connection": "close"}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            out["Content-Length"] = str(len(body))
        elif streamed:
            out["Transfer-Encoding"] = "chunked"
        out.update(headers or {})
        return list(out.items())

    async def open(self, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
                   chunks: Iterable[bytes] | None = None, headers: dict[str, str] | None = None
                   ) -> tuple[trio.SocketStream, h11.Connection, h11.Response]:
        """Send a request and read the response head; the body is left to read."""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        stream = await trio.open_tcp_stream(self.host, self.port)
        conn = h11.Connection(h11.CLIENT)
        await stream.send_all(conn.send(h11.Request(
            method=method, target=path, headers=self._headers(headers, body, chunks is not None))))
        if body is not None:
            await stream.send_all(conn.send(h11.Data(data=body)))
        for chunk in chunks or ():
            await stream.send_all(conn.send(h11.Data(data=chunk)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                return stream, conn, event

    async def request(self, method: str, path: str, *, timeout: float = 60, **kwargs: Any) -> Response:
        with trio.fail_after(timeout):
            stream, conn, head = await self.open(method, path, **kwargs)
            body = bytearray()
            async for chunk in body_of(stream, conn):
                body += chunk
            await stream.aclose()
        headers = {k.decode().lower(): v.decode() for k, v in head.headers}
        return Response(head.status_code, headers, bytes(body))

    async def raw(self, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                  timeout: float = 30) -> Response:
        """Send a request head as given (a lying Content-Length, a body that stalls) and
        read the answer until the server closes the connection."""
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in dict(self._headers(None, None, False), **headers).items()) + "\r\n"
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(self.host, self.port)
            await stream.send_all(head.encode() + body)
            reply = b""
            while chunk := await stream.receive_some(65536):
                reply += chunk
            await stream.aclose()
        head_bytes, _, content = reply.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers_out = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        return Response(int(lines[0].split(" ")[1]), headers_out, content)

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Response:
        return await self.request("POST", path, json_body={} if json_body is None else json_body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)


async def body_of(stream: trio.SocketStream, conn: h11.Connection) -> AsyncIterator[bytes]:
    """The response body as it arrives; ends at the end of the message."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(1 << 20)
            conn.receive_data(data)
            if not data and conn.their_state is not h11.DONE:
                raise ConnectionError("the server closed the connection before the end of the body")
        elif isinstance(event, h11.Data):
            yield bytes(event.data)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return

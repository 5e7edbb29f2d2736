"""Plain HTTP on the WebSocket port, before any upgrade.

The daemon reads each connection's request head itself (with h11, which trio-websocket
already depends on through wsproto) so that it can answer ``/healthz`` and 404s, and
refuse a handshake (401, 403, 503) *before* upgrading. Every request, whatever its route,
first passes :class:`OriginPolicy` (browser Origin and DNS-rebinding Host checks), so a
route added later is covered without doing anything. A WebSocket request is then
handed to trio-websocket on a :class:`ReplayStream` that gives back the bytes already
read, so the handshake is parsed exactly once more by the library that owns it.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

import h11
import trio

from .config import Config
from .plugin_types import HTTPRequest

MAX_HEAD_BYTES = 16 * 1024
#: Names that always mean "this machine" in a Host or Origin.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


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
    #: How many times each (lower-cased) header name appeared; ``headers`` keeps the last.
    header_counts: dict[str, int] = field(default_factory=dict)
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


async def read_request(stream: trio.abc.Stream, peer: str = "?", *, max_headers: int = 100) -> Request:
    """Read one request head.

    Raises:
        BadHTTPRequest: malformed, too large (431 past ``max_headers`` header lines),
            or the client went away.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    raw = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadHTTPRequest(exc.error_status_hint, str(exc)) from None
        if isinstance(event, h11.Request):
            if len(event.headers) > max_headers:
                raise BadHTTPRequest(431, f"more than {max_headers} request headers")
            pairs = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
            return Request(
                event.method.decode("ascii"), event.target.decode("latin-1"), dict(pairs), bytes(raw), peer,
                dict(Counter(k for k, _ in pairs)),
            )
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


@dataclass(frozen=True)
class OriginPolicy:
    """Which browser pages may talk to the daemon, and under which host names.

    Browsers do not apply the same-origin policy to WebSockets (and let any page send
    simple requests), so without this any web page the user visits could drive the
    daemon. Rules, for every request before it is routed:

    - ``Origin`` absent: allowed (command-line clients, SDKs, curl).
    - ``Origin`` present once: allowed if listed in ``allowed_origins``, or if it is the
      daemon's own: ``http``, one of the daemon's listening ports, and the same host as
      the request's ``Host`` (``localhost``, ``127.0.0.1`` and ``[::1]`` count as one).
    - ``Origin`` given twice: refused.
    - ``Host`` (DNS rebinding): allowed if absent, an IP address, ``localhost``, the
      configured listen host, or listed in ``allowed_hosts``; ``"*"`` allows any.
    """

    ports: frozenset[int]
    allowed_origins: frozenset[str] = frozenset()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Config, ports: Iterable[int]) -> OriginPolicy:
        origins = set(config.server.allowed_origins)
        # The origin_check plugin's list, from before the check was built in.
        if "origin_check" in config.plugins.enabled:
            listed = config.plugins.settings.get("origin_check", {}).get("allowed_origins", [])
            origins.update(o for o in listed if isinstance(o, str))  # type: ignore[union-attr]
        hosts = {h.lower() for h in config.server.allowed_hosts}
        hosts.add(config.server.host.lower())
        return cls(frozenset(ports), frozenset(_norm_origin(o) for o in origins), frozenset(hosts))

    def check(self, request: Request) -> None:
        """Raises: BadHTTPRequest: 403 naming what was refused (400 for a garbled Host)."""
        host_name = self._check_host(request.headers.get("host"))
        if request.header_counts.get("origin", 0) > 1:
            raise BadHTTPRequest(403, "more than one Origin header")
        origin = request.headers.get("origin")
        if origin is None or "*" in self.allowed_origins:
            return
        origin = _norm_origin(origin)
        if origin in self.allowed_origins or self._is_own(origin, host_name):
            return
        raise BadHTTPRequest(403, f"origin {origin!r} is not allowed (server.allowed_origins)")

    def lists(self, origin: str) -> bool:
        """Whether ``origin`` is configured as allowed (CORS answers only those)."""
        return "*" in self.allowed_origins or _norm_origin(origin) in self.allowed_origins

    def _check_host(self, host: str | None) -> str | None:
        if host is None:
            return None
        try:
            name = urlsplit(f"//{host}").hostname or ""
            urlsplit(f"//{host}").port  # noqa: B018 - validates the port
        except ValueError:
            raise BadHTTPRequest(400, f"malformed Host header {host!r}") from None
        if name in LOOPBACK_NAMES or name in self.allowed_hosts or "*" in self.allowed_hosts or _is_ip(name):
            return name
        raise BadHTTPRequest(403, f"host {name!r} is not allowed (server.allowed_hosts)")

    def _is_own(self, origin: str, host_name: str | None) -> bool:
        try:
            parts = urlsplit(origin)
            port = parts.port or 80
        except ValueError:
            return False
        name = parts.hostname or ""
        if parts.scheme != "http" or port not in self.ports or host_name is None:
            return False
        return name == host_name or (name in LOOPBACK_NAMES and host_name in LOOPBACK_NAMES)


def _norm_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def send_response(
    stream: trio.abc.Stream,
    status: int,
    body: bytes | str | dict[str, Any],
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> bool:
    """Send one complete response and close the connection; False if the client was gone."""
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
        return False
    return True


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

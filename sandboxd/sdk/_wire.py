"""The WebSocket layer of the SDK, with no I/O: bytes in, messages out (over wsproto).

Every flavour (sync, asyncio, trio) moves bytes between a socket and one
:class:`Wire`; the handshake, framing, ping replies and close handling live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..endpoint import refusal_message, websocket_url
from ._env import default_url
from ._errors import AuthenticationFailed, DaemonUnavailable

WS_PATH = "/sandbox/ws"
#: Largest message we accept from the daemon (an output frame is far smaller).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: parsed from a ws(s):// or http(s):// URL."""

    url: str
    host: str
    port: int
    tls: bool
    target: str  # path and query of the WebSocket endpoint

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str | None) -> Endpoint:
    """The endpoint a URL names, by :func:`sandboxd.endpoint.websocket_url`'s rules
    (``http(s)://host:port`` works; ``/sandbox/ws`` is appended to an http(s) path).

    Raises:
        ValueError: not one of those schemes, or no host.
    """
    ws_url = websocket_url(url or default_url())
    parts = urlsplit(ws_url)
    tls = parts.scheme == "wss"
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if tls else 80)
    return Endpoint(ws_url, parts.hostname or "", port, tls, target)


class Wire:
    """One WebSocket client connection, as a state machine.

    Feed it what the socket gave with :meth:`receive` and iterate the complete messages
    (``str`` for text frames, ``bytes`` for binary ones); send what :meth:`data_to_send`
    returns. Pings are answered by itself.
    """

    def __init__(self, endpoint: Endpoint, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.open = False
        self.closed = False
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._out = bytearray()
        self._text: list[str] = []
        self._bytes = bytearray()
        self._size = 0
        self._reject: tuple[int, bytearray] | None = None
        self._reject_type = ""
        self._sent_token = bool(token)
        headers = [(b"user-agent", b"sandboxd-sdk")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        self._out += self._ws.send(Request(host=endpoint.host_header, target=endpoint.target, extra_headers=headers))

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def send_text(self, text: str) -> None:
        self._out += self._ws.send(TextMessage(data=text))

    def close(self) -> None:
        """Start a clean close (1000); the caller sends :meth:`data_to_send` and hangs up."""
        if self.open and not self.closed:
            try:
                self._out += self._ws.send(CloseConnection(code=1000))
            except LocalProtocolError:
                pass
        self.closed = True

    def receive(self, data: bytes | None) -> Iterator[str | bytes]:
        """Feed bytes from the socket (``None`` or ``b""`` at EOF); yield complete messages.

        Raises:
            DaemonUnavailable: the connection ended or broke (EOF, a close frame, garbage),
                or the handshake was refused with a status other than 401/403.
            AuthenticationFailed: the handshake was refused with 401 or 403.
        """
        try:
            self._ws.receive_data(data or None)
            for event in self._ws.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    message = self._assemble(event)
                    if message is not None:
                        yield message
                elif isinstance(event, Ping):
                    self._out += self._ws.send(event.response())
                elif isinstance(event, AcceptConnection):
                    self.open = True
                elif isinstance(event, RejectConnection):
                    self._reject = (event.status_code, bytearray())
                    self._reject_type = dict(event.headers).get(b"content-type", b"").decode("latin-1")
                    if not event.has_body:
                        self._rejected()
                elif isinstance(event, RejectData):
                    assert self._reject is not None
                    self._reject[1].extend(event.data[:1000])
                    if event.body_finished:
                        self._rejected()
                elif isinstance(event, CloseConnection):
                    if not self.closed:
                        try:
                            self._out += self._ws.send(event.response())
                        except LocalProtocolError:
                            pass
                    self.closed = True
                    raise DaemonUnavailable(
                        f"the daemon closed the connection ({event.code}{': ' + event.reason if event.reason else ''})"
                    )
        except RemoteProtocolError as exc:
            self.closed = True
            raise DaemonUnavailable(f"the daemon broke the WebSocket protocol: {exc}") from None
        if not data:
            self.closed = True
            raise DaemonUnavailable("the connection to the daemon was closed")

    def _assemble(self, event: TextMessage | BytesMessage) -> str | bytes | None:
        self._size += len(event.data)
        if self._size > MAX_MESSAGE_BYTES:
            self.closed = True
            raise DaemonUnavailable("the daemon sent a message larger than the SDK accepts")
        if isinstance(event, TextMessage):
            if event.message_finished and not self._text:
                self._size = 0
                return event.data
            self._text.append(event.data)
            if not event.message_finished:
                return None
            text, self._text, self._size = "".join(self._text), [], 0
            return text
        if event.message_finished and not self._bytes:
            self._size = 0
            return bytes(event.data)
        self._bytes += event.data
        if not event.message_finished:
            return None
        raw, self._bytes, self._size = bytes(self._bytes), bytearray(), 0
        return raw

    def _rejected(self) -> None:
        assert self._reject is not None
        status, body = self._reject
        self.closed = True
        message = refusal_message(self.endpoint.url, status, self._reject_type, bytes(body),
                                  sent_token=self._sent_token)
        if status in (401, 403):
            raise AuthenticationFailed(message, status=status)
        raise DaemonUnavailable(message)


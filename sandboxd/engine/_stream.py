"""The data plane: an exec's output as a native trio stream.

docker-py's ``exec_start(socket=True)`` returns a socket wrapped in an HTTP response
object whose buffer may already hold the first bytes of output, and reading it needs a
thread per execution. Instead we speak the exec-start upgrade ourselves
(``POST /exec/{id}/start`` with ``Upgrade: tcp``) over a trio stream: every byte after
the response head is ours, and reading costs no thread.
"""

from __future__ import annotations

import json
import ssl
from contextlib import asynccontextmanager
from typing import AsyncIterator
from urllib.parse import urlsplit

import trio

from ..errors import DockerError, EngineUnavailable

_MAX_HEAD = 64 * 1024


def default_engine_url() -> str:
    import os

    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def client_ssl_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """TLS as ``dockerd --tlsverify`` expects it: the engine's certificate checked against
    ``ca``, and ours (``cert``/``key``) presented."""
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    return context


async def connect_engine(url: str, ssl_context: ssl.SSLContext | None = None) -> trio.abc.Stream:
    """Open a raw byte stream to the Engine API at ``url`` (unix:// or tcp://, over TLS
    when ``ssl_context`` is given)."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("unix", "npipe", ""):
            return await trio.open_unix_socket(parts.path or url)
        if parts.scheme in ("tcp", "http", "https"):
            tcp = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 2375)
            if ssl_context is None:
                return tcp
            tls = trio.SSLStream(tcp, ssl_context, server_hostname=parts.hostname)
            await tls.do_handshake()
            return tls
    except (OSError, trio.BrokenResourceError) as exc:
        raise EngineUnavailable(f"cannot connect to the Docker engine at {url}: {exc}") from exc
    raise DockerError(f"unsupported Docker engine URL scheme {parts.scheme!r} (use unix:// or tcp://)")


class ExecStream:
    """The hijacked connection of one running exec.

    ``receive_some`` yields raw (still multiplexed, unless TTY) output; ``send_all``
    writes to the process's stdin; ``send_eof`` closes the process's stdin.

    Resource handling: the stream owns its socket; :meth:`aclose` is idempotent and is
    called by :func:`open_exec_stream` on exit, whatever happened.
    """

    def __init__(self, stream: trio.abc.Stream, initial: bytes) -> None:
        self._stream = stream
        self._initial = initial

    async def receive_some(self, max_bytes: int = 256 * 1024) -> bytes | bytearray:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def send_eof(self) -> None:
        # Docker closes the process's stdin when the client half-closes the connection
        # (over TLS, the TCP connection under it).
        stream = self._stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        await stream.send_eof()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._stream.aclose()


@asynccontextmanager
async def open_exec_stream(
    url: str, api_version: str, exec_id: str, *, tty: bool = False, timeout: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[ExecStream]:
    """Start exec ``exec_id`` and yield its hijacked connection.

    Raises:
        EngineUnavailable: the engine did not answer within ``timeout``.
        DockerError: the engine refused to start the exec (e.g. the container stopped).
    """
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    host = "docker" if urlsplit(url).scheme in ("unix", "") else (urlsplit(url).netloc)
    request = (
        f"POST /v{api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stream = await connect_engine(url, ssl_context)
    try:
        with trio.move_on_after(timeout) as scope:
            await stream.send_all(request)
            head, rest = await _read_head(stream)
        if scope.cancelled_caught:
            raise EngineUnavailable(f"exec start: no answer from the engine within {timeout:g} s")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status not in (101, 200):
            with trio.move_on_after(2):
                while len(rest) < _MAX_HEAD and (more := await stream.receive_some(16384)):
                    rest += more
            raise DockerError(_error_message(rest) or status_line, op="exec start")
        exec_stream = ExecStream(stream, rest)
        yield exec_stream
    finally:
        with trio.CancelScope(shield=True):
            if isinstance(stream, trio.SSLStream):
                # No TLS goodbye: after stdin's half-close none can be sent, and the exec
                # is over either way.
                await trio.aclose_forcefully(stream)
            else:
                await stream.aclose()


async def _read_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    buf = bytearray()
    while True:
        idx = buf.find(b"\r\n\r\n")
        if idx >= 0:
            return bytes(buf[:idx]), bytes(buf[idx + 4 :])
        if len(buf) > _MAX_HEAD:
            raise DockerError("exec start: response head too large")
        chunk = await stream.receive_some(16384)
        if not chunk:
            raise EngineUnavailable("exec start: the engine closed the connection")
        buf += chunk


def _error_message(body: bytes) -> str:
    """The engine's JSON ``message`` from an error body (plain or chunked)."""
    start = body.find(b'{"message"')
    if start < 0:
        return ""
    end = body.find(b"}", start)
    try:
        return str(json.loads(body[start : end + 1])["message"])
    except (ValueError, KeyError, TypeError):
        return ""

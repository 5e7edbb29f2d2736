"""Engine.IO over HTTP: the long-polling and WebSocket transports, and the upgrade.

:class:`EngineIOServer` answers every request the daemon routes to it (``EIO`` in the
query on ``/socket.io/`` or ``/sandbox/ws/``) and keeps the sessions by id. Errors are
answered as the reference server answers them (HTTP 400 with
``{"code": 1, "message": "Session ID unknown"}`` and so on), with CORS headers for an
allowed browser origin on every response.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

import trio
import trio_websocket

from ..http import ReplayStream, Request, send_response
from . import engineio as eio
from .engine import EngineSettings, EngineSocket, SocketClosed, new_sid

log = logging.getLogger(__name__)

# The reference server's error codes and messages.
UNKNOWN_TRANSPORT = 0, "Transport unknown"
UNKNOWN_SID = 1, "Session ID unknown"
BAD_HANDSHAKE_METHOD = 2, "Bad handshake method"
BAD_REQUEST = 3, "Bad request"
UNSUPPORTED_VERSION = 5, "Unsupported protocol version"

TRANSPORTS = ("polling", "websocket")
#: How long a client has to finish a POST body, and to complete an upgrade.
IO_TIMEOUT = 10.0

Handler = Callable[[EngineSocket, Request], Awaitable[None]]


class EngineIOServer:
    """Every Engine.IO session of the daemon.

    Cancellation: :meth:`run` owns the sessions' tasks; cancelling it ends them all.
    """

    def __init__(self, settings: EngineSettings, handler: Handler, *, max_sessions: int) -> None:
        self.settings = settings
        self.handler = handler
        self.max_sessions = max_sessions
        self.sockets: dict[str, EngineSocket] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def close_all(self, reason: str) -> None:
        for sock in list(self.sockets.values()):
            sock.close(reason)

    async def handle(self, stream: trio.SocketStream, request: Request, cors: dict[str, str]) -> None:
        """Answer one HTTP request (or run one WebSocket) of the Engine.IO protocol."""
        query = {k: v[0] for k, v in request.query.items()}
        if query.get("EIO") != str(eio.PROTOCOL):
            return await _error(stream, UNSUPPORTED_VERSION, cors)
        transport = query.get("transport")
        if transport not in TRANSPORTS:
            return await _error(stream, UNKNOWN_TRANSPORT, cors)
        if request.method == "OPTIONS":
            return await _preflight(stream, request, cors)
        sid = query.get("sid")
        if transport == "websocket":
            if not request.is_websocket:
                return await _error(stream, BAD_REQUEST, cors)
            return await self._websocket(stream, request, sid)
        if sid is None:
            if request.method != "GET":
                return await _error(stream, BAD_HANDSHAKE_METHOD, cors)
            return await self._open_polling(stream, request, cors)
        sock = self.sockets.get(sid)
        if sock is None or sock.closed:
            return await _error(stream, UNKNOWN_SID, cors)
        if sock.transport != "polling":
            return await _error(stream, BAD_REQUEST, cors)
        if request.method == "GET":
            await self._poll(stream, sock, cors)
        elif request.method == "POST":
            await self._post(stream, request, sock, cors)
        else:
            await _error(stream, BAD_REQUEST, cors)

    def _open(self, transport: str, request: Request) -> EngineSocket | None:
        if len(self.sockets) >= self.max_sessions or self._nursery is None:
            return None
        sock = EngineSocket(new_sid(), self.settings, transport)
        self.sockets[sock.sid] = sock
        self._nursery.start_soon(self._run_socket, sock, request)
        return sock

    async def _run_socket(self, sock: EngineSocket, request: Request) -> None:
        try:
            await sock.run(lambda s: self.handler(s, request))
        except Exception:  # a bug in one connection must not end the daemon's others
            log.exception("engine.io %s: internal error; closing it", sock.sid)
        finally:
            self.sockets.pop(sock.sid, None)

    def _open_packet(self, sock: EngineSocket, upgrades: list[str]) -> str:
        s = self.settings
        return eio.open_packet(sock.sid, upgrades=upgrades, ping_interval_ms=round(s.ping_interval * 1000),
                               ping_timeout_ms=round(s.ping_timeout * 1000), max_payload=s.max_payload)

    # --- long-polling ------------------------------------------------------------------

    async def _open_polling(self, stream: trio.SocketStream, request: Request, cors: dict[str, str]) -> None:
        sock = self._open("polling", request)
        if sock is None:
            await send_response(stream, 503, "too many sessions\n", headers=cors)
            return
        await _payload(stream, self._open_packet(sock, ["websocket"]), cors)

    async def _poll(self, stream: trio.SocketStream, sock: EngineSocket, cors: dict[str, str]) -> None:
        if sock.poll_active:
            # Two GETs at once: the reference server refuses the second and closes.
            sock.close("overlapping polls")
            await _error(stream, BAD_REQUEST, cors)
            return
        if sock.upgrading:
            await _payload(stream, eio.NOOP, cors)
            return
        sock.poll_active = True
        try:
            packets = await sock.next_items(self.settings.ping_interval)
            body = eio.encode_payload(packets or [eio.NOOP])
            if not await _payload(stream, body, cors):
                sock.close("a poll response could not be delivered")
        finally:
            sock.poll_active = False

    async def _post(self, stream: trio.SocketStream, request: Request, sock: EngineSocket,
                    cors: dict[str, str]) -> None:
        if sock.post_active:
            sock.close("overlapping POST requests")
            await _error(stream, BAD_REQUEST, cors)
            return
        sock.post_active = True
        try:
            try:
                with trio.fail_after(IO_TIMEOUT):
                    body = await _read_body(stream, request, self.settings.max_payload)
                packets = eio.decode_payload(body.decode("utf-8"))
            except _BodyTooLarge:
                sock.close("payload too large")
                await send_response(stream, 413, "payload too large\n", headers=cors)
                return
            except (eio.EngineIOError, UnicodeDecodeError, _BadBody, trio.TooSlowError):
                sock.close("malformed payload")
                await _error(stream, BAD_REQUEST, cors)
                return
            for kind, data in packets:
                try:
                    await sock.on_packet(kind, data)
                except eio.EngineIOError:
                    sock.close("unexpected packet")
                    await _error(stream, BAD_REQUEST, cors)
                    return
                except SocketClosed:
                    break
            await send_response(stream, 200, "ok", content_type="text/html", headers=cors)
        finally:
            sock.post_active = False

    # --- WebSocket ---------------------------------------------------------------------

    async def _websocket(self, stream: trio.SocketStream, request: Request, sid: str | None) -> None:
        upgrading = None
        if sid is not None:
            upgrading = self.sockets.get(sid)
            if upgrading is None or upgrading.closed:
                return await _error(stream, UNKNOWN_SID, {})
            if upgrading.transport != "polling" or upgrading.upgrading or upgrading.websocket_attached:
                return await _error(stream, BAD_REQUEST, {})
        elif len(self.sockets) >= self.max_sessions:
            await send_response(stream, 503, "too many sessions\n")
            return
        async with trio.open_nursery() as nursery:
            ws_request = await trio_websocket.wrap_server_stream(
                nursery, ReplayStream(stream, request.raw), message_queue_size=4,
                max_message_size=self.settings.max_payload, receive_buffer_size=64 * 1024)
            ws = await ws_request.accept()
            try:
                if upgrading is None:
                    sock = self._open("websocket", request)
                    if sock is None:
                        return
                    await ws.send_message(self._open_packet(sock, []))
                else:
                    sock = upgrading
                    sock.websocket_attached = True
                    upgraded = False
                    try:
                        upgraded = await _upgrade(ws, sock)
                    finally:
                        if not upgraded:  # the client goes on polling
                            sock.upgrading = sock.websocket_attached = False
                    if not upgraded:
                        return
                await _pump(ws, sock)
            except trio_websocket.ConnectionClosed:
                pass
            finally:
                with trio.move_on_after(1) as cleanup:
                    cleanup.shield = True
                    await ws.aclose()
                nursery.cancel_scope.cancel()


async def _upgrade(ws: trio_websocket.WebSocketConnection, sock: EngineSocket) -> bool:
    """The probe: ``2probe`` → ``3probe``, pending poll answered ``6``, then ``5``."""
    with trio.move_on_after(IO_TIMEOUT):
        if await ws.get_message() != eio.PING + "probe":
            return False
        await ws.send_message(eio.PONG + "probe")
        sock.start_upgrade()
        if await ws.get_message() != eio.UPGRADE:
            return False
        sock.transport = "websocket"
        return True
    return False


async def _pump(ws: trio_websocket.WebSocketConnection, sock: EngineSocket) -> None:
    """Move packets both ways until the socket or the WebSocket closes."""

    async def reader() -> None:
        while True:
            kind, data = eio.decode_packet(await ws.get_message())
            await sock.on_packet(kind, data)

    async def writer() -> None:
        while True:
            for packet in await sock.take_item():
                await ws.send_message(packet)

    async def watch(fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except eio.EngineIOError:
            sock.close("malformed packet")
        except (SocketClosed, trio_websocket.ConnectionClosed):
            sock.close("transport closed")
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, reader)
        nursery.start_soon(watch, writer)
        await sock.wait_closed()
        nursery.cancel_scope.cancel()


# --- HTTP helpers --------------------------------------------------------------------


class _BadBody(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


async def _read_body(stream: trio.abc.Stream, request: Request, limit: int) -> bytes:
    """The request body, by its Content-Length (at most ``limit`` bytes)."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise _BadBody("chunked bodies are not accepted")
    try:
        length = int(request.headers.get("content-length", "0"))
    except ValueError:
        raise _BadBody("bad Content-Length") from None
    if length < 0:
        raise _BadBody("bad Content-Length")
    if length > limit:
        raise _BodyTooLarge
    raw = request.raw
    end = raw.find(b"\r\n\r\n")
    body = bytearray(raw[end + 4:] if end >= 0 else b"")
    while len(body) < length:
        data = await stream.receive_some(65536)
        if not data:
            raise _BadBody("the client went away mid-body")
        body += data
    return bytes(body[:length])


async def _payload(stream: trio.abc.Stream, body: str, cors: dict[str, str]) -> bool:
    """Answer 200 with a polling payload; False if the client is gone."""
    return await send_response(stream, 200, body.encode("utf-8"), content_type="text/plain; charset=UTF-8",
                               headers=cors)


async def _error(stream: trio.abc.Stream, error: tuple[int, str], cors: dict[str, str]) -> None:
    code, message = error
    body = json.dumps({"code": code, "message": message}, separators=(",", ":"))
    await send_response(stream, 400, body, content_type="application/json", headers=cors)


async def _preflight(stream: trio.abc.Stream, request: Request, cors: dict[str, str]) -> None:
    headers = dict(cors)
    if cors:
        headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        if asked := request.headers.get("access-control-request-headers"):
            headers["Access-Control-Allow-Headers"] = asked
    await send_response(stream, 204, b"", headers=headers)

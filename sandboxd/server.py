"""The trio server loop: one TCP port for plain HTTP and WebSocket sessions.

Protocol handling lives elsewhere (:mod:`sandboxd.http` for the request head,
:mod:`sandboxd.session` for the event protocol); this module only accepts
connections, routes them, and shuts them down deliberately.
"""

from __future__ import annotations

import contextlib
import logging
import math
import struct
import time
from typing import Any, Awaitable, Callable, Iterator

import trio
import trio_websocket
import wsproto

from . import rest, socketio, webassets
from .credentials import OpenCredentials
from .errors import AuthBackoff, SandboxdError
from .http import BadHTTPRequest, OriginPolicy, ReplayStream, Request, read_request, send_response
from .metrics import CONTENT_TYPE_LATEST
from .operations import Services
from .plugin_types import HTTPRequest, Principal
from .ratelimit import ClientGate
from .session import Session, SessionClosed

log = logging.getLogger(__name__)

WS_PATH = "/sandbox/ws"
#: WebSocket close code for "the daemon is going away".
CLOSE_GOING_AWAY = 1001


class Server:
    """Accepts connections until :meth:`aclose`.

    Cancellation: :meth:`serve` owns two nurseries, one for the listeners and one for
    connections. :meth:`aclose` stops accepting, drains executions within the grace
    period, closes every session with 1001, and only then cancels what is left.
    """

    def __init__(self, hub: Services) -> None:
        self.hub = hub
        self.config = hub.config.server
        self._accept_scope: trio.CancelScope | None = None
        self._connections: trio.Nursery | None = None
        self._websockets: set[trio_websocket.WebSocketConnection] = set()
        #: Open WebSocket sessions, for the idle sweeper: (session, [last message time], close).
        self._idle: dict[trio_websocket.WebSocketConnection, tuple[Session, list[float], Any]] = {}
        self.closing = False
        #: Checked on every request before routing; knows the ports once listening.
        self.origin_policy = OriginPolicy.from_config(hub.config, ())
        #: Failed-authentication backoff and session caps, for every front end.
        self.gate = ClientGate(hub.plugins, self.config)
        self.api = rest.open_api(hub.ops, lambda: self.closing, self.gate)
        #: Authenticated sessions, closed (1008) when their credentials stop holding.
        self.credentials = OpenCredentials(hub.plugins, hub.config.plugins.reload_interval_seconds)
        #: Socket.IO clients (Engine.IO sessions outlive the HTTP requests that carry them).
        self.socketio = socketio.build(hub, self.credentials, self.gate)

    async def serve(
        self, listeners: list[trio.SocketListener] | None = None, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept connections on ``listeners`` (default: bind ``server.host:port`` now)."""
        if listeners is None:
            listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        ports = [listener.socket.getsockname()[1] for listener in listeners]  # type: ignore[attr-defined]
        self.origin_policy = OriginPolicy.from_config(self.hub.config, ports)
        log.info("listening on %s:%s", self.config.host, ports[0])
        async with trio.open_nursery() as connections:
            self._connections = connections
            await connections.start(self.socketio.run)
            connections.start_soon(self.credentials.watch)
            if self.config.idle_session_timeout_seconds > 0:
                connections.start_soon(self._idle_sweeper)
            if self.config.ping_interval_seconds > 0:
                connections.start_soon(self._keepalive)
            with trio.CancelScope() as accept_scope:
                self._accept_scope = accept_scope
                task_status.started(ports[0])
                await trio.serve_listeners(self._handle, listeners, handler_nursery=connections)

    async def aclose(self) -> None:
        """Graceful shutdown, bounded by the configured grace periods."""
        if self.closing:
            return
        self.closing = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        await self.hub.drain(self.config.shutdown_grace_seconds)
        self.socketio.close_all("daemon shutting down")
        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for ws in list(self._websockets):
                    nursery.start_soon(ws.aclose, CLOSE_GOING_AWAY, "daemon shutting down")
        if self._connections is not None:
            self._connections.cancel_scope.cancel()

    async def _handle(self, stream: trio.SocketStream) -> None:
        peer = _peer(stream)
        try:
            with trio.fail_after(self.config.handshake_timeout_seconds):
                request = await read_request(stream, peer, max_headers=self.config.max_request_headers)
            self.origin_policy.check(request)
        except BadHTTPRequest as exc:
            if exc.status == 403:
                log.info("refused a request from %s: %s", peer, exc)
            await send_response(stream, exc.status, f"{exc}\n")
            await stream.aclose()
            return
        except trio.TooSlowError:
            await send_response(stream, 408, "request head not received in time\n")
            await stream.aclose()
            return
        try:
            await self._route(stream, request)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _route(self, stream: trio.SocketStream, request: Request) -> None:
        plugins = self.hub.plugins
        http_request = request.for_plugins()
        try:
            refusal = await plugins.check_request(http_request)
        except SandboxdError as exc:
            await send_response(stream, 500, f"{exc.message}\n")
            return
        if refusal is not None:
            await send_response(stream, refusal.status, f"{refusal.reason}\n")
            return
        if request.path.startswith(rest.PREFIX):
            await self.api.handle(stream, request)
        elif request.path == "/metrics" and request.method == "GET":
            # Metrics describe every tenant's activity: with authentication on, only
            # authenticated callers (a scraper with a token) may read them.
            if plugins.auth_required and await self._authenticate(stream, http_request) is None:
                return
            await send_response(stream, 200, self.hub.metrics.render(), content_type=CONTENT_TYPE_LATEST)
        elif request.path == "/healthz" and request.method in ("GET", "HEAD"):
            health = await self.hub.health()
            await send_response(stream, _health_status(health), health)
        elif socketio.wants_engineio(request):
            if self.closing:
                await send_response(stream, 503, "the daemon is shutting down\n")
            else:
                await self.socketio.handle(stream, request, socketio.cors_headers(request, self.origin_policy))
        elif request.path == WS_PATH:
            if not request.is_websocket:
                await send_response(stream, 426, "this endpoint speaks WebSocket only\n",
                                    headers={"Upgrade": "websocket"})
            elif self.closing:
                await send_response(stream, 503, "the daemon is shutting down\n")
            elif len(self.hub.sessions) >= self.config.max_sessions:
                await send_response(stream, 503, "too many sessions\n")
            elif (refusal := self.gate.address_refusal(request.peer)) is not None:
                await send_response(stream, 429, f"{refusal}\n")
            else:
                principal = await self._authenticate(stream, http_request)
                if principal is None:
                    pass
                elif (refusal := self.gate.user_refusal(principal)) is not None:
                    await send_response(stream, 429, f"{refusal}\n")
                else:
                    with self.gate.counted(request.peer, principal):
                        await self._websocket(stream, request, principal)
        elif request.method == "GET" and (asset := webassets.load(request.path)) is not None:
            body, content_type = asset
            await send_response(stream, 200, body, content_type=content_type)
        elif request.path.startswith("/vendor/"):
            await send_response(stream, 404, "web terminal assets are not installed: run scripts/setup.sh\n")
        else:
            await send_response(stream, 404, "not found\n")

    async def _authenticate(self, stream: trio.SocketStream, request: HTTPRequest) -> Principal | None:
        """The caller's principal (ANONYMOUS when no plugin authenticates), or None after
        answering 401 (429 after too many failures from its address; 500 when a plugin
        failed)."""
        try:
            principal, _ = await self.gate.authenticate(request)
        except AuthBackoff as exc:
            await send_response(stream, 429, f"{exc.message}\n", headers={"Retry-After": str(math.ceil(exc.retry_after))})
            return None
        except SandboxdError as exc:
            await send_response(stream, 500, f"{exc.message}\n")
            return None
        if principal is None:
            log.info("refused unauthenticated request for %s from %s", request.path, request.peer)
            await send_response(stream, 401, "authentication required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="sandboxd"'})
        return principal

    async def _websocket(self, stream: trio.SocketStream, request: Request, principal: Principal) -> None:
        async with trio.open_nursery() as nursery:
            wrapped = _ClosingStream(stream, request.raw)
            ws_request = await trio_websocket.wrap_server_stream(
                nursery,
                wrapped,
                message_queue_size=4,
                max_message_size=self.config.max_message_bytes,
                receive_buffer_size=64 * 1024,
            )
            ws = wrapped.ws = await ws_request.accept()
            self._websockets.add(ws)

            async def send(frame: str | bytes) -> None:
                try:
                    await ws.send_message(frame)
                except trio_websocket.ConnectionClosed:
                    raise SessionClosed from None

            last_message = [time.monotonic()]

            async def receive() -> str | bytes:
                try:
                    message = await ws.get_message()
                    last_message[0] = time.monotonic()
                    return message
                except trio_websocket.ConnectionClosed:
                    raise SessionClosed from None

            async def close(code: int, reason: str) -> None:
                with trio.move_on_after(1):
                    await ws.aclose(code, reason)
                nursery.cancel_scope.cancel()  # the session, and its output, end here

            try:
                session = Session(self.hub, send, receive, request.peer, principal)
                self._idle[ws] = (session, last_message, close)
                with self.credentials.holding(request.for_plugins(), principal, close):
                    await session.run()
            finally:
                self._idle.pop(ws, None)
                self._websockets.discard(ws)
                with trio.move_on_after(1) as cleanup:
                    cleanup.shield = True
                    await ws.aclose()
                nursery.cancel_scope.cancel()


    async def _idle_sweeper(self) -> None:
        """One daemon-wide task (an idle session costs no task of its own): close each
        session that sent nothing and followed no execution for the idle timeout."""
        timeout = self.config.idle_session_timeout_seconds
        async with trio.open_nursery() as closing:
            while True:
                await trio.sleep(min(timeout, 30.0) / 2)
                now = time.monotonic()
                for session, last_message, close in list(self._idle.values()):
                    if session.following_anything():
                        last_message[0] = now
                    elif now - last_message[0] > timeout:
                        log.info("session %s from %s was idle for %g s; closing it", session.id, session.peer, timeout)
                        last_message[0] = math.inf  # once
                        closing.start_soon(close, 1000, "idle timeout")

    async def _keepalive(self) -> None:
        """One daemon-wide pinger (an idle session costs no task of its own): every
        interval, ping each WebSocket not already waiting for a pong; a peer that stops
        answering (a half-open TCP connection, a suspended laptop) is disconnected, so its
        session does not linger."""
        waiting: set[trio_websocket.WebSocketConnection] = set()

        async def ping(ws: trio_websocket.WebSocketConnection) -> None:
            try:
                with trio.move_on_after(self.config.ping_timeout_seconds) as waited:
                    await ws.ping()
                if waited.cancelled_caught:
                    log.info("a client stopped answering pings; closing its session")
                    await ws.aclose(1011, "ping timeout")
            except trio_websocket.ConnectionClosed:
                pass
            finally:
                waiting.discard(ws)

        async with trio.open_nursery() as pings:
            while True:
                await trio.sleep(self.config.ping_interval_seconds)
                for ws in self._websockets - waiting:
                    waiting.add(ws)
                    pings.start_soon(ping, ws)


class _ClosingStream(ReplayStream):
    """The connection under a WebSocket: before it is closed, sends the close frame a
    broken client frame calls for (trio-websocket closes the TCP connection at once)."""

    ws: trio_websocket.WebSocketConnection | None = None

    async def aclose(self) -> None:
        ws, self.ws = self.ws, None
        try:
            if ws is not None and (frame := _unanswered_protocol_error(ws)) is not None:
                with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.send_all(frame)
        finally:
            await super().aclose()


def _unanswered_protocol_error(ws: trio_websocket.WebSocketConnection) -> bytes | None:
    """The close frame owed for a broken client frame, if any.

    When wsproto finds a broken frame (invalid UTF-8 in a text message: 1007; reserved
    bits, an unmasked frame, an unknown opcode, a stray continuation: 1002) it reports
    the close to us but sends nothing, and trio-websocket then drops the TCP connection.
    RFC 6455 wants the close frame first: this builds it (server frames are unmasked).
    """
    reason = ws.closed
    state = getattr(getattr(ws, "_wsproto", None), "state", None)
    if reason is None or reason.code not in (1002, 1007) or state is not wsproto.ConnectionState.OPEN:
        return None
    payload = struct.pack("!H", reason.code) + (reason.reason or "").encode()[:123].decode("utf-8", "ignore").encode()
    return bytes([0x88, len(payload)]) + payload


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "?"


def _health_status(health: dict[str, Any]) -> int:
    """``/healthz``'s HTTP status: 503 only when no engine answers (with one engine,
    whenever it does not), so a load balancer keeps a daemon that can still serve."""
    if health["status"] == "ok" or (health["status"] == "degraded" and "engines" in health):
        return 200
    return 503

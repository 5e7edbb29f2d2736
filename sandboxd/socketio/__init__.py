"""Socket.IO (protocol 5) over Engine.IO (protocol 4): the seed's clients on sandboxd.

Layers, each importing only the ones below it:

- :mod:`.engineio`, :mod:`.packets`: the wire formats, I/O-free;
- :mod:`.engine`: one Engine.IO session on trio (bounded outbox, heartbeat);
- :mod:`.transports`: long-polling, WebSocket and the upgrade, over the daemon's HTTP;
- :mod:`.sockets`: a Socket.IO socket as a native session (:class:`sandboxd.session.Session`).

The daemon's router calls :func:`wants_engineio` and hands matching requests to the
:class:`~.transports.EngineIOServer` that :func:`build` makes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..http import OriginPolicy, Request
from ..ratelimit import ClientGate
from .engine import EngineSettings
from .sockets import serve_connection
from .transports import EngineIOServer

#: Paths socket.io-client uses: its default, and the seed's second design's.
PATHS = frozenset({"/socket.io", "/sandbox/ws"})
NATIVE_PATH = "/sandbox/ws"


def wants_engineio(request: Request) -> bool:
    """``/socket.io/`` always; ``/sandbox/ws`` only with ``EIO`` in the query (without,
    it is the native protocol)."""
    path = request.path.rstrip("/")
    return path in PATHS and (path != NATIVE_PATH or "EIO" in request.query)


def build(hub: Any, credentials: Any = None, gate: Any = None) -> EngineIOServer:
    """The daemon's Engine.IO server; ``credentials`` (a
    :class:`~sandboxd.credentials.OpenCredentials`) registers each authenticated socket
    so a revoked token disconnects it; ``gate`` (a :class:`~sandboxd.ratelimit.ClientGate`)
    applies the failed-authentication backoff and the session caps."""
    c = hub.config.socketio
    settings = EngineSettings(ping_interval=c.ping_interval_seconds, ping_timeout=c.ping_timeout_seconds,
                              max_payload=c.max_payload_bytes)
    return EngineIOServer(settings, partial(serve_connection, hub, credentials, gate or ClientGate(hub.plugins, hub.config.server)), max_sessions=hub.config.server.max_sessions)


def cors_headers(request: Request, policy: OriginPolicy) -> dict[str, str]:
    """CORS for long-polling from a browser page on an allowed origin (the ones the
    daemon's origin check lets in: ``server.allowed_origins``): the origin is echoed,
    with credentials allowed, as the reference server's ``cors: {origin: [...],
    credentials: true}`` does. Others get none (they were refused before routing)."""
    origin = request.headers.get("origin")
    if origin is None or not policy.lists(origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}

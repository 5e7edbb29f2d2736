"""A Socket.IO socket is a session: the native session core, spoken in Socket.IO events.

The socket translates at the edge and nothing more. A client's ``emit(name, data)``
becomes the native message ``{"event": name, "data": data}``, handled by the same
:class:`~sandboxd.frontend.SessionCore` as a native WebSocket's (admission, policy,
streaming and backpressure are not repeated here); every event the session sends goes
out as ``42["name", data]``, with timestamps as ISO 8601 strings as in the seed, and
output in binary mode as an event whose ``data`` is a binary attachment.

Acknowledgements: an event sent with an ack id is given a ``ref`` of our own; the reply
carrying that ``ref`` (or the ``error``) goes to the ack instead of being emitted, and a
request that has no reply (``stdin-data``, ...) is acked with ``{}`` once handled.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import logging
import math
from datetime import datetime, timezone
from typing import Any

import msgspec
import trio

from .. import protocol as p
from ..errors import AuthBackoff, RateLimited, SandboxdError
from ..events import STREAM_NAMES, OutputEvent, ServerEvent
from ..frontend import SessionClosed, SessionCore
from ..http import Request
from ..plugin_types import HTTPRequest, Principal
from ..ratelimit import ClientGate
from . import engineio as eio
from . import packets as sio
from .engine import EngineSocket, SocketClosed, new_sid

log = logging.getLogger(__name__)

_encode_json = msgspec.json.Encoder().encode
_refs = itertools.count(1)
#: Refs this module gives requests that asked for an ack (never shown to clients).
_REF_PREFIX = "socketio-ack-"
#: Events whose data may be the bare container id (the seed's join-container "id").
_BARE_ID_EVENTS = frozenset({"join-container", "join-session"})
#: How long a new connection has to send its CONNECT packet.
CONNECT_TIMEOUT = 45.0


def iso_timestamp(unix: float) -> str:
    """``2025-05-14T12:34:56.789Z``: the seed's timestamps (UTC, milliseconds)."""
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def serve_connection(hub: Any, credentials: Any, gate: ClientGate, sock: EngineSocket,
                           request: Request) -> None:
    """Run one Engine.IO connection: namespace CONNECTs, each then a session."""
    decoder = sio.Decoder()
    packet: sio.Packet | None
    while True:
        packet = None
        with trio.move_on_after(CONNECT_TIMEOUT):
            packet = await _next_packet(sock, decoder)
        if packet is None:
            sock.close("no CONNECT in time")
            return
        if packet.type == sio.DISCONNECT:
            continue
        if packet.type != sio.CONNECT:
            sock.close("the first packet was not CONNECT")
            return
        if packet.namespace != sio.DEFAULT_NAMESPACE:
            await _send(sock, sio.Packet(sio.CONNECT_ERROR, packet.namespace, {"message": "Invalid namespace"}))
            continue
        try:
            principal, authenticated_by = await authenticate(gate, request, packet.data)
            if principal is not None and (refusal := gate.address_refusal(request.peer)
                                          or gate.user_refusal(principal)) is not None:
                raise RateLimited(refusal)
        except AuthBackoff as exc:
            await _send(sock, sio.Packet(sio.CONNECT_ERROR, data={
                "message": exc.message, "code": exc.code, "data": {"retryAfter": math.ceil(exc.retry_after)}}))
            continue
        except SandboxdError as exc:  # a plugin failed, or a session cap: refused
            await _send(sock, sio.Packet(sio.CONNECT_ERROR, data={"message": exc.message, "code": exc.code}))
            continue
        if principal is None:
            await _send(sock, sio.Packet(sio.CONNECT_ERROR, data={"message": "authentication required"}))
            continue
        socket = SocketIOSession(hub, sock, decoder, request.peer, principal)
        await _send(sock, sio.Packet(sio.CONNECT, data={"sid": socket.sid}))

        async def revoke(code: int, reason: str) -> None:
            """Credentials revoked: DISCONNECT the socket (``41``), end the session."""
            with trio.move_on_after(1):
                with contextlib.suppress(SocketClosed):
                    await _send(sock, sio.Packet(sio.DISCONNECT))
            sock.close(reason)

        try:
            with gate.counted(request.peer, principal), contextlib.nullcontext() if credentials is None else \
                    credentials.holding(authenticated_by, principal, revoke):
                await socket.run()
        except SessionClosed:
            pass


async def authenticate(gate: ClientGate, request: Request, auth: Any) -> tuple[Principal | None, HTTPRequest]:
    """The principal of a CONNECT: from the handshake's ``Authorization`` header or
    ``?token=``, else from the CONNECT payload's ``token`` (``io(url, {auth: {token}})``),
    with the request (as plugins see it) that authenticated it, to check again when
    plugins reload. None when authentication is required and none of them passes.

    Raises:
        AuthBackoff: too many failures from the address lately.
    """
    handshake = request.for_plugins()
    requests = [handshake]
    token = auth.get("token") if isinstance(auth, dict) else None
    if isinstance(token, str) and token:
        headers = {**handshake.headers, "authorization": f"Bearer {token}"}
        requests.append(HTTPRequest(handshake.method, handshake.path, handshake.query, headers, handshake.peer))
    principal, authenticated_by = await gate.authenticate(*requests)
    if principal is None:
        log.info("refused an unauthenticated Socket.IO connection from %s", request.peer)
    return principal, authenticated_by


class SocketIOSession(SessionCore):
    """One connected Socket.IO socket (namespace ``/``) over an Engine.IO session; its
    session id is the socket's id."""

    def __init__(self, hub: Any, sock: EngineSocket, decoder: sio.Decoder, peer: str,
                 principal: Principal) -> None:
        super().__init__(hub.ops, peer, principal, session_id=new_sid())
        self._sock = sock
        self._decoder = decoder
        #: (our ref, Socket.IO ack id) of the request being handled, until answered.
        self._pending_ack: tuple[str, int] | None = None

    @property
    def sid(self) -> str:
        return self.id

    async def run(self) -> None:
        """Serve the socket until the client disconnects it (or the connection ends)."""
        async with self.opened():
            while True:
                await self._handle_packet(await self._next_event())

    async def _next_event(self) -> sio.Packet:
        while True:
            try:
                packet = await _next_packet(self._sock, self._decoder)
            except SocketClosed:
                raise SessionClosed from None
            if packet.type == sio.DISCONNECT:
                raise SessionClosed
            if packet.type == sio.EVENT:
                return packet
            # Acks of events we never send with ids, a repeated CONNECT: nothing to do.

    async def _handle_packet(self, packet: sio.Packet) -> None:
        """One client event, as the native message of the same name and data."""
        name, args = packet.data[0], packet.data[1:]
        data = _debinarize(args[0]) if args else {}
        ref = None
        if packet.id is not None:
            ref = f"{_REF_PREFIX}{next(_refs)}"
            self._pending_ack = (ref, packet.id)
            if isinstance(data, str) and name in _BARE_ID_EVENTS:
                data = {"containerId": data}
            if isinstance(data, dict):
                data = {**data, "ref": ref}
        try:
            message = p.parse_client_message(_encode_json({"event": name, "data": data}).decode("utf-8"))
        except SandboxdError as exc:
            await self.report(exc, ref)
        else:
            await self.handle(message)
        if self._pending_ack is not None:  # handled, and nothing to reply
            self._pending_ack = None
            await self._send(sio.Packet(sio.ACK, data=[{}], id=packet.id))

    # --- session -> client ----------------------------------------------------------

    async def emit(self, name: str, data: dict[str, Any]) -> None:
        ref = data.get("ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            data = {k: v for k, v in data.items() if k != "ref"}
            if self._pending_ack is not None and ref == self._pending_ack[0]:
                ack_id = self._pending_ack[1]
                self._pending_ack = None
                await self._send(sio.Packet(sio.ACK, data=[{"error": data} if name == "error" else data], id=ack_id))
                return
        if isinstance(ts := data.get("timestamp"), (int, float)):
            data = {**data, "timestamp": iso_timestamp(ts)}
        if self.alias:
            name = p.ALIASES.get(name, name)
        # Server events hold no bytes: encoded directly, without looking for attachments.
        try:
            await self._sock.send([eio.message(sio.encode_event(name, _encode_json(data)))])
        except SocketClosed:
            raise SessionClosed from None

    async def emit_output(self, event: ServerEvent) -> None:
        if self.binary_output and isinstance(event, OutputEvent):
            if event.raw is None:
                return
            name = "exec-output" if self.alias else "execution-output"
            await self._send(sio.Packet(sio.EVENT, data=[name, {
                "executionId": event.execution_id, "type": STREAM_NAMES[event.stream_id],
                "seq": event.raw_seq, "data": b"".join(event.raw)}]))
        elif event.data is not None:
            await self.emit(event.name, event.data)

    async def _send(self, packet: sio.Packet) -> None:
        try:
            await _send(self._sock, packet)
        except SocketClosed:
            raise SessionClosed from None


async def _send(sock: EngineSocket, packet: sio.Packet) -> None:
    await sock.send([eio.message(m) for m in sio.encode(packet)])


async def _next_packet(sock: EngineSocket, decoder: sio.Decoder) -> sio.Packet:
    """The next whole packet; a malformed one closes the connection (SocketClosed)."""
    while True:
        message = await sock.receive()
        try:
            packet = decoder.receive(message)
        except sio.PacketError as exc:
            log.info("engine.io %s: malformed Socket.IO packet (%s); closing", sock.sid, exc)
            sock.close("malformed packet")
            raise SocketClosed from None
        if packet is not None:
            return packet


def _debinarize(value: Any) -> Any:
    """Binary attachments in a client's data, as the native protocol carries bytes:
    ``data``/``content`` become base64 with ``encoding: "base64"``; a file given as
    bytes (``upload-files``) becomes ``{content, encoding}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, bytes):
                encoded = base64.b64encode(item).decode("ascii")
                if key in ("data", "content"):
                    out[key], out["encoding"] = encoded, "base64"
                else:
                    out[key] = {"content": encoded, "encoding": "base64"}
            else:
                out[key] = _debinarize(item)
        return out
    if isinstance(value, list):
        return [_debinarize(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value

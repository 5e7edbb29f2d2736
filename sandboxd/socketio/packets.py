"""Socket.IO v5 packets, I/O-free: the default parser's text format and binary attachments.

A Socket.IO packet travels as the payload of Engine.IO *message* packets::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

followed, for BINARY_EVENT and BINARY_ACK, by one binary message per attachment; in the
JSON each attachment's place is held by ``{"_placeholder": true, "num": N}``.
:func:`encode` gives the messages to send; :class:`Decoder` takes messages one at a time
and gives back whole packets. Anything malformed raises :class:`PacketError` (the
reference server then closes the connection). Reference: the Socket.IO protocol,
revision 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
DEFAULT_NAMESPACE = "/"
#: Event names a client may not emit (the client library reserves them).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "newListener", "removeListener"})
#: Most binary attachments one packet may announce.
MAX_ATTACHMENTS = 10
_MAX_ACK_ID_DIGITS = 15

_encode_json = msgspec.json.Encoder().encode
_decode_json = msgspec.json.decode


class PacketError(ValueError):
    """A malformed Socket.IO packet."""


@dataclass(frozen=True)
class Packet:
    type: int
    namespace: str = DEFAULT_NAMESPACE
    #: The payload: an object (CONNECT, CONNECT_ERROR), a list (EVENT, ACK) or None;
    #: attachments appear in it as ``bytes``.
    data: Any = None
    #: The acknowledgement id (EVENT asking for one, ACK answering it).
    id: int | None = None


def encode(packet: Packet) -> list[str | bytes]:
    """The Engine.IO message payloads for ``packet``: its text, then its attachments.

    An EVENT or ACK whose data holds ``bytes`` goes out as BINARY_EVENT / BINARY_ACK.
    """
    attachments: list[bytes] = []
    data = _deconstruct(packet.data, attachments) if packet.data is not None else None
    kind = packet.type
    if attachments and kind in (EVENT, ACK):
        kind = BINARY_EVENT if kind == EVENT else BINARY_ACK
    head = str(kind)
    if kind in (BINARY_EVENT, BINARY_ACK):
        head += f"{len(attachments)}-"
    if packet.namespace != DEFAULT_NAMESPACE:
        head += packet.namespace + ","
    if packet.id is not None:
        head += str(packet.id)
    text = head if data is None else head + _encode_json(data).decode("utf-8")
    return [text, *attachments]


def encode_event(name: str, payload_json: str | bytes) -> str:
    """``2["name",<payload>]`` from an already JSON-encoded payload (the hot path for
    output: the payload is encoded once and shared by every socket)."""
    if isinstance(payload_json, bytes):
        payload_json = payload_json.decode("utf-8")
    return f'2["{name}",{payload_json}]'


def _deconstruct(value: Any, attachments: list[bytes]) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        attachments.append(bytes(value))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(value, list):
        return [_deconstruct(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _deconstruct(v, attachments) for k, v in value.items()}
    return value


def _reconstruct(value: Any, attachments: list[bytes]) -> Any:
    if isinstance(value, dict):
        if value.get("_placeholder") is True:
            num = value.get("num")
            if not isinstance(num, int) or isinstance(num, bool) or not 0 <= num < len(attachments):
                raise PacketError("attachment placeholder out of range")
            return attachments[num]
        return {k: _reconstruct(v, attachments) for k, v in value.items()}
    if isinstance(value, list):
        return [_reconstruct(v, attachments) for v in value]
    return value


def decode_text(text: str) -> tuple[Packet, int]:
    """A packet from its text, and how many attachments must follow it.

    Raises:
        PacketError: malformed (type, attachment count, ack id, JSON or payload shape).
    """
    if not text or text[0] not in "0123456":
        raise PacketError("unknown packet type")
    kind = int(text[0])
    i, n = 1, len(text)
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", i)
        count = text[i:dash] if dash > 0 else ""
        if not count.isdigit() or not count.isascii():
            raise PacketError("bad attachment count")
        attachments = int(count)
        if attachments > MAX_ATTACHMENTS:
            raise PacketError(f"more than {MAX_ATTACHMENTS} attachments")
        i = dash + 1
    namespace = DEFAULT_NAMESPACE
    if i < n and text[i] == "/":
        comma = text.find(",", i)
        end = n if comma < 0 else comma
        namespace = text[i:end]
        i = end + 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    if i - start > _MAX_ACK_ID_DIGITS:
        raise PacketError("ack id too long")
    ack_id = int(text[start:i]) if i > start else None
    data = None
    if i < n:
        try:
            data = _decode_json(text[i:])
        except (msgspec.DecodeError, RecursionError):
            raise PacketError("payload is not valid JSON") from None
    packet = Packet(kind, namespace, data, ack_id)
    _check_shape(packet)
    return packet, attachments


def _check_shape(p: Packet) -> None:
    """The payload shapes the reference parser accepts, per packet type."""
    d = p.data
    if p.type == CONNECT:
        ok = d is None or isinstance(d, dict)
    elif p.type == DISCONNECT:
        ok = d is None
    elif p.type == CONNECT_ERROR:
        ok = isinstance(d, (str, dict))
    elif p.type in (EVENT, BINARY_EVENT):
        ok = (isinstance(d, list) and len(d) > 0 and isinstance(d[0], str)
              and d[0] not in RESERVED_EVENTS)
    else:  # ACK, BINARY_ACK
        ok = isinstance(d, list) and p.id is not None
    if not ok:
        raise PacketError(f"invalid payload for packet type {p.type}")


class Decoder:
    """Turns Engine.IO messages into whole Socket.IO packets (one connection's state)."""

    def __init__(self) -> None:
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []

    def receive(self, message: str | bytes) -> Packet | None:
        """Feed one message; the packet it completes, or None while attachments are due.

        Raises:
            PacketError: malformed text, text while attachments are due, or an
                attachment nobody announced.
        """
        if isinstance(message, str):
            if self._pending is not None:
                raise PacketError("a text packet arrived while attachments were due")
            packet, attachments = decode_text(message)
            if attachments == 0:
                if packet.type in (BINARY_EVENT, BINARY_ACK):
                    return Packet(EVENT if packet.type == BINARY_EVENT else ACK,
                                  packet.namespace, _reconstruct(packet.data, []), packet.id)
                return packet
            self._pending, self._expected, self._buffers = packet, attachments, []
            return None
        if self._pending is None:
            raise PacketError("an unexpected binary attachment")
        self._buffers.append(bytes(message))
        if len(self._buffers) < self._expected:
            return None
        p, self._pending = self._pending, None
        kind = EVENT if p.type == BINARY_EVENT else ACK
        return Packet(kind, p.namespace, _reconstruct(p.data, self._buffers), p.id)

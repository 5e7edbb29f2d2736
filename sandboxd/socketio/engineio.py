"""Engine.IO v4 packets, I/O-free.

An Engine.IO packet is a type digit and an optional payload. On a WebSocket each packet
is one frame: a text frame ``"4hello"``, or a binary frame holding a binary *message*
as is. On HTTP long-polling several packets travel in one body, separated by the record
separator ``\\x1e``, a binary message written as ``b`` + base64.

This module represents a packet the way the WebSocket transport sends it: a ``str``
(type digit + text payload) or ``bytes`` (a binary message). That is also what the
polling transport queues, so output is encoded once, whichever transport carries it.
Reference: the Engine.IO protocol, revision 4 (docs/protocol.md links it).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Iterable, Union

#: Packet types.
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0123456"
_TYPES = frozenset("0123456")
#: Separates packets in a polling payload.
SEPARATOR = "\x1e"
PROTOCOL = 4

#: One packet as it goes on a WebSocket: text (type digit first) or a binary message.
Packet = Union[str, bytes]


class EngineIOError(ValueError):
    """A malformed packet or payload: the reference server closes the session."""


def open_packet(sid: str, *, upgrades: list[str], ping_interval_ms: int, ping_timeout_ms: int,
                max_payload: int) -> str:
    """The handshake packet (``0{"sid": ...}``)."""
    return OPEN + json.dumps({
        "sid": sid, "upgrades": upgrades, "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms, "maxPayload": max_payload,
    }, separators=(",", ":"))


def message(data: str | bytes) -> Packet:
    """A message packet carrying ``data`` (text, or a binary message)."""
    return data if isinstance(data, bytes) else MESSAGE + data


def decode_packet(frame: str | bytes | bytearray) -> tuple[str, str | bytes]:
    """``(type, payload)`` of one WebSocket frame; a binary frame is a binary message.

    Raises:
        EngineIOError: an empty text frame or an unknown packet type.
    """
    if isinstance(frame, (bytes, bytearray)):
        return MESSAGE, bytes(frame)
    if not frame or frame[0] not in _TYPES:
        raise EngineIOError(f"malformed packet {frame[:16]!r}")
    return frame[0], frame[1:]


def encode_payload(packets: Iterable[Packet]) -> str:
    """A polling response body: packets joined by the record separator, binary
    messages as ``b`` + base64."""
    return SEPARATOR.join(
        p if isinstance(p, str) else "b" + base64.b64encode(p).decode("ascii") for p in packets
    )


def decode_payload(body: str) -> list[tuple[str, str | bytes]]:
    """The packets of a polling request body, each as :func:`decode_packet` gives it.

    Raises:
        EngineIOError: an empty body, an empty or unknown packet, or bad base64.
    """
    packets: list[tuple[str, str | bytes]] = []
    for part in body.split(SEPARATOR):
        if part[:1] == "b":
            try:
                packets.append((MESSAGE, base64.b64decode(part[1:], validate=True)))
            except binascii.Error:
                raise EngineIOError("malformed base64 in a binary packet") from None
        else:
            packets.append(decode_packet(part))
    return packets

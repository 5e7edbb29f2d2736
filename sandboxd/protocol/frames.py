"""Server frames: JSON text frames in either dialect, and binary output frames.

The binary output codec is shared with :mod:`sandboxd.client`.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

import msgspec

from .client import Ref

# msgspec's JSON codec is ~10x faster than the standard library's on large strings, and
# encoding output frames is the daemon's hottest path (see bench/).
_encoder = msgspec.json.Encoder()

#: Server event names a session that started with ``join-session`` sees instead.
ALIASES = {
    "container-joined": "session-joined",
    "execution-output": "exec-output",
    "execution-complete": "exec-finished",
}


def encode(event: str, data: Mapping[str, Any], *, alias: bool = False) -> str:
    """One server frame as text; ``alias`` picks the seed's event names."""
    if alias:
        event = ALIASES.get(event, event)
    return _encoder.encode({"event": event, "data": data}).decode("utf-8")


#: Kind byte of a binary output frame.
BINARY_OUTPUT = 1
_BINARY_HEADER = struct.Struct(">BBQB")


def encode_binary_output(
    execution_id: str, stream_id: int, seq: int, pieces: list[bytes | memoryview] | tuple[bytes | memoryview, ...]
) -> bytes:
    """A binary output frame: kind, stream (1 stdout, 2 stderr), seq, id length, id, bytes."""
    eid = execution_id.encode("ascii")
    return b"".join((_BINARY_HEADER.pack(BINARY_OUTPUT, stream_id, seq, len(eid)), eid, *pieces))


def decode_binary_output(frame: bytes | bytearray) -> tuple[str, str, int, memoryview]:
    """Inverse of :func:`encode_binary_output`: ``(executionId, type, seq, data)``."""
    kind, stream_id, seq, n = _BINARY_HEADER.unpack_from(frame)
    if kind != BINARY_OUTPUT or stream_id not in (1, 2):
        raise ValueError("not a sandboxd binary output frame")
    start = _BINARY_HEADER.size
    eid = bytes(frame[start : start + n]).decode("ascii")
    return eid, "stdout" if stream_id == 1 else "stderr", seq, memoryview(frame)[start + n :]


def with_ref(data: dict[str, Any], ref: Ref) -> dict[str, Any]:
    if ref is not None:
        data["ref"] = ref
    return data

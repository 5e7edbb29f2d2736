"""Turning an output stream's bytes into JSON-safe text chunks without losing a byte.

Docker hands us writes cut anywhere, including inside a multi-byte UTF-8 character.
:class:`StreamDecoder` keeps an incomplete trailing character (at most 3 bytes) until
the rest arrives, so text always arrives whole. A chunk that is not valid UTF-8 is sent
as base64 instead, never with replacement characters, so clients can always rebuild
the exact bytes. So is a chunk that is mostly control bytes (see :func:`control_heavy`):
JSON escapes each as ``\\u00XX``, six bytes for one, where base64 costs 4/3 of every
byte. ``seq`` is the byte offset of a chunk in its stream: a client knows
what it has, and a later resume can say where to start.
"""

from __future__ import annotations

import base64
from typing import NamedTuple


#: C0 control bytes that JSON must escape as ``\u00XX``; tab, line feed, carriage return
#: (short escapes, and in every text) and escape (terminal colours) are not counted.
CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D, 0x1B))
#: How much of a chunk :func:`control_heavy` looks at: its first bytes.
CONTROL_SAMPLE = 4096


def control_heavy(body: bytes | bytearray | memoryview) -> bool:
    """True when more than 1/16 of the chunk's first :data:`CONTROL_SAMPLE` bytes are
    :data:`CONTROL_BYTES`: such a chunk is smaller, and far cheaper to encode and parse,
    as base64 than as JSON text."""
    sample = bytes(body[:CONTROL_SAMPLE])
    controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))
    return controls * 16 > len(sample)


class Chunk(NamedTuple):
    #: Text, or base64 of the raw bytes when ``binary``.
    data: str
    binary: bool
    #: Byte offset of the chunk's first byte in its stream.
    seq: int
    #: How many stream bytes the chunk stands for.
    nbytes: int


def _incomplete_tail(buf: bytes | bytearray | memoryview) -> int:
    """How many trailing bytes start a UTF-8 character that is not complete yet."""
    n = len(buf)
    for i in range(1, min(3, n) + 1):
        b = buf[n - i]
        if b & 0xC0 == 0x80:  # continuation byte: keep looking for the lead
            continue
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return i if need > i else 0
        return 0
    return 0


class StreamDecoder:
    """Incremental, lossless decoder for one stream (stdout or stderr)."""

    __slots__ = ("offset", "_pending")

    def __init__(self, offset: int = 0) -> None:
        #: Bytes of the stream consumed so far (including a pending partial character).
        self.offset = offset
        self._pending = b""

    def decode(self, payload: bytes | bytearray | memoryview) -> Chunk | None:
        """Consume ``payload``; return the chunk it completes, if any."""
        self.offset += len(payload)
        buf = self._pending + payload if self._pending else payload
        cut = len(buf) - _incomplete_tail(buf)
        self._pending = bytes(buf[cut:])
        if cut == 0:
            return None
        body = buf[:cut] if cut != len(buf) else buf
        seq = self.offset - len(self._pending) - cut
        if control_heavy(body):
            return Chunk(base64.b64encode(body).decode("ascii"), True, seq, cut)
        try:
            text = str(body, "utf-8")
        except UnicodeDecodeError:
            return Chunk(base64.b64encode(body).decode("ascii"), True, seq, cut)
        return Chunk(text, False, seq, cut)

    def skip(self, nbytes: int) -> None:
        """Account for ``nbytes`` sent without decoding; a held partial character is dropped
        from the text view (it went out in binary form)."""
        self.offset += nbytes
        self._pending = b""

    def flush(self) -> Chunk | None:
        """End of stream: whatever is pending is an incomplete character, sent as base64."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, b""
        return Chunk(base64.b64encode(pending).decode("ascii"), True, self.offset - len(pending), len(pending))


def chunk_bytes(data: str, binary: bool) -> bytes:
    """The exact stream bytes a chunk stands for (the client-side inverse)."""
    return base64.b64decode(data) if binary else data.encode("utf-8")

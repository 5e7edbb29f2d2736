"""I/O-free parser for Docker's multiplexed exec stream.

Without a TTY, the Engine API frames each write of the process as an 8-byte header,
``[stream, 0, 0, 0, size (4 bytes, big-endian)]``, then ``size`` payload bytes. Stream 1
is stdout, 2 is stderr (0, stdin, is never sent back). Frames arrive cut at arbitrary
socket read boundaries, so the parser keeps a partial header or payload between calls.
"""

from __future__ import annotations

import struct

STDOUT = 1
STDERR = 2

_HEADER = struct.Struct(">BxxxL")


class FrameError(Exception):
    """The stream is not Docker's multiplexed format."""


class FrameParser:
    """Feed raw bytes in, get ``(stream_id, payload)`` pairs out.

    Payloads are returned as they arrive: a large frame split across reads comes out
    as several pieces for the same stream, so the parser never holds more than one read
    plus one header. Payloads that fit entirely in a read are memoryview slices of it,
    so no copy is made on the hot path.
    """

    __slots__ = ("_header", "_stream", "_remaining")

    def __init__(self) -> None:
        self._header = bytearray()
        self._stream = 0
        self._remaining = 0

    @property
    def at_boundary(self) -> bool:
        """True when no frame is partially read (a clean place for the stream to end)."""
        return not self._header and not self._remaining

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, memoryview]]:
        out: list[tuple[int, memoryview]] = []
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._remaining:
                take = min(self._remaining, end - pos)
                out.append((self._stream, view[pos : pos + take]))
                self._remaining -= take
                pos += take
                continue
            need = 8 - len(self._header)
            if self._header or end - pos < 8:
                self._header += view[pos : pos + need]
                pos += min(need, end - pos)
                if len(self._header) < 8:
                    break
                stream, size = _HEADER.unpack(self._header)
                self._header.clear()
            else:
                stream, size = _HEADER.unpack_from(view, pos)
                pos += 8
            if stream not in (STDOUT, STDERR, 0):
                raise FrameError(f"unexpected stream id {stream} in exec output")
            self._stream, self._remaining = stream, size
        return out

"""Docker's multiplexed exec stream is split into stdout and stderr, whatever the cuts."""

import struct

import pytest

from sandboxd.engine import STDERR, STDOUT, FrameError, FrameParser


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def collect(parser: FrameParser, pieces: list[bytes]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for piece in pieces:
        for sid, payload in parser.feed(piece):
            if out and out[-1][0] == sid:
                out[-1] = (sid, out[-1][1] + bytes(payload))
            else:
                out.append((sid, bytes(payload)))
    return out


WIRE = frame(STDOUT, b"hello ") + frame(STDERR, b"oops\n") + frame(STDOUT, b"world\n") + frame(STDOUT, b"")


def test_whole_buffer_is_split_by_stream_in_order():
    assert collect(FrameParser(), [WIRE]) == [(STDOUT, b"hello "), (STDERR, b"oops\n"), (STDOUT, b"world\n")]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 13])
def test_any_read_boundaries_give_the_same_result(size):
    pieces = [WIRE[i : i + size] for i in range(0, len(WIRE), size)]
    assert collect(FrameParser(), pieces) == [(STDOUT, b"hello "), (STDERR, b"oops\n"), (STDOUT, b"world\n")]


def test_large_frame_is_passed_on_as_it_arrives():
    parser = FrameParser()
    big = frame(STDOUT, b"x" * 100_000)
    first = parser.feed(big[:50_000])
    assert sum(len(p) for _, p in first) == 50_000 - 8
    assert not parser.at_boundary
    rest = parser.feed(big[50_000:])
    assert sum(len(p) for _, p in rest) == 100_000 - (50_000 - 8)
    assert parser.at_boundary


def test_unknown_stream_id_is_an_error():
    with pytest.raises(FrameError):
        FrameParser().feed(frame(7, b"x"))

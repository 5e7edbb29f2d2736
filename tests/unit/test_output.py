"""Output bytes become JSON-safe chunks with no byte lost, split or replaced."""

import os

from sandboxd.output import StreamDecoder, chunk_bytes


def decode_all(pieces):
    dec = StreamDecoder()
    chunks = [c for c in (dec.decode(p) for p in pieces) if c is not None]
    if (tail := dec.flush()) is not None:
        chunks.append(tail)
    return chunks


def test_multibyte_character_split_across_writes_arrives_whole():
    euro = "€".encode()  # 3 bytes
    chunks = decode_all([b"price: " + euro[:1], euro[1:2], euro[2:] + b"!"])
    assert [c.data for c in chunks] == ["price: ", "€!"]
    assert all(not c.binary for c in chunks)


def test_four_byte_character_split_after_each_byte():
    emoji = "😀".encode()
    chunks = decode_all([emoji[i : i + 1] for i in range(4)])
    assert [(c.data, c.binary) for c in chunks] == [("😀", False)]


def test_invalid_utf8_is_base64_and_decodes_to_the_exact_bytes():
    raw = b"ok \xff\xfe bad"
    chunks = decode_all([raw])
    assert len(chunks) == 1 and chunks[0].binary
    assert chunk_bytes(chunks[0].data, True) == raw


def test_truncated_character_at_end_of_stream_is_kept_as_base64():
    chunks = decode_all([b"abc\xe2\x82"])
    assert [(c.data, c.binary) for c in chunks] == [("abc", False), ("4oI=", True)]
    assert b"".join(chunk_bytes(c.data, c.binary) for c in chunks) == b"abc\xe2\x82"


def test_seq_is_the_byte_offset_of_each_chunk():
    euro = "€".encode()
    chunks = decode_all([b"ab" + euro[:2], euro[2:] + b"cd", b"\xff"])
    offsets = [c.seq for c in chunks]
    sizes = [c.nbytes for c in chunks]
    assert offsets == [0, 2, 7]
    assert sizes == [2, 5, 1]


def test_random_bytes_in_random_pieces_round_trip():
    rng = __import__("random").Random(7)
    data = os.urandom(50_000) + "héllo wörld €😀".encode() * 100
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, 700)
        pieces.append(data[i : i + n])
        i += n
    chunks = decode_all(pieces)
    assert b"".join(chunk_bytes(c.data, c.binary) for c in chunks) == data
    pos = 0
    for c in chunks:
        assert c.seq == pos
        pos += c.nbytes


def test_a_chunk_with_more_than_a_sixteenth_control_bytes_is_base64():
    # 4096-byte sample: 256 control bytes is exactly 1/16 (text), 257 is more (base64).
    at_limit = b"\x00" * 256 + b"a" * (4096 - 256)
    over = b"\x01" * 257 + b"a" * (4096 - 257)
    assert [(c.data, c.binary) for c in decode_all([at_limit])] == [(at_limit.decode(), False)]
    [chunk] = decode_all([over])
    assert chunk.binary and chunk_bytes(chunk.data, True) == over
    # Only the first 4096 bytes are sampled; tab, newline, CR and ESC never count.
    assert not decode_all([b"a" * 4096 + b"\x00" * 4096])[0].binary
    assert not decode_all([b"\t\n\r\x1b" * 100])[0].binary
    nuls = decode_all([b"\x00" * 10])
    assert nuls[0].binary and chunk_bytes(nuls[0].data, True) == b"\x00" * 10

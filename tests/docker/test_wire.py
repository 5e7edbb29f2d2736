"""Broken WebSocket frames get an RFC 6455 close frame with the right code (#12)."""

from __future__ import annotations

import os
import socket
import struct

import pytest

HANDSHAKE = ("GET /sandbox/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def frame(first_byte: int, payload: bytes, masked: bool = True) -> bytes:
    if not masked:
        return bytes([first_byte, len(payload)]) + payload
    key = os.urandom(4)
    return bytes([first_byte, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_code_after(port: int, data: bytes) -> int | None:
    """Send ``data`` on an open session; the code of the close frame that comes back
    (None if the connection is dropped without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(HANDSHAKE.encode())
        f = s.makefile("rb")
        assert b" 101 " in f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
        s.sendall(data)
        while True:
            head = f.read(2)
            if len(head) < 2:
                return None
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", f.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", f.read(8))[0]
            body = f.read(length)
            if head[0] & 0x0F == 0x8:
                return struct.unpack("!H", body[:2])[0] if len(body) >= 2 else None


@pytest.mark.parametrize("data,code", [
    (frame(0x81, b"\xff\xfe not utf-8"), 1007),
    (frame(0xC1, b"{}"), 1002),
    (frame(0x81, b"{}", masked=False), 1002),
    (frame(0x83, b"x"), 1002),
    (frame(0x80, b"x"), 1002),
], ids=["invalid-utf8", "rsv1", "unmasked", "unknown-opcode", "stray-continuation"])
def test_protocol_errors_are_answered_with_a_close_frame(daemon, data, code):
    assert close_code_after(daemon.port, data) == code

"""The Engine.IO v4 and Socket.IO v5 codecs, pinned by the protocol documents' examples."""

from __future__ import annotations

import json

import pytest

from sandboxd.socketio import engineio as eio
from sandboxd.socketio import packets as sio
from sandboxd.socketio.packets import Packet

# --- Engine.IO ------------------------------------------------------------------


def test_open_packet_carries_the_handshake_fields():
    text = eio.open_packet("lv_VI97HAXpY6yYWAAAC", upgrades=["websocket"], ping_interval_ms=25000,
                           ping_timeout_ms=20000, max_payload=1000000)
    assert text[0] == "0"
    assert json.loads(text[1:]) == {"sid": "lv_VI97HAXpY6yYWAAAC", "upgrades": ["websocket"],
                                    "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000}


def test_payload_examples_from_the_engineio_document():
    assert eio.encode_payload(["4hello", "2", "4world"]) == "4hello\x1e2\x1e4world"
    assert eio.encode_payload(["4hello", b"\x01\x02\x03\x04"]) == "4hello\x1ebAQIDBA=="
    assert eio.decode_payload("4hello\x1e2\x1e4world") == [("4", "hello"), ("2", ""), ("4", "world")]
    assert eio.decode_payload("4hello\x1ebAQIDBA==") == [("4", "hello"), ("4", b"\x01\x02\x03\x04")]
    # UTF-8 text is carried as is (v4 dropped the length prefixes).
    assert eio.decode_payload("4€€€") == [("4", "€€€")]


def test_websocket_frames():
    assert eio.decode_packet("2probe") == ("2", "probe")
    assert eio.decode_packet("5") == ("5", "")
    assert eio.decode_packet(b"\x01\x02") == ("4", b"\x01\x02")
    assert eio.message('2["x"]') == '42["x"]'
    assert eio.message(b"\x00") == b"\x00"


@pytest.mark.parametrize("body", ["", "abc", "4a\x1e", "9", "bA=Q", "b!!"])
def test_malformed_payloads_are_refused(body):
    with pytest.raises(eio.EngineIOError):
        eio.decode_payload(body)


# --- Socket.IO: the document's examples, both ways --------------------------------

EXAMPLES = [
    (Packet(sio.CONNECT), ["0"]),
    (Packet(sio.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}), ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}']),
    (Packet(sio.CONNECT_ERROR, data={"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
    (Packet(sio.EVENT, data=["foo"]), ['2["foo"]']),
    (Packet(sio.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(sio.EVENT, data=["baz", b"\x01\x02\x03\x04"]),
     ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"]),
    (Packet(sio.EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
     ['52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02", b"\x03\x04"]),
    (Packet(sio.EVENT, data=["foo"], id=12), ['212["foo"]']),
    (Packet(sio.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (Packet(sio.ACK, data=["bar", b"\x01\x02\x03\x04"], id=15),
     ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"]),
    (Packet(sio.DISCONNECT), ["1"]),
    (Packet(sio.DISCONNECT, "/admin"), ["1/admin,"]),
]


@pytest.mark.parametrize(("packet", "wire"), EXAMPLES)
def test_document_examples_encode(packet, wire):
    assert sio.encode(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), EXAMPLES)
def test_document_examples_decode(packet, wire):
    decoder = sio.Decoder()
    results = [decoder.receive(m) for m in wire]
    assert results[:-1] == [None] * (len(wire) - 1)
    assert results[-1] == packet


def test_connect_with_an_auth_payload():
    packet, attachments = sio.decode_text('0{"token":"123"}')
    assert packet == Packet(sio.CONNECT, data={"token": "123"}) and attachments == 0


def test_event_json_payload_is_shared_not_reencoded():
    assert sio.encode_event("exec-output", b'{"data":"hi"}') == '2["exec-output",{"data":"hi"}]'


@pytest.mark.parametrize("text", [
    "", "7", "2", "2{}", "2[]", "2[1]", '2["connect"]', "2[\"a\"", "3[]", "1{}", "0[]",
    "5-[\"a\"]", "5x-[\"a\"]", "511-[\"a\"]", '2' + "9" * 20 + '["a"]', "4",
])
def test_malformed_packets_are_refused(text):
    with pytest.raises(sio.PacketError):
        sio.Decoder().receive(text)


def test_attachments_must_be_announced_and_complete():
    decoder = sio.Decoder()
    with pytest.raises(sio.PacketError):
        decoder.receive(b"\x00")
    assert decoder.receive('51-["a",{"_placeholder":true,"num":0}]') is None
    with pytest.raises(sio.PacketError):
        decoder.receive('2["b"]')  # text while an attachment is due
    decoder = sio.Decoder()
    decoder.receive('51-["a",{"_placeholder":true,"num":3}]')
    with pytest.raises(sio.PacketError):
        decoder.receive(b"x")  # placeholder names a missing attachment

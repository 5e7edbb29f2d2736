"""Engine.IO sessions in-process: the bounded outbox, polls, the upgrade and the heartbeat."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from sandboxd.socketio import engineio as eio
from sandboxd.socketio.engine import OUTBOX_ITEMS, EngineSettings, EngineSocket, SocketClosed
from sandboxd.socketio.sockets import _debinarize, iso_timestamp

SETTINGS = EngineSettings(ping_interval=25.0, ping_timeout=20.0, poll_budget=100)


async def test_the_outbox_is_bounded_and_a_poll_takes_what_is_queued():
    sock = EngineSocket("s", SETTINGS, "polling")
    for i in range(OUTBOX_ITEMS):
        await sock.send([f"4{i:02}" + "x" * 27])  # 30 bytes each
    blocked = trio.Event()

    async def one_more():
        await sock.send(["4last"])
        blocked.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one_more)
        await trio.testing.wait_all_tasks_blocked()
        assert not blocked.is_set(), "a full outbox makes the sender wait"
        packets = await sock.next_items(1.0)
        assert [p[:3] for p in packets] == ["400", "401", "402", "403"], "in order, up to the poll budget"
        await blocked.wait()


async def test_a_binary_packet_and_its_attachments_stay_together():
    sock = EngineSocket("s", SETTINGS, "polling")
    await sock.send(['451-["e",{"_placeholder":true,"num":0}]', b"\x01"])
    assert eio.encode_payload(await sock.next_items(1.0)) == '451-["e",{"_placeholder":true,"num":0}]\x1ebAQ=='


async def test_a_waiting_poll_returns_noop_on_upgrade_and_close_on_close(autojump_clock):
    sock = EngineSocket("s", SETTINGS, "polling")
    async with trio.open_nursery() as nursery:
        results = []

        async def poll():
            results.append(await sock.next_items(60.0))

        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        sock.start_upgrade()
    assert results == [[eio.NOOP]]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        sock.close("test")
    assert results[1] == [eio.CLOSE]
    with pytest.raises(SocketClosed):
        await sock.send(["4x"])


async def test_an_empty_poll_returns_after_its_timeout(autojump_clock):
    sock = EngineSocket("s", SETTINGS, "polling")
    start = trio.current_time()
    assert await sock.next_items(25.0) == []
    assert trio.current_time() - start == pytest.approx(25.0)


@pytest.mark.parametrize("answers", [True, False])
async def test_heartbeat(autojump_clock, answers):
    """The server pings every interval; no pong within the timeout closes the socket."""
    sock = EngineSocket("s", EngineSettings(ping_interval=25.0, ping_timeout=20.0), "polling")

    async def client():
        while not sock.closed:
            packets = await sock.next_items(100.0)
            if answers and eio.PING in packets:
                await sock.on_packet(eio.PONG, "")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        with trio.move_on_after(200):
            await sock.run(lambda s: trio.sleep_forever())
        nursery.cancel_scope.cancel()
    if answers:
        assert not sock.closed or sock.close_reason == "session ended"
    else:
        assert sock.close_reason == "ping timeout"


def test_iso_timestamps_have_milliseconds_and_z():
    assert iso_timestamp(1747226096.789) == "2025-05-14T12:34:56.789Z"


def test_binary_attachments_become_the_native_base64_forms():
    assert _debinarize({"executionId": "e", "data": b"\xff"}) == {"executionId": "e", "data": "/w==",
                                                                  "encoding": "base64"}
    assert _debinarize({"files": {"a.bin": b"\x00", "b": {"content": b"\x01", "mode": "755"}}}) == {
        "files": {"a.bin": {"content": "AA==", "encoding": "base64"},
                  "b": {"content": "AQ==", "encoding": "base64", "mode": "755"}}}

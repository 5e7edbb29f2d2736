"""Limits, flow control and shutdown: no client can make the daemon grow or hang."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import time

import trio
import trio_websocket

from sandboxd.client import open_client

from .conftest import FAST_IMAGE
from .helpers import expect_event, follow

MiB = 1024 * 1024


async def test_slow_reader_gets_backpressure_not_buffering(make_daemon):
    daemon = make_daemon()
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        await follow(client, (await client.call("execute-command", {"containerId": sandbox, "command": ["true"]}))["executionId"])
        baseline = daemon.rss_kib()
        accepted = await client.call("execute-command", {
            "containerId": sandbox, "command": ["yes", "flood " * 100], "timeout": 60})
        peak = baseline
        last_seq = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            ev = await client.next_event()  # one message at a time, slowly
            if ev.name == "execution-output":
                last_seq = ev.data["seq"]
            await trio.sleep(0.02)
            peak = max(peak, daemon.rss_kib())
        await client.call("kill", {"executionId": accepted["executionId"]})
        complete = await expect_event(client, "execution-complete", timeout=20)
    assert complete["status"] == "killed"
    # `yes` writes gigabytes in 4 s when nothing holds it back; the reader took ~200
    # messages, so the command must have been blocked on write.
    assert last_seq < 128 * MiB
    assert (peak - baseline) * 1024 < 40 * MiB, f"RSS grew by {(peak - baseline) // 1024} MiB"


async def test_100_watchers_that_read_nothing_cost_no_memory_and_then_catch_up(make_daemon):
    """Watchers follow the log store, not memory: 100 idle ones while 50 MiB stream keep
    the daemon's RSS within 40 MiB of where it started, and each then gets every byte."""
    # Keepalive pings off: a watcher that reads nothing cannot answer them, and on a
    # loaded machine the stream may take longer than the ping timeout.
    daemon = make_daemon("[server]\nmax_message_bytes = 1048576\nping_interval_seconds = 0\n")
    size = 50 * MiB
    script = f"head -c {size} /dev/urandom > /tmp/blob && sha256sum /tmp/blob >&2 && cat /tmp/blob"
    async with open_client(daemon.url) as client, contextlib.AsyncExitStack() as stack:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        watchers = []
        for _ in range(100):
            watcher = await stack.enter_async_context(open_client(daemon.url))
            await watcher.use_binary_output()
            await watcher.call("join-container", {"containerId": sandbox})
            watchers.append(watcher)
        baseline = daemon.rss_kib()
        accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", script]})
        peak = baseline
        seen = None
        async with trio.open_nursery() as nursery:
            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, daemon.rss_kib())
                    await trio.sleep(0.05)
            nursery.start_soon(sample)
            seen = await follow(client, accepted["executionId"], timeout=120)
            nursery.cancel_scope.cancel()
        assert seen.complete["status"] == "success" and len(seen.stdout) == size
        digest = bytes(seen.stderr).split()[0].decode()
        assert (peak - baseline) * 1024 < 40 * MiB, f"RSS grew by {(peak - baseline) // 1024} MiB"
        # now every watcher catches up, from the store, with every byte
        async def catch_up(watcher) -> None:
            got = await follow(watcher, accepted["executionId"], timeout=120)
            assert got.complete["status"] == "success"
            assert hashlib.sha256(got.stdout).hexdigest() == digest

        async with trio.open_nursery() as nursery:
            for watcher in watchers:
                nursery.start_soon(catch_up, watcher)


async def test_output_cap_stops_the_command_and_marks_it_truncated(make_daemon):
    daemon = make_daemon("[limits]\nmax_output_bytes = 1048576\n")
    async with open_client(daemon.url) as client:
        accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["yes"]})
        seen = await follow(client, accepted["executionId"], timeout=30)
    assert len(seen.stdout) == 1048576
    warnings = [d for n, d in seen.events if n == "warning"]
    assert [w["code"] for w in warnings] == ["OUTPUT_TRUNCATED"]
    assert seen.complete["truncated"] is True and seen.complete["status"] == "killed"
    # the CLI prints the warning, once, on stderr
    result = await trio.to_thread.run_sync(lambda: daemon.cli("exec", "--image", FAST_IMAGE, "-f", "--", "yes"))
    assert (result.returncode, len(result.stdout)) == (143, 1048576)
    assert result.stderr == f"sandboxd: warning: {warnings[0]['message']} (OUTPUT_TRUNCATED)\n".encode()
    replayed = await trio.to_thread.run_sync(lambda: daemon.cli("logs", accepted["executionId"]))
    assert (len(replayed.stdout), replayed.stderr) == (1048576, result.stderr)


async def test_concurrent_executions_per_sandbox_are_limited(make_daemon):
    daemon = make_daemon("[limits]\nmax_executions_per_sandbox = 2\n")
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        ids = [(await client.call("execute-command", {"containerId": sandbox, "command": ["sleep", "30"]}))["executionId"]
               for _ in range(2)]
        await client.send("execute-command", {"containerId": sandbox, "command": ["true"], "ref": "third"})
        err = await expect_event(client, "error")
        assert err["code"] == "LIMIT_EXCEEDED" and err["ref"] == "third"
        for eid in ids:
            await client.call("kill", {"executionId": eid})


async def test_timeout_requests_are_capped_by_config(make_daemon):
    daemon = make_daemon("[limits]\nmax_exec_timeout_seconds = 1.0\n")
    async with open_client(daemon.url) as client:
        accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["sleep", "60"], "timeout": 3600})
        seen = await follow(client, accepted["executionId"], timeout=15)
    assert seen.complete["status"] == "timeout"


async def test_oversized_message_closes_the_connection_with_1009(make_daemon):
    daemon = make_daemon("[server]\nmax_message_bytes = 65536\n")
    async with open_client(daemon.url) as client:
        await client.ws.send_message('{"event": "ping", "data": {"pad": "' + "x" * 70000 + '"}}')
        with trio.fail_after(10):
            try:
                while True:
                    await client.ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                assert exc.reason.code == 1009
    async with open_client(daemon.url) as client:  # the daemon is fine
        assert (await client.call("ping"))["ref"]


async def test_sigterm_stops_running_commands_and_exits_within_the_grace_bound(make_daemon):
    daemon = make_daemon("[server]\nshutdown_grace_seconds = 1.0\n")
    async with open_client(daemon.url) as client:
        accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["sleep", "100"]})
        await trio.sleep(0.3)
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        seen = await follow(client, accepted["executionId"], timeout=15)
        assert seen.complete["status"] == "killed"
        with trio.fail_after(15):
            try:
                while True:
                    await client.ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                assert exc.reason.code == 1001
    code = await trio.to_thread.run_sync(daemon.proc.wait, 15)
    assert code == 0
    assert time.monotonic() - started < 10
    assert daemon.containers() == []  # the one-off sandbox went with it


async def test_a_client_that_stops_answering_pings_is_disconnected(make_daemon):
    daemon = make_daemon("[server]\nping_interval_seconds = 0.3\nping_timeout_seconds = 0.5\n")
    stream = await trio.open_tcp_stream("127.0.0.1", daemon.port)
    # A raw WebSocket handshake, then silence: this client never reads, so never pongs.
    await stream.send_all(
        b"GET /sandbox/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    received = b""
    with trio.fail_after(10):
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break  # the daemon hung up
            received += data
    assert b"101 Switching Protocols" in received
    assert b"\x88" in received  # a close frame (1011, ping timeout) came before the hang-up
    async with open_client(daemon.url) as client:  # well-behaved clients are unaffected
        await trio.sleep(1.5)
        assert "ref" in await client.call("ping")

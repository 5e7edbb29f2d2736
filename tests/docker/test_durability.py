"""Nothing lost: logs, replay, reconnect, restart, retention."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import trio

from sandboxd.client import open_client

from .conftest import FAST_IMAGE
from .helpers import expect_event, follow

MiB = 1024 * 1024


class Proxy:
    """A loopback TCP proxy whose connections the test can cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.forwarded = 0
        self._scopes: list[trio.CancelScope] = []

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._scopes.append(scope)
            upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            async with client, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pipe, client, upstream, False)
                nursery.start_soon(self._pipe, upstream, client, True)

    async def _pipe(self, src, dst, count: bool) -> None:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
            if count:
                self.forwarded += len(data)

    def cut(self) -> None:
        """Drop every open connection (both sides see it close)."""
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()


async def test_exec_follow_survives_a_dropped_connection(daemon):
    size = 32 * MiB
    script = f"head -c {size} /dev/urandom > /tmp/b && sha256sum /tmp/b | cut -d' ' -f1 >&2 && cat /tmp/b"
    proxy = Proxy(daemon.port)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.serve)
        env = {**os.environ, "SANDBOXD_URL": f"ws://127.0.0.1:{port}/sandbox/ws"}
        result = {}

        async def run_cli() -> None:
            result["p"] = await trio.run_process(
                [sys.executable, "-m", "sandboxd", "exec", "--image", FAST_IMAGE, "--follow", "--",
                 "sh", "-c", script], capture_stdout=True, capture_stderr=True, check=False, env=env)

        nursery.start_soon(run_cli)
        with trio.fail_after(60):
            while proxy.forwarded < 4 * MiB:
                await trio.sleep(0.01)
        proxy.cut()
        with trio.fail_after(120):
            while "p" not in result:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    p = result["p"]
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == size
    assert hashlib.sha256(p.stdout).hexdigest() == p.stderr.decode().strip()


async def test_attach_replays_from_an_offset_then_continues_live_without_gap_or_duplicate(daemon):
    async with open_client(daemon.url) as starter, open_client(daemon.url) as late:
        script = "for i in $(seq 1 30); do echo line$i; echo err$i >&2; sleep 0.05; done"
        accepted = await starter.call("execute-command", {"image": FAST_IMAGE, "command": ["sh", "-c", script]})
        eid = accepted["executionId"]
        await trio.sleep(0.6)  # part of it is written already
        attached = await late.call("attach-execution", {"executionId": eid, "since": {"stdout": 7}})
        assert attached["status"] == "running" and attached["since"] == {"stdout": 7, "stderr": 0}
        from .helpers import Seen

        seen = Seen()
        seen.stdout += b"x" * 7  # what the client says it already has
        await follow(late, eid, seen=seen)
        await follow(starter, eid)
    expected_out = b"".join(b"line%d\n" % i for i in range(1, 31))
    assert bytes(seen.stdout[7:]) == expected_out[7:]
    assert bytes(seen.stderr) == b"".join(b"err%d\n" % i for i in range(1, 31))
    assert seen.complete["status"] == "success"


async def test_finished_execution_replays_then_completes_and_is_listed(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", "echo héllo; exit 4"]})
        await follow(client, accepted["executionId"])
        await client.call("attach-execution", {"executionId": accepted["executionId"]})
        replayed = await follow(client, accepted["executionId"])
        listed = await client.call("list-executions", {"containerId": sandbox})
    assert bytes(replayed.stdout) == "héllo\n".encode()
    assert replayed.complete["status"] == "failed" and replayed.complete["exitCode"] == 4
    (record,) = listed["executions"]
    assert record["executionId"] == accepted["executionId"] and record["status"] == "failed"
    assert record["bytes"] == {"stdout": 7, "stderr": 0} and record["command"] == ["sh", "-c", "echo héllo; exit 4"]


def test_logs_and_ps_commands(daemon):
    started = daemon.cli("exec", "--image", FAST_IMAGE, "--follow", "--", "sh", "-c", "printf out; printf err >&2")
    assert started.returncode == 0
    ps = json.loads(daemon.cli("--json", "ps").stdout)
    newest = ps[0]
    assert newest["command"] == ["sh", "-c", "printf out; printf err >&2"] and newest["status"] == "success"
    logs = daemon.cli("logs", newest["executionId"])
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"out", b"err")
    tail = daemon.cli("logs", "--since-offset", "1", "--follow", newest["executionId"])
    assert (tail.returncode, tail.stdout, tail.stderr) == (0, b"ut", b"rr")
    human = daemon.cli("ps").stdout.decode()
    assert newest["executionId"] in human and "success" in human


async def test_after_kill_9_the_execution_is_interrupted_its_log_kept_and_its_sandbox_adopted(make_daemon, docker_client):
    daemon = make_daemon()
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        script = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.05; done"
        accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", script]})
        await follow(client, accepted["executionId"], until=lambda s: b"tick5\n" in s.stdout)
    daemon.restart()
    async with open_client(daemon.url) as client:
        listed = await client.call("list-executions")
        (record,) = [e for e in listed["executions"] if e["executionId"] == accepted["executionId"]]
        assert record["status"] == "interrupted"
        await client.call("attach-execution", {"executionId": accepted["executionId"]})
        replay = await follow(client, accepted["executionId"])
        sandboxes = await client.call("list-containers")
    assert replay.complete["status"] == "interrupted" and replay.complete["exitCode"] is None
    assert bytes(replay.stdout).startswith(b"tick1\ntick2\ntick3\ntick4\ntick5\n")
    assert sandbox in [c["containerId"] for c in sandboxes["containers"]]

    def loop_still_running() -> bool:
        ps = docker_client.containers.get(sandbox).exec_run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
        return "tick" in ps.output.decode()

    from .conftest import wait_until

    # nobody can follow the cut-off command any more: the new daemon stops it
    assert await trio.to_thread.run_sync(lambda: wait_until(lambda: not loop_still_running(), 15))


async def test_retention_removes_old_logs_and_records(make_daemon):
    daemon = make_daemon("[store]\nretention_seconds = 1.0\n")
    async with open_client(daemon.url) as client:
        accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["echo", "old"]})
        await follow(client, accepted["executionId"])
    log_file = daemon.state_dir / "logs" / f"{accepted['executionId']}.log"
    assert log_file.exists()
    await trio.sleep(1.5)
    daemon.restart()  # housekeeping runs at start (then every few minutes)
    async with open_client(daemon.url) as client:
        listed = await client.call("list-executions")
        await client.send("attach-execution", {"executionId": accepted["executionId"], "ref": "gone"})
        err = await expect_event(client, "error")
    assert accepted["executionId"] not in [e["executionId"] for e in listed["executions"]]
    assert err["code"] == "NOT_FOUND"
    assert not log_file.exists()


async def test_retention_by_total_size_removes_the_oldest_first(make_daemon):
    daemon = make_daemon("[store]\nmax_total_bytes = 150000\n")
    ids = []
    async with open_client(daemon.url) as client:
        for _ in range(3):
            accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["head", "-c", "100000", "/dev/zero"]})
            await follow(client, accepted["executionId"])
            ids.append(accepted["executionId"])
    daemon.restart()
    async with open_client(daemon.url) as client:
        kept = {e["executionId"] for e in (await client.call("list-executions"))["executions"]}
    assert kept == {ids[2]}

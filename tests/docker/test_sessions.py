"""The WebSocket protocol against a real daemon and a real engine."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
import trio
import trio_websocket

from sandboxd.client import open_client

from .conftest import FAST_IMAGE, wait_until
from .helpers import expect_event, follow, run


async def test_output_and_completion_carry_the_documented_fields(client, sandbox):
    seen = await run(client, sandbox, ["sh", "-c", "printf out; printf err >&2; exit 3"])
    assert (bytes(seen.stdout), bytes(seen.stderr)) == (b"out", b"err")
    name, output = seen.events[0]
    assert name == "execution-output"
    assert set(output) == {"executionId", "containerId", "type", "data", "seq", "timestamp"}
    assert output["containerId"] == sandbox
    c = seen.complete
    assert c["status"] == "failed" and c["exitCode"] == 3 and c["containerId"] == sandbox
    assert isinstance(c["durationMs"], int) and isinstance(c["timestamp"], float)


async def test_success_status_and_reply_refs(client, sandbox):
    await client.send("execute-command", {"containerId": sandbox, "command": ["true"], "ref": 41})
    accepted = await expect_event(client, "command-accepted")
    assert accepted["ref"] == 41 and accepted["containerId"] == sandbox
    seen = await follow(client, accepted["executionId"])
    assert seen.complete["status"] == "success" and seen.complete["exitCode"] == 0


async def test_utf8_character_split_across_two_writes_arrives_whole(client, sandbox):
    # "€" is e2 82 ac: the container writes the first byte, pauses, then the rest.
    seen = await run(client, sandbox, ["sh", "-c", r"printf 'a\342'; sleep 0.3; printf '\202\254b'"])
    texts = [d["data"] for n, d in seen.events if n == "execution-output"]
    assert "".join(texts) == "a€b"
    assert all("encoding" not in d for n, d in seen.events if n == "execution-output")
    assert not any("\ufffd" in t for t in texts)


async def test_invalid_utf8_arrives_as_base64_of_the_exact_bytes(client, sandbox):
    seen = await run(client, sandbox, ["sh", "-c", r"printf 'ok\377\376\000end'"])
    outputs = [d for n, d in seen.events if n == "execution-output"]
    assert any(d.get("encoding") == "base64" for d in outputs)
    assert bytes(seen.stdout) == b"ok\xff\xfe\x00end"


async def test_nul_heavy_output_arrives_as_base64_chunks_of_the_exact_bytes(client, sandbox):
    # Valid UTF-8, but mostly control bytes: base64 (4/3 the size) instead of \u0000 (6x).
    seen = await run(client, sandbox, ["sh", "-c", "head -c 1000000 /dev/zero; printf 'tail\\n'"])
    outputs = [d for n, d in seen.events if n == "execution-output"]
    assert bytes(seen.stdout) == b"\0" * 1_000_000 + b"tail\n"
    assert all(d["encoding"] == "base64" for d in outputs if d["seq"] < 1_000_000 - 4096)


async def test_two_joined_sessions_each_get_the_output_exactly_once(daemon, client, sandbox):
    async with open_client(daemon.url) as watcher:
        joined = await watcher.call("join-container", {"containerId": sandbox})
        assert joined == {"containerId": sandbox, "success": True, "ref": joined["ref"]}
        await client.call("join-container", {"containerId": sandbox})
        accepted = await client.call("execute-command", {
            "containerId": sandbox, "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"]})
        mine = await follow(client, accepted["executionId"])
        theirs = await follow(watcher, accepted["executionId"])
    expected = b"".join(b"line%d\n" % i for i in range(1, 6))
    assert bytes(mine.stdout) == expected and bytes(theirs.stdout) == expected
    # the watcher was told what it is watching before any output
    assert theirs.events[0] == ("execution-started", {
        "executionId": accepted["executionId"], "containerId": sandbox, "owner": "anonymous",
        "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"], "since": {"stdout": 0, "stderr": 0}})
    assert mine.complete["exitCode"] == theirs.complete["exitCode"] == 0
    # exactly once: Seen checks every seq is contiguous, so a duplicate would have failed.


async def test_seed_alias_names_for_sessions_that_join_with_join_session(daemon, sandbox):
    async with open_client(daemon.url) as seed:
        await seed.send("join-session", sandbox)  # the seed sent the bare id
        joined = await expect_event(seed, "session-joined")
        assert joined == {"containerId": sandbox}
        accepted = await seed.call("execute-command", {"containerId": sandbox, "command": ["echo", "hi"]})
        seen = await follow(seed, accepted["executionId"])
    assert [n for n, _ in seen.events] == ["exec-output", "exec-finished"]


async def test_cat_echoes_stdin_and_stdin_close_ends_it(client, sandbox):
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["cat"], "stdin": True})
    eid = accepted["executionId"]
    await client.send("stdin-data", {"executionId": eid, "data": "hello €\n"})
    await client.send("stdin-data", {"executionId": eid, "data": base64.b64encode(b"\xff\n").decode(), "encoding": "base64"})
    await client.send("stdin-close", {"executionId": eid})
    seen = await follow(client, eid, timeout=20)
    assert bytes(seen.stdout) == "hello €\n".encode() + b"\xff\n"
    assert seen.complete["status"] == "success" and seen.complete["exitCode"] == 0


async def test_stdin_is_closed_unless_asked_for(client, sandbox):
    seen = await run(client, sandbox, ["cat"], timeout=10)
    assert seen.complete["exitCode"] == 0 and bytes(seen.stdout) == b""


async def test_timeout_stops_the_command_and_its_children(client, sandbox, docker_client):
    accepted = await client.call("execute-command", {
        "containerId": sandbox, "command": ["sh", "-c", "sleep 100 & sleep 100"], "timeout": 1})
    with trio.fail_after(8):
        seen = await follow(client, accepted["executionId"])
    assert seen.complete["status"] == "timeout"
    container = docker_client.containers.get(sandbox)
    ps = container.exec_run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).output.decode()
    assert "sleep 100" not in ps


async def test_kill_stops_a_running_command(client, sandbox):
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sleep", "100"]})
    await trio.sleep(0.3)
    sent = await client.call("kill", {"executionId": accepted["executionId"]})
    assert sent["signal"] == "TERM"
    with trio.fail_after(8):
        seen = await follow(client, accepted["executionId"])
    assert seen.complete["status"] == "killed"
    assert seen.complete["exitCode"] == 143


async def test_kill_with_a_signal_delivers_it(client, sandbox):
    script = "trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.1; done"
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", script]})
    eid = accepted["executionId"]
    seen = await follow(client, eid, timeout=5, until=lambda s: b"ready" in s.stdout)
    await client.call("kill", {"executionId": eid, "signal": "INT"})
    await follow(client, eid, timeout=10, seen=seen)
    assert b"got INT" in bytes(seen.stdout)
    assert seen.complete["status"] == "failed" and seen.complete["exitCode"] == 5


async def test_execution_keeps_running_after_its_session_disconnects(daemon, sandbox):
    async with open_client(daemon.url) as first:
        accepted = await first.call("execute-command", {
            "containerId": sandbox, "command": ["sh", "-c", "sleep 1; echo done > /tmp/marker"]})
    await trio.sleep(2.5)
    async with open_client(daemon.url) as second:
        seen = await run(second, sandbox, ["cat", "/tmp/marker"])
    assert bytes(seen.stdout) == b"done\n"
    assert accepted["executionId"] in "".join(daemon.log)


async def test_one_off_sandbox_for_execute_command_with_an_image(daemon, client):
    before = {c.id for c in daemon.containers()}
    accepted = await client.call("execute-command", {"image": FAST_IMAGE, "command": ["echo", "tmp"]})
    assert accepted["containerId"] not in before
    seen = await follow(client, accepted["executionId"])
    assert bytes(seen.stdout) == b"tmp\n"
    assert await trio.to_thread.run_sync(
        wait_until, lambda: {c.id for c in daemon.containers()} == before, 10)


async def test_sandbox_is_locked_down(client, sandbox, docker_client):
    attrs = docker_client.containers.get(sandbox).attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] > 0 and host["Memory"] > 0 and host["NanoCpus"] > 0
    assert host["Init"] is True
    seen = await run(client, sandbox, ["id", "-u"])
    assert bytes(seen.stdout) == b"1000\n"


async def test_containers_the_daemon_did_not_create_are_not_found(client, docker_client):
    foreign = docker_client.containers.run(FAST_IMAGE, ["sleep", "60"], detach=True, network_mode="none")
    try:
        for event, data in [
            ("join-container", {"containerId": foreign.id}),
            ("execute-command", {"containerId": foreign.id, "command": ["true"]}),
            ("remove-container", {"containerId": foreign.id}),
            ("join-container", {"containerId": foreign.name}),
        ]:
            await client.send(event, {**data, "ref": event})
            err = await expect_event(client, "error")
            assert err["code"] == "NOT_FOUND" and err["ref"] == event
            assert err["message"] == f"no such sandbox: {data['containerId']}"
        listed = await client.call("list-containers")
        assert foreign.id not in [c["containerId"] for c in listed["containers"]]
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


BAD_INPUTS = [
    ("not json at all", "BAD_REQUEST"),
    ('{"event": "execute-command", "data": {"containerId": "abc"}}', "BAD_REQUEST"),
    ('{"event": "execute-command", "data": {"containerId": "abc", "command": "  "}}', "BAD_REQUEST"),
    ('{"event": "stdin-data", "data": {"executionId": 5, "data": "x"}}', "BAD_REQUEST"),
    ('{"event": "launch-missiles", "data": {}}', "UNKNOWN_EVENT"),
    ('{"event": "kill", "data": {"executionId": "exec-0000000000000000"}}', "NOT_FOUND"),
    ('{"event": "stdin-data", "data": {"executionId": "exec-0000000000000000", "data": "x"}}', "NOT_FOUND"),
    ('{"event": "join-container", "data": {"containerId": "0123456789ab0123456789ab"}}', "NOT_FOUND"),
    ('{"event": "create-container", "data": {"image": "no-such-image:nope"}}', "NOT_FOUND"),
]


async def test_each_bad_input_gets_its_error_code_and_the_session_stays_usable(client, sandbox):
    for text, code in BAD_INPUTS:
        await client.ws.send_message(text)
        err = await expect_event(client, "error")
        assert err["code"] == code, (text, err)
        assert err["message"]
    await client.ws.send_message(b"\x00binary frame")
    err = await expect_event(client, "error")
    assert err["code"] == "BAD_REQUEST"
    seen = await run(client, sandbox, ["echo", "still here"])
    assert bytes(seen.stdout) == b"still here\n"


async def test_stdin_to_a_command_without_stdin_is_a_bad_request(client, sandbox):
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sleep", "2"]})
    await client.send("stdin-data", {"executionId": accepted["executionId"], "data": "x", "ref": "s"})
    err = await expect_event(client, "error")
    assert err == {"code": "BAD_REQUEST", "message": f"stdin of execution {accepted['executionId']} is not open", "ref": "s"}


async def test_executions_in_other_sandboxes_are_invisible(daemon, client, sandbox):
    async with open_client(daemon.url) as other:
        accepted = await other.call("execute-command", {"image": FAST_IMAGE, "command": ["sleep", "5"]})
        await client.send("kill", {"executionId": accepted["executionId"], "ref": "k"})
        err = await expect_event(client, "error")
        assert err["code"] == "NOT_FOUND"
        await other.call("kill", {"executionId": accepted["executionId"]})


def test_healthz_reports_engine_and_daemon(daemon):
    with urllib.request.urlopen(daemon.http + "/healthz", timeout=10) as resp:
        health = json.load(resp)
    assert health["status"] == "ok"
    assert health["engine"]["reachable"] is True and health["engine"]["version"]
    assert health["version"] and health["uptimeSeconds"] >= 0


def test_other_paths_are_404_and_plain_get_on_the_socket_path_is_426(daemon):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(daemon.http + "/nope", timeout=10)
    assert info.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(daemon.http + "/sandbox/ws", timeout=10)
    assert info.value.code == 426


async def test_websocket_on_another_path_is_refused_before_upgrade(daemon):
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{daemon.port}/other"):
            pass
    assert info.value.status_code == 404


async def test_binary_output_mode_sends_exact_bytes_with_offsets(client, sandbox):
    configured = await client.call("configure-session", {"binaryOutput": True})
    assert configured["binaryOutput"] is True
    script = r"printf 'a\342'; sleep 0.2; printf '\202\254\377'; printf 'e\n' >&2"
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", script]})
    seen = await follow(client, accepted["executionId"])
    assert bytes(seen.stdout) == b"a\xe2\x82\xac\xff" and bytes(seen.stderr) == b"e\n"
    assert any(isinstance(d.get("raw"), memoryview) for n, d in seen.events if n == "execution-output")


async def test_json_mode_carries_8_mib_of_random_bytes_exactly(client, sandbox):
    script = "head -c 8388608 /dev/urandom > /tmp/r8 && sha256sum /tmp/r8 >&2 && cat /tmp/r8"
    seen = await run(client, sandbox, ["sh", "-c", script])
    import hashlib

    assert hashlib.sha256(seen.stdout).hexdigest() == bytes(seen.stderr).split()[0].decode()


def test_metrics_in_prometheus_text_format(daemon):
    import re
    assert daemon.cli("exec", "--image", FAST_IMAGE, "--follow", "--", "echo", "counted").returncode == 0
    with urllib.request.urlopen(daemon.http + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    for name in ("sandboxd_sessions", "sandboxd_sandboxes", "sandboxd_running_executions",
                 "sandboxd_exec_start_seconds_bucket", "sandboxd_engine_available"):
        assert re.search(rf"^{name}(\{{.*\}})? ", text, re.M), name
    assert re.search(r'^sandboxd_executions_total\{status="success"\} [1-9]', text, re.M)
    assert re.search(r'^sandboxd_output_bytes_total\{stream="stdout"\} [1-9]', text, re.M)


def test_json_log_format(make_daemon, tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\ndir = "{tmp_path}/state"\n[docker]\ninstance = "jsonlog"\n')
    proc = subprocess.Popen([sys.executable, "-m", "sandboxd", "serve", "-c", str(cfg), "--port", "0",
                             "--log-format", "json"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        entry = json.loads(line)
        assert entry["level"] in ("info", "warning") and entry["logger"].startswith("sandboxd") and entry["message"]
    finally:
        proc.terminate()
        proc.wait(20)


async def test_create_with_labels_limits_and_inspect(client):
    created = await client.call("create-container", {
        "image": FAST_IMAGE, "labels": {"course": "cs101"}, "memoryBytes": 64 * 1024 * 1024,
        "pidsLimit": 100, "ttlSeconds": 600})
    info = await client.call("inspect-container", {"containerId": created["containerId"]})
    assert info["labels"] == {"course": "cs101"} and info["ttlSeconds"] == 600
    assert info["limits"]["memoryBytes"] == 64 * 1024 * 1024
    assert info["limits"]["pidsLimit"] == 100
    # more than the config allows: refused with the cap named, not silently lowered
    await client.send("create-container", {"image": FAST_IMAGE, "pidsLimit": 1_000_000, "ref": "big"})
    err = await expect_event(client, "error")
    assert err["code"] == "LIMIT_EXCEEDED"
    assert err["message"] == "pidsLimit 1000000 is above this daemon's limit of 256 (sandbox.pids_limit)"
    await client.send("create-container", {"labels": {"org.sandboxd.owner": "me"}, "ref": "r"})
    err = await expect_event(client, "error")
    assert err["code"] == "BAD_REQUEST" and "reserved" in err["message"]


async def test_idle_sandboxes_are_removed_after_their_ttl(make_daemon):
    daemon = make_daemon("[sandbox]\nreap_interval_seconds = 0.2\n")
    async with open_client(daemon.url) as client:
        short = (await client.call("create-container", {"image": FAST_IMAGE, "ttlSeconds": 1}))["containerId"]
        long = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        busy = (await client.call("create-container", {"image": FAST_IMAGE, "ttlSeconds": 1}))["containerId"]
        await client.call("execute-command", {"containerId": busy, "command": ["sleep", "3"]})
        await trio.sleep(2.5)
        ids = {c["containerId"] for c in (await client.call("list-containers"))["containers"]}
    assert short not in ids and long in ids and busy in ids  # a running execution keeps it


async def test_sandboxes_per_user_are_limited(make_daemon):
    daemon = make_daemon("[sandbox]\nmax_sandboxes_per_user = 2\n")
    async with open_client(daemon.url) as client:
        for _ in range(2):
            await client.call("create-container", {"image": FAST_IMAGE})
        await client.send("create-container", {"image": FAST_IMAGE, "ref": "third"})
        err = await expect_event(client, "error")
    assert err["code"] == "LIMIT_EXCEEDED" and "per user" in err["message"]


async def test_joining_after_starting_does_not_duplicate_output(client, sandbox):
    accepted = await client.call("execute-command", {
        "containerId": sandbox, "command": ["sh", "-c", "sleep 0.5; echo once"]})
    await client.call("join-container", {"containerId": sandbox})
    seen = await follow(client, accepted["executionId"])  # Seen fails on any duplicate offset
    assert bytes(seen.stdout) == b"once\n"
    assert [n for n, _ in seen.events].count("execution-complete") == 1


async def test_the_starter_can_attach_again_from_an_offset_without_duplicates(client, sandbox):
    accepted = await client.call("execute-command", {
        "containerId": sandbox, "command": ["sh", "-c", "echo first; sleep 0.5; echo second"]})
    eid = accepted["executionId"]
    seen = await follow(client, eid, until=lambda s: b"first\n" in s.stdout)
    await client.call("attach-execution", {"executionId": eid, "since": {"stdout": len(seen.stdout)}})
    await follow(client, eid, seen=seen)
    assert bytes(seen.stdout) == b"first\nsecond\n"

"""REST executions against a real daemon and engine: waiting exec, exec/realtime to a
native WebSocket session, following output over HTTP, stdin, kill, and ownership."""

from __future__ import annotations

import base64
import json

import pytest
import trio

from sandboxd.client import open_client

from .conftest import FAST_IMAGE
from .helpers import follow
from .http_client import HTTP, body_of
from .test_rest import TOKENS, new_sandbox, rest_daemon  # noqa: F401 (the fixture)
from .test_socketio import node


@pytest.fixture
def alice(rest_daemon) -> HTTP:  # noqa: F811
    return HTTP(rest_daemon.http, TOKENS["alice"])


@pytest.fixture
def bob(rest_daemon) -> HTTP:  # noqa: F811
    return HTTP(rest_daemon.http, TOKENS["bob"])


async def test_exec_waits_and_answers_with_exit_code_and_both_streams(alice):
    cid = await new_sandbox(alice)
    r = await alice.post("/api/sandbox/exec", {
        "containerId": cid, "command": "cat in.txt -; printf \"$X\"; printf err >&2; exit 3",
        "stdin": "from stdin|", "env": {"X": "|env"}, "files": {"in.txt": "from file|"}})
    assert r.status == 200, r.body
    result = r.json()
    assert (result["status"], result["exitCode"]) == ("failed", 3)
    assert result["stdout"] == "from file|from stdin||env"
    assert result["stderr"] == "err"
    assert result["truncated"] is False and result["durationMs"] >= 0 and result["containerId"] == cid
    assert "stdoutEncoding" not in result
    # Bytes that are not UTF-8 come back exactly, as base64.
    r = await alice.post("/api/sandbox/exec", {"containerId": cid, "command": ["printf", "\\377\\000ok"]})
    assert r.json()["stdoutEncoding"] == "base64"
    assert base64.b64decode(r.json()["stdout"]) == b"\xff\x00ok"
    # A timeout ends it as such.
    r = await alice.post("/api/sandbox/exec", {"containerId": cid, "command": ["sleep", "30"], "timeout": 1})
    assert r.json()["status"] == "timeout"


async def test_exec_in_a_one_off_sandbox_and_output_beyond_the_cap(alice):
    r = await alice.post("/api/sandbox/exec", {"image": FAST_IMAGE, "command": ["sh", "-c", "yes x | head -c 300000"]})
    result = r.json()
    assert result["status"] == "success"
    assert result["truncated"] is True and result["stdout"] == "x\n" * 50000  # api.max_exec_output_bytes
    with trio.fail_after(30):
        while (await alice.get(f"/api/sandbox/containers/{result['containerId']}")).status != 404:
            await trio.sleep(0.2)  # the one-off sandbox goes with its execution
    record = (await alice.get(f"/api/sandbox/executions/{result['executionId']}")).json()
    assert record["bytes"]["stdout"] == 300000  # the log has it all


async def session_id(client) -> str:
    return (await client.call("configure-session", {}))["sessionId"]


async def test_exec_realtime_streams_to_a_native_session_and_to_joined_sessions(rest_daemon, alice):  # noqa: F811
    cid = await new_sandbox(alice)
    async with open_client(rest_daemon.url, token=TOKENS["alice"]) as starter, \
            open_client(rest_daemon.url, token=TOKENS["alice"]) as joined:
        await joined.call("join-container", {"containerId": cid})
        r = await alice.post("/api/sandbox/exec/realtime", {
            "containerId": cid, "command": ["sh", "-c", "printf out; printf err >&2; exit 4"],
            "socketSessionId": await session_id(starter)})
        assert r.status == 202
        eid = r.json()["executionId"]
        assert r.json() == {"executionId": eid, "containerId": cid}
        for client in (starter, joined):
            seen = await follow(client, eid)
            assert (bytes(seen.stdout), bytes(seen.stderr)) == (b"out", b"err")
            assert (seen.complete["status"], seen.complete["exitCode"]) == ("failed", 4)
            assert seen.events[0][0] == "execution-started"
        # POST /exec with socketSessionId is the same, and answers 202 too.
        r = await alice.post("/api/sandbox/exec", {"containerId": cid, "command": ["echo", "again"],
                                                   "socketSessionId": await session_id(starter)})
        assert r.status == 202
        assert bytes((await follow(starter, r.json()["executionId"])).stdout) == b"again\n"


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
def test_exec_realtime_streams_to_a_socket_io_socket(rest_daemon, transports):  # noqa: F811
    """The seed's second client, verbatim: fetch(".../exec/realtime", {socketSessionId: socket.id})
    with the real npm socket.io-client; stdout and stderr apart, whole, with the exit code."""
    node("rest-realtime", rest_daemon, token=TOKENS["alice"], transports=transports)


async def test_exec_realtime_needs_a_session_of_ones_own(rest_daemon, alice, bob):  # noqa: F811
    cid = await new_sandbox(alice)
    r = await alice.post("/api/sandbox/exec/realtime", {"containerId": cid, "command": ["true"]})
    assert (r.status, r.code) == (400, "BAD_REQUEST") and "socketSessionId" in r.json()["error"]["message"]
    r = await alice.post("/api/sandbox/exec/realtime", {"containerId": cid, "command": ["true"],
                                                        "socketSessionId": "no-such-session"})
    assert (r.status, r.code) == (404, "NOT_FOUND")
    async with open_client(rest_daemon.url, token=TOKENS["alice"]) as alices:
        sid = await session_id(alices)
        bobs_sandbox = await new_sandbox(bob)
        r = await bob.post("/api/sandbox/exec/realtime", {"containerId": bobs_sandbox, "command": ["true"],
                                                          "socketSessionId": sid})
        assert (r.status, r.code) == (404, "NOT_FOUND")


async def test_follow_output_stdin_kill_and_ownership_of_executions(alice, bob):
    cid = await new_sandbox(alice)
    async with trio.open_nursery() as nursery:
        result: dict = {}

        async def run() -> None:
            result.update((await alice.post("/api/sandbox/exec", {
                "containerId": cid, "command": ["sh", "-c", "echo ready; cat; echo done >&2"],
                "stdin": "first|", "keepStdinOpen": True})).json())

        nursery.start_soon(run)
        with trio.fail_after(30):
            while not (rows := (await alice.get(f"/api/sandbox/executions?containerId={cid}")).json()["executions"]):
                await trio.sleep(0.1)
        eid = rows[0]["executionId"]
        # follow=true streams NDJSON events as they happen.
        stream, conn, head = await alice.open("GET", f"/api/sandbox/executions/{eid}/output?follow=true")
        assert (head.status_code, dict(head.headers)[b"content-type"]) == (200, b"application/x-ndjson")
        lines = body_of(stream, conn)
        buffered = b""

        async def next_event() -> dict:
            nonlocal buffered
            with trio.fail_after(30):
                while b"\n" not in buffered:
                    buffered += await lines.__anext__()
            line, buffered = buffered.split(b"\n", 1)
            return json.loads(line)

        first = await next_event()
        assert first["event"] == "execution-output" and first["data"]["data"].startswith("ready\n")
        # Bob sees none of it.
        for r in (await bob.get(f"/api/sandbox/executions/{eid}"),
                  await bob.get(f"/api/sandbox/executions/{eid}/output"),
                  await bob.post(f"/api/sandbox/executions/{eid}/stdin", {"data": "x"}),
                  await bob.post(f"/api/sandbox/executions/{eid}/kill", {})):
            assert (r.status, r.code) == (404, "NOT_FOUND"), r.body
        assert eid not in [e["executionId"] for e in (await bob.get("/api/sandbox/executions")).json()["executions"]]
        wrote = await alice.post(f"/api/sandbox/executions/{eid}/stdin", {"data": "c2Vjb25k", "encoding": "base64",
                                                                          "close": True})
        assert wrote.json() == {"executionId": eid, "bytes": 6, "closed": True}
        events = [first]
        while events[-1]["event"] != "execution-complete":
            events.append(await next_event())
        await stream.aclose()
    out = "".join(e["data"]["data"] for e in events if e["event"] == "execution-output" and e["data"]["type"] == "stdout")
    assert out == "ready\nfirst|second"
    assert events[-1]["data"]["status"] == "success"
    assert (result["stdout"], result["stderr"]) == ("ready\nfirst|second", "done\n")
    # Replays: from an offset, and as Server-Sent Events.
    tail = await alice.get(f"/api/sandbox/executions/{eid}/output?stdoutSince=6")
    events = [json.loads(line) for line in tail.body.splitlines()]
    assert "".join(e["data"]["data"] for e in events if e["data"].get("type") == "stdout") == "first|second"
    assert events[-1]["event"] == "execution-complete"
    sse = await alice.get(f"/api/sandbox/executions/{eid}/output", headers={"Accept": "text/event-stream"})
    assert sse.headers["content-type"] == "text/event-stream"
    assert sse.body.startswith(b"event: execution-output\ndata: {") and b"event: execution-complete\n" in sse.body
    # Kill: a running command stops; a finished one cannot be killed.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alice.post, "/api/sandbox/exec", {"containerId": cid, "command": ["sleep", "60"]})
        with trio.fail_after(30):
            while not (running := (await alice.get(f"/api/sandbox/containers/{cid}")).json()["runningExecutions"]):
                await trio.sleep(0.1)
        killed = await alice.post(f"/api/sandbox/executions/{running[0]}/kill", {"signal": "SIGKILL"})
        assert killed.json() == {"executionId": running[0], "signal": "KILL"}
    assert (await alice.get(f"/api/sandbox/executions/{running[0]}")).json()["status"] == "killed"
    again = await alice.post(f"/api/sandbox/executions/{running[0]}/kill", {})
    assert (again.status, again.code) == (409, "BAD_REQUEST")
    bad = await alice.post(f"/api/sandbox/executions/{eid}/kill", {"signal": "NOPE"})
    assert (bad.status, bad.code) == (400, "BAD_REQUEST")

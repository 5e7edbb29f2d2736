"""Executions end, and say why, whatever the client or the command does (#12).

Each test reproduces a fault from the security review against the real engine: a
starter that stops reading, a memory hog, a fork bomb.
"""

from __future__ import annotations

import trio

from sandboxd.client import open_client

from .conftest import BASE_IMAGE, FAST_IMAGE
from .helpers import follow, run


async def list_record(client, sandbox: str, execution_id: str) -> dict:
    rows = (await client.call("list-executions", {"containerId": sandbox}))["executions"]
    return next(r for r in rows if r["executionId"] == execution_id)


async def wait_finished(client, sandbox: str, execution_id: str, timeout: float = 60) -> dict:
    with trio.fail_after(timeout):
        while (record := await list_record(client, sandbox, execution_id))["status"] == "running":
            await trio.sleep(0.2)
    return record


async def test_a_timeout_ends_the_execution_although_its_starter_stopped_reading(daemon):
    async with open_client(daemon.url) as starter, open_client(daemon.url) as other:
        sandbox = (await other.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        # 40 MB is more than the socket buffers and the live window hold: the command
        # is blocked on write, held back by a starter that reads nothing after this.
        script = "head -c 40000000 /dev/zero | tr '\\0' a; sleep 600"
        accepted = await starter.call("execute-command", {
            "containerId": sandbox, "command": ["sh", "-c", script], "timeout": 4})
        record = await wait_finished(other, sandbox, accepted["executionId"])
        assert (record["status"], record["reason"]) == ("timeout", "timed out after 4 s")
        # The starter reads again: every byte the log has, in order, then the end.
        seen = await follow(starter, accepted["executionId"], timeout=120)
        assert seen.complete["status"] == "timeout"
        assert len(seen.stdout) == record["bytes"]["stdout"] > 0
        assert set(bytes(seen.stdout)) == {ord("a")}


async def test_a_memory_hog_is_reported_as_oom_and_a_plain_sigkill_is_not(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {
            "image": FAST_IMAGE, "memoryBytes": 64 * 1024 * 1024}))["containerId"]
        hog = await run(client, sandbox, ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"])
        assert (hog.complete["status"], hog.complete["exitCode"], hog.complete.get("reason")) == ("failed", 137, "oom")
        assert b"survived" not in hog.stdout
        # Exit 137 alone is not OOM.
        killed = await run(client, sandbox, ["sh", "-c", "kill -9 $$"])
        assert (killed.complete["status"], killed.complete["exitCode"]) == ("failed", 137)
        assert "reason" not in killed.complete


async def test_a_timeout_kills_every_process_of_a_fork_bomb_that_used_up_the_pids(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": BASE_IMAGE, "pidsLimit": 32}))["containerId"]
        accepted = await client.call("execute-command", {
            "containerId": sandbox, "command": ["python3", "-c", BOMB], "timeout": 5})
        seen = await follow(client, accepted["executionId"], timeout=60)
        assert (seen.complete["status"], seen.complete["reason"]) == ("timeout", "timed out after 5 s")
        # Nothing of it is left: the sandbox has pids to start a process again, and no bomb.
        ps = await run(client, sandbox, ["ps", "-eo", "args"])
        assert ps.complete["status"] == "success", ps.complete
        assert b"python3" not in ps.stdout


#: Forks until the pids limit is reached, and then keeps every pid taken.
BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
"""

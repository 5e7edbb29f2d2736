"""kill_leftovers_on_exit: what a finished command left running is ended."""

from __future__ import annotations

import trio

from .helpers import run

LEAVE_ONE_BEHIND = "(sleep 300 >/dev/null 2>&1 &); echo left"
COUNT = ["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | grep -c '^sleep 300 $'"]


async def _count(client, sandbox) -> int:
    return int(bytes((await run(client, sandbox, COUNT)).stdout))


async def test_a_background_child_is_ended_when_the_command_exits(client, sandbox):
    seen = await run(client, sandbox, ["sh", "-c", LEAVE_ONE_BEHIND])
    assert (seen.complete["status"], bytes(seen.stdout)) == ("success", b"left\n")
    with trio.fail_after(30):
        while await _count(client, sandbox):
            await trio.sleep(0.2)


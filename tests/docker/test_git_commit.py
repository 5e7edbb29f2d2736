"""git_commit runs nothing the sandbox planted, and its helper cannot run away."""

from __future__ import annotations

import pytest
import trio

from sandboxd.client import open_client

from .conftest import BASE_IMAGE
from .helpers import follow

PLANT = r"""
git init -q
mkdir -p evil
printf '#!/bin/sh\ntouch /home/sandbox/ran-repo-hook\n' > .git/hooks/pre-commit
printf '#!/bin/sh\ntouch /home/sandbox/ran-global-hook\n' > evil/pre-commit
printf '#!/bin/sh\ntouch /home/sandbox/ran-fsmonitor\n' > evil/fsmonitor
chmod +x .git/hooks/pre-commit evil/pre-commit evil/fsmonitor
git config core.fsmonitor /home/sandbox/evil/fsmonitor
printf '[core]\n\thooksPath = /home/sandbox/evil\n' > /home/sandbox/.gitconfig
echo work > work.txt
"""

HANG = r"""
printf '*.slow filter=slow\n' > .gitattributes
git config filter.slow.clean 'sleep 300'
echo x > data.slow
"""


async def _events_of(client, execution_id: str, want: str, timeout: float = 60) -> dict:
    with trio.fail_after(timeout):
        while True:
            ev = await client.next_event()
            if ev.name in ("git-committed", "warning") and ev.data.get("executionId") == execution_id:
                assert ev.name == want, ev.data
                return ev.data


async def test_planted_hooks_and_config_do_not_run_and_a_hanging_filter_is_killed(make_daemon, docker_client):
    daemon = make_daemon('[plugins]\nenabled = ["git_commit"]\n[plugins.git_commit]\ntimeout_seconds = 3.0\n')
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": BASE_IMAGE}))["containerId"]
        accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", PLANT]})
        assert (await follow(client, accepted["executionId"])).complete["status"] == "success"
        committed = await _events_of(client, accepted["executionId"], "git-committed")
        container = docker_client.containers.get(sandbox)
        ran = container.exec_run(["sh", "-c", "ls /home/sandbox | grep ^ran- ; git log --format=%H"],
                                 user="sandbox", workdir="/home/sandbox").output.decode()
        assert ran.split() == [committed["commit"]]  # committed, and no hook or monitor ran

        accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", HANG]})
        await follow(client, accepted["executionId"])
        warning = await _events_of(client, accepted["executionId"], "warning")
    assert warning["code"] == "GIT_COMMIT_FAILED" and "timed out after 3 s" in warning["message"]
    left = container.exec_run(["sh", "-c", "grep -l 'slee[p].300' /proc/[0-9]*/cmdline; grep -l SANDBOXD_GIT_HELPE[R] "
                               "/proc/[0-9]*/environ"], user="sandbox").output.decode()
    assert "/proc/" not in left, left  # the filter's sleep and every helper process are gone

"""Faults get an explicit outcome, never a made-up exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .conftest import FAST_IMAGE
from .helpers import follow

LOOP = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done"


async def start_loop(client):
    sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", LOOP]})
    seen = await follow(client, accepted["executionId"], until=lambda s: b"tick3\n" in s.stdout)
    return sandbox, accepted["executionId"], seen


async def test_sandbox_killed_from_outside_ends_the_execution_as_error(daemon, docker_client):
    async with open_client(daemon.url) as client:
        sandbox, eid, seen = await start_loop(client)
        await trio.to_thread.run_sync(docker_client.containers.get(sandbox).kill)
        await follow(client, eid, timeout=15, seen=seen)
        assert seen.complete["status"] == "error" and seen.complete["errorCode"] == "SANDBOX_STOPPED"
        assert "stopped during the execution" in seen.complete["reason"]
        with pytest.raises(SandboxdError) as info:
            await client.call("execute-command", {"containerId": sandbox, "command": ["true"]})
        assert info.value.code == "SANDBOX_STOPPED" and "not running" in info.value.message


async def test_sandbox_removed_from_outside_ends_the_execution_as_error(daemon, docker_client):
    async with open_client(daemon.url) as client:
        sandbox, eid, seen = await start_loop(client)
        await trio.to_thread.run_sync(lambda: docker_client.containers.get(sandbox).remove(force=True))
        await follow(client, eid, timeout=15, seen=seen)
        assert seen.complete["status"] == "error" and seen.complete["errorCode"] == "SANDBOX_STOPPED"
        with pytest.raises(SandboxdError) as info:
            await client.call("execute-command", {"containerId": sandbox, "command": ["true"]})
        assert info.value.code in ("NOT_FOUND", "SANDBOX_STOPPED")


ROOT = Path(__file__).resolve().parents[2]
#: The stopped-engine test stops an engine of its own (scripts/start-engines.sh), never the
#: main one: other tests (and other test runs on this machine) keep their engine.
FAULT_ENGINE = 4


def fault_engine() -> tuple[str, int]:
    """Start (if needed) the engine this module may stop; its socket URL and dockerd pid."""
    done = subprocess.run(["bash", str(ROOT / "scripts/start-engines.sh"), str(FAULT_ENGINE)], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    base = Path(f"/run/sandboxd-engines/{FAULT_ENGINE}")
    return f"unix://{base}/docker.sock", int((base / "docker.pid").read_text())


def healthz(daemon) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(daemon.http + "/healthz", timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


async def test_stopped_engine_ends_executions_fails_fast_and_recovers(make_daemon):
    url, pid = fault_engine()
    daemon = make_daemon(f'[docker]\nurl = "{url}"\nhealth_check_interval_seconds = 0.5\n')
    async with open_client(daemon.url) as client, open_client(daemon.url) as bystander:
        sandbox, eid, seen = await start_loop(client)
        os.kill(pid, signal.SIGSTOP)
        try:
            stopped_at = time.monotonic()
            await follow(client, eid, timeout=20, seen=seen)
            assert seen.complete["status"] == "error" and seen.complete["errorCode"] == "ENGINE_UNAVAILABLE"
            assert time.monotonic() - stopped_at < 10
            started = time.monotonic()
            with pytest.raises(SandboxdError) as info:
                await client.call("execute-command", {"containerId": sandbox, "command": ["true"]})
            assert info.value.code == "ENGINE_UNAVAILABLE"
            assert time.monotonic() - started < 1.0  # fails fast, no engine timeout
            status, health = await trio.to_thread.run_sync(healthz, daemon)
            assert status == 503 and health["engine"]["reachable"] is False
            assert "ref" in await bystander.call("ping")  # other sessions are fine
        finally:
            os.kill(pid, signal.SIGCONT)
        with trio.fail_after(20):
            while True:
                try:
                    accepted = await client.call("execute-command", {"containerId": sandbox, "command": ["echo", "back"]})
                    break
                except SandboxdError as exc:
                    assert exc.code == "ENGINE_UNAVAILABLE"
                    await trio.sleep(0.2)
        again = await follow(client, accepted["executionId"])
        assert bytes(again.stdout) == b"back\n"
        status, health = await trio.to_thread.run_sync(healthz, daemon)
        assert status == 200 and health["engine"]["reachable"] is True

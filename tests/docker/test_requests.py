"""Bad requests get a clear error before anything runs, and the session goes on (#12)."""

from __future__ import annotations

import json

import docker
import pytest
import trio
import trio_websocket

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .conftest import FAST_IMAGE
from .helpers import run


async def refused(client, event: str, data: dict) -> SandboxdError:
    with pytest.raises(SandboxdError) as info:
        await client.call(event, data)
    return info.value


async def test_ids_resolve_only_as_documented(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        engine = docker.from_env()
        try:
            name = engine.containers.get(sandbox).name
        finally:
            engine.close()
        # ".", a name, an 11-character prefix, an unknown full id: all just unknown.
        for bad in [".", name, sandbox[:11], "0" * 64]:
            error = await refused(client, "inspect-container", {"containerId": bad})
            assert error.code == "NOT_FOUND", (bad, error)
        assert (await client.call("inspect-container", {"containerId": sandbox[:12]}))["containerId"] == sandbox


async def test_oversized_argv_env_and_workdir_are_refused_before_any_exec(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        mib = "x" * (1024 * 1024)
        for extra in ({"command": ["echo", mib]}, {"command": ["true"], "env": {"BIG": mib}},
                      {"command": ["true"], "workdir": "/" + "d" * 5000},
                      {"command": ["echo"] + ["y" * 100_000] * 12}):
            error = await refused(client, "execute-command", {"containerId": sandbox, **extra})
            assert error.code == "BAD_REQUEST" and "bytes" in error.message, error
        assert (await client.call("list-executions", {"containerId": sandbox}))["executions"] == []


async def test_workdir_must_resolve_inside_the_work_tree(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        await run(client, sandbox, ["sh", "-c", "mkdir -p sub && ln -s /etc escape"])
        for outside in ["/", "/proc/self/root/etc", "/home/sandbox/escape", "/home/sandbox/../../etc"]:
            error = await refused(client, "execute-command", {
                "containerId": sandbox, "command": ["pwd"], "workdir": outside})
            assert error.code == "BAD_REQUEST" and "outside" in error.message, (outside, error)
        for inside, expected in [("/home/sandbox/sub", b"/home/sandbox/sub\n"), ("/tmp", b"/tmp\n")]:
            seen = await run(client, sandbox, ["pwd"], workdir=inside)
            assert bytes(seen.stdout) == expected


async def test_duplicate_keys_are_refused_and_the_session_goes_on(daemon):
    async with trio_websocket.open_websocket_url(daemon.url) as ws:
        with trio.fail_after(30):
            await ws.send_message('{"event": "ping", "data": {"ref": "a", "ref": "b"}}')
            error = json.loads(await ws.get_message())
            assert error["event"] == "error" and error["data"]["code"] == "BAD_REQUEST"
            assert "'ref' twice" in error["data"]["message"]
            await ws.send_message('{"event": "ping", "data": {"ref": "c"}}')
            assert json.loads(await ws.get_message())["event"] == "pong"

"""One daemon, three Docker engines (issue #14): placement, constraints, caps, faults that
stay on one engine, restart re-adoption, and policy across engines.

The engines are real ``dockerd`` processes on this machine (``scripts/start-engines.sh``:
their own sockets, data and exec roots, and the same network-less flags as the main
engine). ``kill -STOP`` of one engine's dockerd stands for a host that stops answering.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path

import docker
import pytest
import trio

from sandboxd.client import open_client
from sandboxd.engine import LABEL_ENGINE, LABEL_INSTANCE
from sandboxd.errors import SandboxdError

from .conftest import FAST_IMAGE, Daemon
from .helpers import Seen, follow, run

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {f"e{k}": f"unix:///run/sandboxd-engines/{k}/docker.sock" for k in (1, 2, 3)}
TOKENS = {"alice": "alice-engines-token", "bob": "bob-engines-token"}
CAP_E1 = 12


def _engine_pid(name: str) -> int:
    return int(Path(f"/run/sandboxd-engines/{name[1:]}/docker.pid").read_text())


@pytest.fixture(scope="module")
def engines():
    """Three extra engines, up for this module; every container a test daemon left on
    them is removed afterwards."""
    done = subprocess.run(["bash", str(ROOT / "scripts/start-engines.sh"), "3"], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    clients = {name: docker.DockerClient(base_url=url, timeout=30) for name, url in ENGINES.items()}
    yield clients
    for client in clients.values():
        for c in client.containers.list(all=True, filters={"label": LABEL_INSTANCE}):
            if c.labels.get(LABEL_INSTANCE, "").startswith("pytest-"):
                c.remove(force=True)
        client.close()


@pytest.fixture(scope="module")
def pool_daemon(engines, tmp_path_factory):
    tokens = ", ".join(
        f'{{ user = "{u}", roles = ["user"], sha256 = "{hashlib.sha256(t.encode()).hexdigest()}" }}'
        for u, t in TOKENS.items())
    config = f"""
[docker]
health_check_interval_seconds = 0.5
health_check_timeout_seconds = 1.0
call_timeout_seconds = 10.0
[sandbox]
max_sandboxes = 200
max_sandboxes_per_user = 100
[plugins]
enabled = ["token_auth", "ownership"]
[plugins.token_auth]
tokens = [{tokens}]
[[engines]]
name = "e1"
host = "{ENGINES['e1']}"
max_sandboxes = {CAP_E1}
[[engines]]
name = "e2"
host = "{ENGINES['e2']}"
[[engines]]
name = "e3"
host = "{ENGINES['e3']}"
labels = {{ pool = "gpu" }}
"""
    d = Daemon(tmp_path_factory.mktemp("engines"), config)
    yield d
    d.stop()


def _per_engine(engines, instance: str) -> dict[str, set[str]]:
    return {name: {c.id for c in client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})}
            for name, client in engines.items()}


def alice(d: Daemon):
    return open_client(d.url, token=TOKENS["alice"])


async def test_thirty_sandboxes_spread_ten_per_engine_and_say_where_they_are(pool_daemon, engines):
    created: list[str] = []

    async def create_ten() -> None:
        async with alice(pool_daemon) as c:
            for _ in range(10):
                created.append((await c.call("create-container", {"image": FAST_IMAGE}))["containerId"])

    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(create_ten)
    where = _per_engine(engines, pool_daemon.instance)
    assert {name: len(ids) for name, ids in where.items()} == {"e1": 10, "e2": 10, "e3": 10}
    assert set(created) == set().union(*where.values())
    async with alice(pool_daemon) as c:
        listed = {s["containerId"]: s["engine"] for s in (await c.call("list-containers", {}))["containers"]}
        for name, ids in where.items():
            assert all(listed[cid] == name for cid in ids)
        state = {e["name"]: e for e in (await c.call("list-engines", {}))["engines"]}
    assert {n: (e["state"], e["sandboxes"]) for n, e in state.items()} == {
        "e1": ("up", 10), "e2": ("up", 10), "e3": ("up", 10)}
    assert state["e1"]["maxSandboxes"] == CAP_E1 and state["e3"]["labels"] == {"pool": "gpu"}


async def test_constraints_caps_and_images_are_honoured(pool_daemon, engines):
    async with alice(pool_daemon) as c:
        on_e2 = (await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": "e2"}}))["containerId"]
        gpu = (await c.call("create-container", {"image": FAST_IMAGE, "placement": {"labels": {"pool": "gpu"}}}))
        assert on_e2 in _per_engine(engines, pool_daemon.instance)["e2"]
        assert gpu["containerId"] in _per_engine(engines, pool_daemon.instance)["e3"]
        for bad in ({"engine": "nope"}, {"labels": {"pool": "tpu"}}, {"cpu": 4}):
            with pytest.raises(SandboxdError) as err:
                await c.call("create-container", {"image": FAST_IMAGE, "placement": bad})
            assert err.value.code == "BAD_REQUEST"
        # e1 takes sandboxes up to its max_sandboxes, then says so.
        while (await c.call("list-engines", {}))["engines"][0]["sandboxes"] < CAP_E1:
            await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": "e1"}})
        with pytest.raises(SandboxdError) as err:
            await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": "e1"}})
        assert err.value.code == "LIMIT_EXCEEDED"
        assert len(_per_engine(engines, pool_daemon.instance)["e1"]) == CAP_E1
        # An image only one engine has: placement skips the others.
        engines["e2"].images.get(FAST_IMAGE).tag("sandboxd/only-on-e2", "latest")
        try:
            only = (await c.call("create-container", {"image": "sandboxd/only-on-e2"}))["containerId"]
            assert only in _per_engine(engines, pool_daemon.instance)["e2"]
            images = {i["image"]: i["engines"] for i in (await c.call("list-images", {}))["images"]}
            assert images["sandboxd/only-on-e2:latest"] == ["e2"]
            assert images[f"{FAST_IMAGE}:latest"] == ["e1", "e2", "e3"]
            await c.call("remove-container", {"containerId": only})
        finally:
            engines["e2"].images.remove("sandboxd/only-on-e2:latest")
        with pytest.raises(SandboxdError) as err:
            await c.call("create-container", {"image": "sandboxd/nowhere"})
        assert err.value.code == "NOT_FOUND"


def _health(d: Daemon) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{d.http}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


LINES = 30
SLOW = ["sh", "-c", f"i=0; while [ $i -lt {LINES} ]; do echo line$i; i=$((i+1)); sleep 0.1; done"]
EXPECTED = b"".join(b"line%d\n" % i for i in range(LINES))


async def test_an_engine_that_stops_answering_ends_only_its_own_executions(pool_daemon, engines):
    async with alice(pool_daemon) as c:
        boxes = {}
        for name in ("e2", "e3"):
            boxes[name] = (await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": name}}))[
                "containerId"]
        started = {name: (await c.call("execute-command", {"containerId": cid, "command": SLOW}))["executionId"]
                   for name, cid in boxes.items()}
        pid = _engine_pid("e3")
        os.kill(pid, signal.SIGSTOP)
        try:
            seen = {name: Seen() for name in started}
            by_id = {eid: seen[name] for name, eid in started.items()}
            with trio.fail_after(60):
                while any(s.complete is None for s in seen.values()):
                    ev = await c.next_event()
                    if isinstance(ev.data, dict) and ev.data.get("executionId") in by_id:
                        by_id[ev.data["executionId"]].add(ev.name, ev.data)
            with trio.fail_after(30):
                while True:
                    status, health = _health(pool_daemon)
                    engines_up = {e["name"]: e["reachable"] for e in health.get("engines", [])}
                    if engines_up.get("e3") is False:
                        break
                    await trio.sleep(0.2)
            assert status == 200 and health["status"] == "degraded"
            assert engines_up == {"e1": True, "e2": True, "e3": False}
            assert seen["e3"].complete["status"] == "error"
            assert seen["e3"].complete["errorCode"] == "ENGINE_UNAVAILABLE"
            assert seen["e2"].complete["exitCode"] == 0 and bytes(seen["e2"].stdout) == EXPECTED
            # New sandboxes go to the engines that answer; e3 is reported down.
            state = {e["name"]: e["state"] for e in (await c.call("list-engines", {}))["engines"]}
            assert state == {"e1": "up", "e2": "up", "e3": "down"}
            fresh = (await c.call("create-container", {"image": FAST_IMAGE}))["containerId"]
            assert fresh in _per_engine({n: engines[n] for n in ("e1", "e2")}, pool_daemon.instance)["e2"] | \
                _per_engine({n: engines[n] for n in ("e1", "e2")}, pool_daemon.instance)["e1"]
            with pytest.raises(SandboxdError) as err:
                await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": "e3"}})
            assert err.value.code == "ENGINE_UNAVAILABLE"
        finally:
            os.kill(pid, signal.SIGCONT)
        with trio.fail_after(30):
            while {e["name"]: e["state"] for e in (await c.call("list-engines", {}))["engines"]}["e3"] != "up":
                await trio.sleep(0.2)
        # Used again: a sandbox placed there runs commands.
        back = (await c.call("create-container", {"image": FAST_IMAGE, "placement": {"engine": "e3"}}))["containerId"]
        again = await run(c, back, ["echo", "back"])
        assert again.complete["exitCode"] == 0 and bytes(again.stdout) == b"back\n"
        assert _health(pool_daemon)[0] == 200


async def test_restart_adopts_sandboxes_on_every_engine_and_policy_holds_across_them(pool_daemon, engines):
    async with alice(pool_daemon) as c:
        before = {s["containerId"]: s["engine"] for s in (await c.call("list-containers", {}))["containers"]}
    assert set(before.values()) == {"e1", "e2", "e3"}
    pool_daemon.restart()
    async with alice(pool_daemon) as c:
        after = {s["containerId"]: s["engine"] for s in (await c.call("list-containers", {}))["containers"]}
        assert after == before
        on_e3 = next(cid for cid, name in after.items() if name == "e3")
        seen = await run(c, on_e3, ["echo", "adopted"])
        assert seen.complete["exitCode"] == 0 and bytes(seen.stdout) == b"adopted\n"
        labels = engines["e3"].containers.get(on_e3).labels
        assert labels[LABEL_ENGINE] == "e3"
    # Bob sees none of alice's sandboxes, on any engine, and cannot use them.
    async with open_client(pool_daemon.url, token=TOKENS["bob"]) as bob:
        assert (await bob.call("list-containers", {}))["containers"] == []
        for cid in (on_e3, next(cid for cid, name in after.items() if name == "e1")):
            with pytest.raises(SandboxdError) as err:
                await bob.call("execute-command", {"containerId": cid, "command": ["id"]})
            assert err.value.code == "NOT_FOUND"
        mine = (await bob.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        assert Counter(e["sandboxes"] for e in (await bob.call("list-engines", {}))["engines"])
    async with alice(pool_daemon) as c:
        with pytest.raises(SandboxdError) as err:
            await c.call("remove-container", {"containerId": mine})
        assert err.value.code == "NOT_FOUND"


def test_engines_and_images_commands(pool_daemon):
    env = {"SANDBOXD_TOKEN": TOKENS["alice"]}
    listed = pool_daemon.cli("--json", "engines", env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in json.loads(listed.stdout)] == ["e1", "e2", "e3"]
    human = pool_daemon.cli("engines", env=env, timeout=60)
    assert human.returncode == 0 and b"e3" in human.stdout and b"pool=gpu" in human.stdout
    images = pool_daemon.cli("images", env=env, timeout=60)
    assert images.returncode == 0 and f"{FAST_IMAGE}:latest".encode() in images.stdout
    assert b"e1,e2,e3" in images.stdout


async def test_an_engine_over_tcp_with_tls_runs_commands_with_stdin(tmp_path):
    """``dockerd --tlsverify``: the daemon presents its client certificate and checks the
    engine's; stdin, its end (stdin-close) and the exit code cross the TLS connection."""
    done = subprocess.run(["bash", str(ROOT / "scripts/start-engines.sh"), "tls"], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    files = Path("/run/sandboxd-engines/tls")
    d = Daemon(tmp_path, f"""
[[engines]]
name = "tls"
host = "tcp://127.0.0.1:23760"
tls_ca = "{files / 'ca.pem'}"
tls_cert = "{files / 'cert.pem'}"
tls_key = "{files / 'key.pem'}"
""")
    try:
        async with open_client(d.url) as c:
            cid = (await c.call("create-container", {"image": FAST_IMAGE}))["containerId"]
            assert (await c.call("list-engines", {}))["engines"][0]["state"] == "up"
            accepted = await c.call("execute-command", {"containerId": cid, "command": ["sh", "-c", "wc -c; exit 3"],
                                                        "stdin": True})
            await c.send("stdin-data", {"executionId": accepted["executionId"], "data": "x" * 100000})
            await c.send("stdin-close", {"executionId": accepted["executionId"]})
            seen = await follow(c, accepted["executionId"], timeout=60)
        assert seen.complete["exitCode"] == 3 and bytes(seen.stdout).strip() == b"100000", "".join(d.log[-30:])
    finally:
        d.stop()
        tls = docker.DockerClient(base_url="tcp://127.0.0.1:23760", timeout=30, tls=docker.tls.TLSConfig(
            client_cert=(str(files / "cert.pem"), str(files / "key.pem")), ca_cert=str(files / "ca.pem"), verify=True),
            version="1.41")
        tls.api.trust_env = False  # verify against our CA, not $REQUESTS_CA_BUNDLE
        for c in tls.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={d.instance}"}):
            c.remove(force=True)
        tls.close()

"""Policy through plugins, against a real daemon: auth, ownership, command policy,
limits, origin check, git commit-on-finish, audit log, and a third-party plugin."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio_websocket

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .conftest import BASE_IMAGE, FAST_IMAGE
from .helpers import expect_event, follow, run

FIXTURE = Path(__file__).parents[1] / "fixtures" / "example-policy-plugin"
TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token", "root": "root-secret-token"}
ROLES = {"alice": ["user"], "bob": ["user"], "root": ["admin"]}


@pytest.fixture(scope="module")
def example_plugin():
    """Install the third-party fixture distribution, entry points and all, for real."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(FIXTURE)], check=True)
    yield
    subprocess.run([*pip, "uninstall", "-y", "sandboxd-example-policy"], check=True)


def token_table() -> str:
    rows = ", ".join(
        f'{{ user = "{u}", roles = {json.dumps(ROLES[u])}, sha256 = "{hashlib.sha256(t.encode()).hexdigest()}" }}'
        for u, t in TOKENS.items()
    )
    return f"tokens = [{rows}]"


@pytest.fixture(scope="module")
def policy_daemon(example_plugin, tmp_path_factory):
    from .conftest import Daemon

    tmp = tmp_path_factory.mktemp("policy")
    d = Daemon(tmp, f"""
[plugins]
enabled = ["token_auth", "ownership", "origin_check", "command_policy", "resource_limits",
           "audit_log", "git_commit", "example_deny", "example_explode", "example_hang"]
hook_timeout_seconds = 3.0
[plugins.token_auth]
{token_table()}
[plugins.origin_check]
allowed_origins = ["https://notebooks.example.com"]
[plugins.command_policy]
rules = [{{ roles = ["user"], deny_programs = ["reboot"], deny_env = ["LD_*"], allow_shell_commands = true }},
         {{ roles = ["admin"], deny_programs = ["perl"] }}]
[plugins.resource_limits.roles.user]
timeout_seconds = 2.0
[plugins.audit_log]
path = "{tmp / 'audit.jsonl'}"
[plugins.git_commit]
when = "always"
""")
    d.audit_path = tmp / "audit.jsonl"
    yield d
    d.cleanup()


def ws_url(daemon, user: str | None = None, where: str = "header") -> tuple[str, str | None]:
    if user is None:
        return daemon.url, None
    if where == "query":
        return f"{daemon.url}?token={TOKENS[user]}", None
    return daemon.url, TOKENS[user]


async def connect(daemon, user: str):
    url, token = ws_url(daemon, user)
    return open_client(url, token=token)


# --- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("headers, query", [
    ([], ""),                                                   # no token
    ([("Authorization", "Bearer not-a-real-token")], ""),       # wrong token
    ([("X-Token", TOKENS["alice"])], ""),                       # right token, wrong place
    ([("Authorization", f"Basic {TOKENS['alice']}")], ""),      # right token, wrong scheme
    ([], "?tok=" + TOKENS["alice"]),                            # wrong query parameter
])
async def test_handshakes_without_a_valid_token_get_401_before_upgrade(policy_daemon, headers, query):
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(policy_daemon.url + query, extra_headers=headers):
            pass
    assert info.value.status_code == 401


async def test_token_in_header_or_query_is_accepted(policy_daemon):
    async with open_client(policy_daemon.url, token=TOKENS["alice"]) as c:
        assert "ref" in await c.call("ping")
    async with open_client(f"{policy_daemon.url}?token={TOKENS['bob']}") as c:
        assert "ref" in await c.call("ping")


async def test_cross_site_origin_is_refused_with_403(policy_daemon):
    bad = [("Origin", "https://evil.example"), ("Authorization", f"Bearer {TOKENS['alice']}")]
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(policy_daemon.url, extra_headers=bad):
            pass
    assert info.value.status_code == 403
    good = [("Origin", "https://notebooks.example.com"), ("Authorization", f"Bearer {TOKENS['alice']}")]
    async with trio_websocket.open_websocket_url(policy_daemon.url, extra_headers=good) as ws:
        await ws.send_message('{"event": "ping", "data": {}}')
        assert json.loads(await ws.get_message())["event"] == "pong"


def test_cli_uses_sandboxd_token(policy_daemon):
    denied = policy_daemon.cli("sandbox", "ls")
    assert (denied.returncode, denied.stderr) == (
        125, b"sandboxd: the daemon requires a token: set SANDBOXD_TOKEN or pass --token\n")
    allowed = policy_daemon.cli("sandbox", "ls", env={"SANDBOXD_TOKEN": TOKENS["alice"]})
    assert allowed.returncode == 0, allowed.stderr


# --- ownership ------------------------------------------------------------------------


async def test_users_see_and_touch_only_their_own_sandboxes(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice, await connect(policy_daemon, "bob") as bob, \
            await connect(policy_daemon, "root") as root:
        a = (await alice.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        b = (await bob.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        alice_sees = {c["containerId"] for c in (await alice.call("list-containers"))["containers"]}
        bob_sees = {c["containerId"] for c in (await bob.call("list-containers"))["containers"]}
        root_sees = {c["containerId"] for c in (await root.call("list-containers"))["containers"]}
        assert a in alice_sees and b not in alice_sees
        assert b in bob_sees and a not in bob_sees
        assert {a, b} <= root_sees
        for event, data in [
            ("join-container", {"containerId": b}),
            ("execute-command", {"containerId": b, "command": ["true"]}),
            ("remove-container", {"containerId": b}),
            ("upload-files", {"containerId": b, "files": {"x.txt": "y"}}),
            ("download-file", {"containerId": b, "path": "x.txt"}),
            ("list-executions", {"containerId": b}),
            ("join-container", {"containerId": b[:12]}),
        ]:
            with pytest.raises(SandboxdError) as info:
                await alice.call(event, data)
            assert info.value.code == "NOT_FOUND"
            assert info.value.message == f"no such sandbox: {data['containerId']}"  # same as an unknown id
        # bob's execution is invisible to alice too
        running = await bob.call("execute-command", {"containerId": b, "command": ["sleep", "5"]})
        with pytest.raises(SandboxdError) as info:
            await alice.call("kill", {"executionId": running["executionId"]})
        assert info.value.code == "NOT_FOUND"
        # the admin can do anything
        await root.call("join-container", {"containerId": a})
        seen = await run(root, b, ["echo", "admin"])
        assert bytes(seen.stdout) == b"admin\n"
        await root.call("remove-container", {"containerId": a})
        await bob.call("remove-container", {"containerId": b})


# --- commands and limits --------------------------------------------------------------


async def test_third_party_plugin_denies_a_command_and_the_reason_reaches_the_client(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice:
        with pytest.raises(SandboxdError) as info:
            await alice.call("execute-command", {"image": FAST_IMAGE, "command": ["forbidden-cmd"]})
    assert info.value.code == "COMMAND_REJECTED"
    assert "alice may not run forbidden-cmd (example policy)" in info.value.message


async def test_command_policy_rules(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice:
        sandbox = (await alice.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        with pytest.raises(SandboxdError) as info:
            await alice.call("execute-command", {"containerId": sandbox, "command": ["/sbin/reboot"]})
        assert info.value.code == "COMMAND_REJECTED" and "'reboot' is not allowed" in info.value.message
        with pytest.raises(SandboxdError) as info:
            await alice.call("execute-command", {"containerId": sandbox, "command": ["true"], "env": {"LD_PRELOAD": "x"}})
        assert "LD_PRELOAD" in info.value.message
        seen = await run(alice, sandbox, ["echo", "allowed"])
        assert bytes(seen.stdout) == b"allowed\n"


async def test_command_policy_resolves_the_program_and_refuses_shell_lines_while_denying(policy_daemon):
    async with await connect(policy_daemon, "root") as root:
        sandbox = (await root.call("create-container", {"image": BASE_IMAGE}))["containerId"]
        setup = await run(root, sandbox, ["ln", "-s", "/usr/bin/perl", "/tmp/innocent"])
        assert setup.complete["status"] == "success"
        for command in (["perl", "-e", "print 1"], ["/tmp/innocent", "-e", "print 1"],
                        ["sh", "-c", "perl -e 1"], "perl -e 1"):
            with pytest.raises(SandboxdError) as info:
                await root.call("execute-command", {"containerId": sandbox, "command": command})
            assert info.value.code == "COMMAND_REJECTED", command
        assert "'perl' is not allowed" in info.value.message or "shell command lines" in info.value.message
        seen = await run(root, sandbox, ["python3", "-c", "print(2)"])
        assert bytes(seen.stdout) == b"2\n"


async def test_plugin_that_raises_fails_closed_and_the_daemon_carries_on(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice, await connect(policy_daemon, "bob") as bob:
        with pytest.raises(SandboxdError) as info:
            await alice.call("execute-command", {"image": FAST_IMAGE, "command": ["explode"]})
        assert info.value.code == "PLUGIN_ERROR"
        assert "example_explode" in info.value.message
        seen = await run(bob, (await bob.call("create-container", {"image": FAST_IMAGE}))["containerId"], ["echo", "ok"])
        assert bytes(seen.stdout) == b"ok\n"
        assert "ref" in await alice.call("ping")
    assert "plugin 'example_explode' raised in sandboxd_validate_command" in "".join(policy_daemon.log)


async def test_a_hook_that_never_answers_fails_closed_at_its_deadline(policy_daemon):
    # Authentication: the handshake is answered (500) instead of being left hanging.
    headers = [("Authorization", f"Bearer {TOKENS['alice']}"), ("X-Example-Hang", "1")]
    with trio.fail_after(60), pytest.raises(trio_websocket.ConnectionRejected) as rejected:
        async with trio_websocket.open_websocket_url(policy_daemon.url, extra_headers=headers):
            pass
    assert rejected.value.status_code == 500
    # A request's hook: PLUGIN_ERROR naming the plugin; the session carries on.
    async with await connect(policy_daemon, "alice") as alice:
        with trio.fail_after(60), pytest.raises(SandboxdError) as info:
            await alice.call("execute-command", {"image": FAST_IMAGE, "command": ["hang-in-plugin"]})
        assert info.value.code == "PLUGIN_ERROR" and "example_hang" in info.value.message
        assert "ref" in await alice.call("ping")
    log = "".join(policy_daemon.log)
    assert "plugin 'example_hang' did not answer sandboxd_authenticate within 3.0s" in log
    assert "plugin 'example_hang' did not answer sandboxd_validate_command within 3.0s" in log


async def test_per_role_limits_tighten_the_timeout(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice:
        accepted = await alice.call("execute-command", {"image": FAST_IMAGE, "command": ["sleep", "30"], "timeout": 60})
        seen = await follow(alice, accepted["executionId"], timeout=15)
    assert seen.complete["status"] == "timeout"


# --- after an execution ---------------------------------------------------------------


async def test_git_commit_on_finish_makes_a_real_commit(policy_daemon, docker_client):
    async with await connect(policy_daemon, "alice") as alice:
        sandbox = (await alice.call("create-container", {"image": BASE_IMAGE}))["containerId"]
        accepted = await alice.call("execute-command", {
            "containerId": sandbox, "command": ["sh", "-c", "echo 'print(42)' > main.py"]})
        seen = await follow(alice, accepted["executionId"])
        assert seen.complete["status"] == "success"
        committed = await expect_event(alice, "git-committed", timeout=30)
    assert committed["executionId"] == accepted["executionId"]
    log = docker_client.containers.get(sandbox).exec_run(
        ["git", "log", "--format=%H %an %ae %s", "--name-only"], user="sandbox", workdir="/home/sandbox")
    text = log.output.decode()
    assert log.exit_code == 0, text
    assert text.startswith(f"{committed['commit']} alice alice@sandboxd.invalid sandboxd: sh -c")
    assert "main.py" in text


async def test_git_missing_gives_a_warning_not_a_failed_execution(policy_daemon):
    async with await connect(policy_daemon, "alice") as alice:
        sandbox = (await alice.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        accepted = await alice.call("execute-command", {"containerId": sandbox, "command": ["touch", "f"]})
        seen = await follow(alice, accepted["executionId"])
        warning = await expect_event(alice, "warning", timeout=30)
    assert seen.complete["status"] == "success"
    assert warning["code"] == "GIT_COMMIT_FAILED" and "git is not installed" in warning["message"]


async def test_audit_log_has_one_correct_line_per_execution(policy_daemon):
    async with await connect(policy_daemon, "bob") as bob:
        sandbox = (await bob.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        ids = []
        for script in ("printf 12345; exit 3", "echo hi >&2"):
            accepted = await bob.call("execute-command", {"containerId": sandbox, "command": ["sh", "-c", script]})
            await follow(bob, accepted["executionId"])
            ids.append(accepted["executionId"])
    # The line is written after execution-complete (git_commit's hook may run first).
    with trio.fail_after(60):
        while True:
            lines = [json.loads(line) for line in policy_daemon.audit_path.read_text().splitlines()]
            mine = {line["executionId"]: line for line in lines if line["executionId"] in ids}
            if len(mine) == 2:
                break
            await trio.sleep(0.1)
    assert len(mine) == 2 and sum(1 for line in lines if line["executionId"] in ids) == 2
    first, second = mine[ids[0]], mine[ids[1]]
    assert first["user"] == "bob" and first["roles"] == ["user"] and first["containerId"] == sandbox
    assert first["command"] == ["sh", "-c", "printf 12345; exit 3"]
    assert (first["status"], first["exitCode"], first["bytesOut"]) == ("failed", 3, {"stdout": 5, "stderr": 0})
    assert (second["status"], second["exitCode"], second["bytesOut"]) == ("success", 0, {"stdout": 0, "stderr": 3})
    assert isinstance(first["durationMs"], int) and first["image"] == FAST_IMAGE


def test_plugins_command_lists_source_and_hooks(policy_daemon):
    result = policy_daemon.cli("--json", "plugins", "--config", str(policy_daemon.config_path))
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["example_deny"]["source"] == "sandboxd-example-policy==1.0.0"
    assert plugins["example_deny"]["hooks"] == ["sandboxd_validate_command"]
    assert plugins["token_auth"]["enabled"] and plugins["token_auth"]["hooks"] == ["sandboxd_authenticate", "sandboxd_reload"]


def test_serve_refuses_a_public_address_without_authentication(daemon):
    result = daemon.cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert result.returncode == 2 and b"--insecure" in result.stderr


def test_metrics_need_a_token_when_authentication_is_on_and_healthz_does_not(policy_daemon):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(policy_daemon.http + "/metrics", timeout=10)
    assert info.value.code == 401
    req = urllib.request.Request(policy_daemon.http + "/metrics", headers={"Authorization": f"Bearer {TOKENS['root']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert b"sandboxd_sessions" in resp.read()
    with urllib.request.urlopen(policy_daemon.http + "/healthz", timeout=10) as resp:
        assert json.load(resp)["status"] == "ok"

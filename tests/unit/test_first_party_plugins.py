"""First-party plugins' rules, on their own."""

from __future__ import annotations

import hashlib

from sandboxd_plugins.command_policy import CommandPolicy
from sandboxd_plugins.origin_check import OriginCheck
from sandboxd_plugins.resource_limits import ResourceLimits
from sandboxd_plugins.token_auth import TokenAuth

from sandboxd.plugin_types import HTTPRequest, Principal

USER = Principal("u", frozenset({"user"}))
GUEST = Principal("g", frozenset({"guest"}))


def req(headers=None, query=None):
    return HTTPRequest("GET", "/sandbox/ws", query or {}, headers or {}, "127.0.0.1:1")


def test_token_auth_accepts_bearer_and_query_only():
    auth = TokenAuth({"tokens": [{"user": "a", "roles": ["x"], "sha256": hashlib.sha256(b"tok").hexdigest()}]})
    assert auth.sandboxd_authenticate(req({"authorization": "Bearer tok"})) == Principal("a", frozenset({"x"}))
    assert auth.sandboxd_authenticate(req(query={"token": "tok"})).user == "a"
    assert auth.sandboxd_authenticate(req({"authorization": "Bearer nope"})) is None
    assert auth.sandboxd_authenticate(req({"cookie": "token=tok"})) is None


def test_command_policy_applies_rules_by_role():
    policy = CommandPolicy({"rules": [
        {"roles": ["guest"], "allow_programs": ["python3", "ls"], "max_argv_length": 20},
        {"roles": ["*"], "deny_argv_regex": [r"rm\s+-rf\s+/"]},
    ]})
    check = policy.sandboxd_validate_command
    assert check(GUEST, ["sh", "-c", "x"], {}, None) == "program 'sh' is not allowed"
    assert check(USER, ["sh", "-c", "x"], {}, None) is None
    assert "longer than 20" in check(GUEST, ["python3", "-c", "x" * 30], {}, None)
    assert "denied pattern" in check(USER, ["sh", "-c", "rm -rf /"], {}, None)


def test_command_policy_denies_by_resolved_program_and_refuses_shell_lines_while_denying():
    check = CommandPolicy({"rules": [{"roles": ["user"], "deny_programs": ["perl"]}]}).sandboxd_validate_command
    assert check(USER, ["/tmp/p", "-e1"], {}, "/usr/bin/perl") == "program 'perl' is not allowed"
    assert "shell command lines" in check(USER, ["/bin/sh", "-ec", "perl"], {}, "/usr/bin/dash")
    assert "shell command lines" in check(USER, ["busybox", "sh", "-c", "perl"], {}, "/bin/busybox")
    assert check(USER, ["ls", "-c"], {}, "/bin/busybox") is None
    allowed = CommandPolicy({"rules": [{"deny_programs": ["perl"], "allow_shell_commands": True}]})
    assert allowed.sandboxd_validate_command(USER, ["sh", "-c", "x"], {}, "/usr/bin/dash") is None


def test_resource_limits_take_the_tightest_role():
    rl = ResourceLimits({"default": {"timeout_seconds": 5},
                         "roles": {"user": {"timeout_seconds": 100, "memory_bytes": 1000},
                                   "slow": {"timeout_seconds": 50}}})
    from sandboxd.plugin_types import ExecutionLimits

    both = Principal("b", frozenset({"user", "slow"}))
    assert rl.sandboxd_execution_limits(both, ExecutionLimits(600, 10, 10)).timeout_seconds == 50
    assert rl.sandboxd_execution_limits(GUEST, ExecutionLimits(600, 10, 10)).timeout_seconds == 5


def test_origin_check_plugin_lists_origins_for_the_built_in_check():
    from sandboxd.config import parse_config
    from sandboxd.http import OriginPolicy

    assert OriginCheck({"allowed_origins": ["https://ok.example"]}).allowed == ("https://ok.example",)
    config = parse_config({"plugins": {"enabled": ["origin_check"],
                                       "origin_check": {"allowed_origins": ["https://OK.example/"]}}})
    assert "https://ok.example" in OriginPolicy.from_config(config, [8765]).allowed_origins


async def test_git_commit_in_uploads_mode_commits_only_after_uploads():
    from sandboxd_plugins.git_commit import GitCommit

    from sandboxd.plugin_types import ExecutionInfo, RunResult, SandboxInfo

    runs, events = [], []

    async def run_in_sandbox(argv, **_):
        runs.append(argv)
        return RunResult(0, b"0123456789abcdef0123456789abcdef01234567\n", b"")

    async def send_event(name, data):
        events.append((name, data))

    info = ExecutionInfo(id="exec-1", sandbox=SandboxInfo("c", "img", "u"), principal=USER, command=("make",),
                         workdir=None, status="success", exit_code=0,
                         run_in_sandbox=run_in_sandbox, send_event=send_event)
    plugin = GitCommit({"when": "uploads"})
    await plugin.sandboxd_execution_finished(info)
    assert runs == [] and events == []
    info.uploaded = ("/home/sandbox/main.py",)
    await plugin.sandboxd_execution_finished(info)
    assert len(runs) == 1 and runs[0][-3:-1] == ["u", "u@sandboxd.invalid"]
    assert events == [("git-committed", {"commit": "0123456789abcdef0123456789abcdef01234567"})]

"""The CLI's manners against a real daemon: one line with a hint for each error a user
meets first, docker's argument conventions, and listing filters (issue #10).

Most cases run the CLI in this process (typer's runner) against the shared daemon,
so the whole error table costs about a second."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from sandboxd.cli import app

from .conftest import FAST_IMAGE


def sandboxd(daemon, *args: str, url: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), prog_name="sandboxd", env={
        "SANDBOXD_URL": url or daemon.url, "SANDBOXD_TOKEN": None, "SANDBOXD_CONFIG": None})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sandbox(daemon):
    code, stdout, stderr = sandboxd(daemon, "sandbox", "create", "--image", FAST_IMAGE, "--label", "team=qa")
    assert code == 0, stderr
    return stdout.strip()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_error_table(daemon, sandbox):
    port = closed_port()
    http = daemon.http
    cases = [
        (["--url", f"http://127.0.0.1:{port}", "ps"], 125,
         f"cannot reach the sandboxd daemon at ws://127.0.0.1:{port}/sandbox/ws: connection refused "
         "(is 'sandboxd serve' running?)"),
        (["ps", "--url", f"{http}/index.html"], 125,
         f"ws{http[4:]}/index.html/sandbox/ws is not a sandboxd WebSocket endpoint (got HTTP 404 text/plain); "
         f"did you mean ws{http[4:]}/sandbox/ws?"),
        (["sandbox", "ls", "--url", f"ws{http[4:]}/index.html"], 125,
         f"ws{http[4:]}/index.html is not a sandboxd WebSocket endpoint (got HTTP 200 text/html); "
         f"did you mean ws{http[4:]}/sandbox/ws?"),
        (["exec", sandbox[:11], "--", "true"], 125, f"no such sandbox: {sandbox[:11]}"),
        (["exec", "-f", "f" * 64, "true"], 125, f"no such sandbox: {'f' * 64}"),
        (["logs", "exec-0000000000000000"], 125, "no such execution: exec-0000000000000000"),
        (["kill", "exec-0000000000000000"], 125, "no such execution: exec-0000000000000000"),
        (["exec", "--timeout", "0", sandbox, "--", "true"], 2, "--timeout must be more than 0 seconds, got 0"),
        (["sandbox", "create", "--image", FAST_IMAGE, "--cpus", "64"], 125,
         "cpus 64 is above this daemon's limit of 1 (sandbox.cpus)"),
    ]
    for args, code, message in cases:
        assert sandboxd(daemon, *args) == (code, "", f"sandboxd: {message}\n"), args


def test_docker_conventions_positional_sandbox_options_anywhere_and_http_urls(daemon, sandbox):
    # the sandbox first, as `docker exec` (and `--` optional); a 12-character prefix is enough
    assert sandboxd(daemon, "exec", "-f", sandbox[:12], "--", "sh", "-c", "echo $0", "hi") == (0, "hi\n", "")
    assert sandboxd(daemon, "exec", "--sandbox", sandbox, "-f", "echo", "alias") == (0, "alias\n", "")
    # --json and --url before or after the command; an http:// URL is the browser's address
    code, before, _ = sandboxd(daemon, "--json", "--url", daemon.http, "sandbox", "ls", url="ws://127.0.0.1:1")
    code_after, after, _ = sandboxd(daemon, "sandbox", "ls", "--json", "--url", daemon.http + "/",
                                    url="ws://127.0.0.1:1")
    assert code == code_after == 0 and json.loads(before) == json.loads(after)
    mine = next(s for s in json.loads(after) if s["containerId"] == sandbox)
    assert (mine["owner"], mine["labels"]) == ("anonymous", {"team": "qa"})
    code, table, _ = sandboxd(daemon, "sandbox", "ls")
    assert code == 0 and table.splitlines()[0].split() == ["ID", "IMAGE", "CREATED", "OWNER", "LABELS", "EPHEMERAL"]
    assert f"{sandbox[:12]}  {FAST_IMAGE}" in table and "anonymous" in table and "team=qa" in table


def test_ps_filters_and_logs_since(daemon, sandbox):
    code, ok_id, _ = sandboxd(daemon, "exec", sandbox, "--", "sh", "-c", "echo one; echo two >&2")
    assert sandboxd(daemon, "wait", ok_id.strip()) == (0, "0\n", "")
    assert sandboxd(daemon, "exec", "-f", sandbox, "--", "sh", "-c", "exit 3")[0] == 3
    code, listed, _ = sandboxd(daemon, "--json", "ps", "--sandbox", sandbox, "--status", "failed")
    assert code == 0 and listed and {(e["status"], e["containerId"]) for e in json.loads(listed)} == {
        ("failed", sandbox)}
    execution_id = ok_id.strip()
    assert sandboxd(daemon, "logs", execution_id, "--since", "1h") == (0, "one\n", "two\n")
    assert sandboxd(daemon, "logs", execution_id, "--since", "2099-01-01T00:00:00Z") == (0, "", "")
    assert sandboxd(daemon, "logs", execution_id, "--since-offset", "2") == (0, "e\n", "o\n")


def test_stdin_with_i_implies_follow(daemon, sandbox):
    result = daemon.cli("exec", "-i", sandbox, "--", "cat", input=b"piped\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"piped\n", b"")


def test_exec_as_another_user_only_when_allowed(make_daemon):
    d = make_daemon('[sandbox]\nallowed_users = ["root"]\n')
    code, sandbox, stderr = sandboxd(d, "sandbox", "create", "--image", FAST_IMAGE)
    assert code == 0, stderr
    sandbox = sandbox.strip()
    assert sandboxd(d, "exec", "-f", sandbox, "--", "id", "-u") == (0, "1000\n", "")
    assert sandboxd(d, "exec", "-f", "-u", "root", sandbox, "--", "id", "-u") == (0, "0\n", "")
    assert sandboxd(d, "exec", "-f", "--user", "1234", sandbox, "--", "id", "-u") == (
        125, "", "sandboxd: user '1234' is not allowed here (sandbox.allowed_users)\n")

"""The CLI's manners that need no daemon: usage errors are one line and exit 2, the
daemon's URL may be written as users write it, sizes and times parse like docker's, and
``config show`` checks a config exactly as ``serve`` does (issue #10)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sandboxd.cli import app
from sandboxd.cli.logs import parse_since
from sandboxd.cli.sandbox import parse_size
from sandboxd.endpoint import BadURL, refusal_message, websocket_url


def sandboxd(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), prog_name="sandboxd", env={"SANDBOXD_URL": None, "SANDBOXD_TOKEN": None,
                                                      "SANDBOXD_CONFIG": None})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("typed, url", [
    ("http://h:8765", "ws://h:8765/sandbox/ws"),
    ("http://h:8765/", "ws://h:8765/sandbox/ws"),
    ("https://h/prefix", "wss://h/prefix/sandbox/ws"),
    ("ws://h:8765", "ws://h:8765/sandbox/ws"),
    ("h:8765", "ws://h:8765/sandbox/ws"),
    ("ws://h:1/sandbox/ws?token=t", "ws://h:1/sandbox/ws?token=t"),
    ("wss://h/custom", "wss://h/custom"),
])
def test_the_daemon_url_is_accepted_as_users_write_it(typed, url):
    assert websocket_url(typed) == url


def test_answers_that_are_not_a_websocket_endpoint_are_one_line_with_a_hint():
    page = refusal_message("ws://h:1/", 200, "text/html; charset=utf-8", b"<html>" * 100, sent_token=False)
    assert page == ("ws://h:1/ is not a sandboxd WebSocket endpoint (got HTTP 200 text/html); "
                    "did you mean ws://h:1/sandbox/ws?")
    assert refusal_message("ws://h:1/sandbox/ws", 401, "text/plain", b"authentication required\n",
                           sent_token=False) == "the daemon requires a token: set SANDBOXD_TOKEN or pass --token"
    assert refusal_message("ws://h:1/sandbox/ws", 503, "text/plain", b"too many sessions\n",
                           sent_token=True) == "the daemon refused the connection (HTTP 503: too many sessions)"
    with pytest.raises(BadURL):
        websocket_url("ftp://h")


@pytest.mark.parametrize("args, message", [
    (["serve", "--port", "80000"], "Error: Invalid value for '--port': Input should be less than or equal to 65535"),
    (["serve", "--log-level", "verbose"], "Error: Invalid value for '--log-level': Value error, 'verbose' is not one of"),
    (["exec", "sandbox-id"], "sandboxd: no command given: sandboxd exec SANDBOX -- CMD [ARG]..."),
    (["exec", "--timeout", "0", "sandbox-id", "--", "true"], "sandboxd: --timeout must be more than 0 seconds, got 0"),
    (["exec", "-s", "a", "--image", "b", "--", "true"], "sandboxd: give a sandbox or --image IMAGE, not both"),
    (["exec", "--env", "NOEQUALS", "sandbox-id", "true"], "sandboxd: --env wants K=V, got 'NOEQUALS'"),
    (["logs", "--since", "10", "exec-1"],
     "sandboxd: --since: '10' has no unit: write 10s or 10m (for a byte offset, use --since-offset)"),
    (["ps", "--status", "done"], "sandboxd: --status must be one of running, success, failed, timeout, "
                                 "killed, error, interrupted, got 'done'"),
    (["sandbox", "create", "--memory", "6x"], "sandboxd: --memory: expected a size like 512m or 1g, got '6x'"),
    (["--url", "ftp://h", "ps"], "sandboxd: ftp://h: the daemon's URL must start with ws://, wss://, http:// or https://"),
])
def test_usage_errors_exit_2_with_one_line_saying_what_is_wrong(args, message):
    code, stdout, stderr = sandboxd(*args)
    assert code == 2 and stdout == ""
    assert message in stderr.splitlines()[-1] and "Traceback" not in stderr


@pytest.mark.parametrize("settings", [
    '[plugins]\nenabled = ["token_auht"]\n',
    '[plugins]\nenabled = ["audit_log"]\n[plugins.audit_log]\npath = "/tmp/a.log"\ncolour = "red"\n',
    '[plugins.ownership]\nadmin_role = "x"\n',
])
def test_config_show_refuses_what_serve_refuses_with_the_same_message(tmp_path, settings):
    path = tmp_path / "sandboxd.toml"
    path.write_text(settings)
    shown = sandboxd("config", "show", "--config", str(path))
    served = sandboxd("serve", "--config", str(path))
    assert shown[0] == served[0] == 2
    assert shown[2] == served[2] and shown[2].startswith(f"sandboxd: {path}: [plugins]")


def test_help_names_the_environment_and_shows_no_type_placeholders():
    code, stdout, _ = sandboxd("--help")
    assert code == 0
    for name in ("SANDBOXD_URL", "SANDBOXD_TOKEN", "SANDBOXD_CONFIG"):
        assert name in stdout
    for args in (["--help"], ["exec", "--help"], ["sandbox", "create", "--help"], ["logs", "--help"]):
        text = sandboxd(*args)[1]
        assert "<bool>" not in text and "<str>" not in text and "errors mapped" not in text
    assert "Usage: sandboxd exec [OPTIONS] [SANDBOX] [--] CMD [ARG]..." in sandboxd("exec", "--help")[1]


def test_sizes_and_times_parse_like_docker():
    assert [parse_size(s) for s in ("536870912", "512m", "1g", "1.5GiB", "64k")] == [
        512 << 20, 512 << 20, 1 << 30, 3 << 29, 64 << 10]
    assert parse_since("10m", 1000.0) == 400.0 and parse_since("1h30m", 10_000.0) == 4600.0
    assert parse_since("2026-01-02T15:04:05Z", 0) == 1767366245.0

"""`sandboxd exec --follow` behaves like `docker exec`: same bytes, same streams, same status."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from .conftest import BASE_IMAGE, FAST_IMAGE


@pytest.fixture(scope="module")
def sandbox(daemon):
    result = daemon.cli("sandbox", "create", "--image", BASE_IMAGE)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def test_sandbox_create_prints_a_container_id_the_daemon_owns(daemon, sandbox):
    assert re.fullmatch(r"[0-9a-f]{64}", sandbox)
    assert sandbox in [c.id for c in daemon.containers()]


def test_stdout_stderr_and_exit_code_pass_through(daemon, sandbox):
    result = daemon.cli("exec", "--sandbox", sandbox, "--follow", "--",
                        "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, b"out\n", b"err\n")


def test_64_mib_of_random_bytes_arrive_byte_identical(daemon, sandbox):
    script = "head -c 67108864 /dev/urandom > /tmp/r && sha256sum /tmp/r | cut -d' ' -f1 >&2 && cat /tmp/r"
    result = daemon.cli("exec", "--sandbox", sandbox, "--follow", "--", "sh", "-c", script)
    assert result.returncode == 0
    assert len(result.stdout) == 64 * 1024 * 1024
    assert hashlib.sha256(result.stdout).hexdigest() == result.stderr.decode().strip()


def test_one_off_sandbox_from_an_image_is_removed_afterwards(daemon):
    before = {c.id for c in daemon.containers()}
    result = daemon.cli("exec", "--image", BASE_IMAGE, "--follow", "--", "python3", "-c", "print(1)")
    assert (result.returncode, result.stdout) == (0, b"1\n")
    assert {c.id for c in daemon.containers()} == before


def test_without_follow_prints_the_execution_id_and_returns_at_once(daemon, sandbox):
    result = daemon.cli("exec", "--sandbox", sandbox, "--", "sleep", "0.5")
    assert result.returncode == 0
    assert re.fullmatch(rb"exec-[0-9a-f]{16}\n", result.stdout)


def test_env_workdir_and_stdin_are_forwarded(daemon, sandbox):
    result = daemon.cli("exec", "--sandbox", sandbox, "--follow", "-i", "--env", "GREETING=hé",
                        "--workdir", "/tmp", "--", "sh", "-c", 'echo "$GREETING $(pwd)"; cat',
                        input=b"line one\n\xff\x00binary\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hé /tmp\n".encode() + b"line one\n\xff\x00binary\n"


def test_timeout_exits_124(daemon, sandbox):
    result = daemon.cli("exec", "--sandbox", sandbox, "--follow", "--timeout", "1", "--", "sleep", "100")
    assert result.returncode == 124
    assert b"timed out" in result.stderr


def test_command_not_found_exits_like_docker_exec(daemon, sandbox):
    result = daemon.cli("exec", "--sandbox", sandbox, "--follow", "--", "no-such-program")
    assert result.returncode in (126, 127)


def test_unknown_sandbox_exits_125_with_one_line_reason(daemon):
    result = daemon.cli("exec", "--sandbox", "f" * 64, "--follow", "--", "true")
    assert result.returncode == 125
    assert result.stderr.decode().count("\n") == 1 and "no such sandbox" in result.stderr.decode()


def test_unreachable_daemon_exits_125(daemon):
    result = daemon.cli("exec", "--url", "ws://127.0.0.1:9/sandbox/ws", "--sandbox", "x", "--follow", "--", "true")
    assert result.returncode == 125
    assert b"cannot reach the sandboxd daemon" in result.stderr


def test_sandbox_ls_and_rm(daemon):
    created = daemon.cli("sandbox", "create", "--image", FAST_IMAGE).stdout.decode().strip()
    listed = json.loads(daemon.cli("--json", "sandbox", "ls").stdout)
    assert created in [c["containerId"] for c in listed]
    removed = daemon.cli("sandbox", "rm", created[:12])
    assert removed.returncode == 0 and removed.stdout.decode().strip() == created
    assert created not in [c.id for c in daemon.containers()]
    again = daemon.cli("sandbox", "rm", created)
    assert again.returncode == 125 and b"no such sandbox" in again.stderr

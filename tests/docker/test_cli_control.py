"""Stopping commands from the CLI: Ctrl-C on ``exec --follow`` behaves as for a local
command, and ``kill``/``wait`` handle detached executions (issue #10). Real CLI
processes, real signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from .conftest import FAST_IMAGE


@pytest.fixture(scope="module")
def sandbox(daemon):
    result = daemon.cli("sandbox", "create", "--image", FAST_IMAGE)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


class Follower:
    """``sandboxd exec --follow`` in a subprocess, its stdout read line by line."""

    def __init__(self, daemon, sandbox: str, script: str) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandboxd", "exec", "--sandbox", sandbox, "--follow", "--",
             "sh", "-c", f": {self.tag}; {script}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "SANDBOXD_URL": daemon.url},
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def expect(self, line: bytes) -> None:
        assert self.lines.get(timeout=60) == line

    def finish(self) -> tuple[int, bytes]:
        try:
            self.proc.wait(60)
        finally:
            self.proc.kill()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()

    def record(self, daemon) -> dict:
        listed = daemon.cli("--json", "ps")
        assert listed.returncode == 0, listed.stderr
        return next(e for e in json.loads(listed.stdout) if self.tag in " ".join(e["command"]))


def test_ctrl_c_interrupts_the_command_and_the_cli_exits_130_saying_nothing(daemon, sandbox):
    f = Follower(daemon, sandbox, "echo ready; sleep 300")
    f.expect(b"ready\n")
    f.proc.send_signal(signal.SIGINT)
    assert f.finish() == (130, b"")
    record = f.record(daemon)
    assert (record["status"], record["exitCode"]) == ("failed", 130)  # the shell died of SIGINT


def test_a_command_that_survives_ctrl_c_is_stopped_by_the_next_signal(daemon, sandbox):
    f = Follower(daemon, sandbox, "trap 'echo got INT' INT; echo ready; while :; do sleep 1; done")
    f.expect(b"ready\n")
    f.proc.send_signal(signal.SIGINT)
    f.expect(b"got INT\n")
    f.proc.send_signal(signal.SIGHUP)  # a closed terminal: like a second Ctrl-C
    assert f.finish() == (130, b"")
    assert f.record(daemon)["status"] == "killed"


def test_kill_and_wait_handle_a_detached_execution(daemon, sandbox):
    started = daemon.cli("exec", "--sandbox", sandbox, "--", "sleep", "300")
    execution_id = started.stdout.decode().strip()
    waiter = subprocess.Popen([sys.executable, "-m", "sandboxd", "wait", execution_id],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "SANDBOXD_URL": daemon.url})
    try:
        killed = daemon.cli("kill", "--signal", "TERM", execution_id)
        assert (killed.returncode, killed.stdout, killed.stderr) == (0, f"{execution_id}\n".encode(), b"")
        stdout, stderr = waiter.communicate(timeout=60)
    finally:
        waiter.kill()
    assert (waiter.returncode, stdout, stderr) == (143, b"143\n", b"")

    again = daemon.cli("kill", execution_id)
    assert (again.returncode, again.stderr) == (
        1, f"sandboxd: execution {execution_id} is not running (it ended: killed)\n".encode())


def test_removing_the_sandbox_under_a_follower_says_why(daemon):
    created = daemon.cli("sandbox", "create", "--image", FAST_IMAGE)
    doomed = created.stdout.decode().strip()
    f = Follower(daemon, doomed, "echo ready; sleep 300")
    f.expect(b"ready\n")
    assert daemon.cli("sandbox", "rm", doomed).returncode == 0
    code, stderr = f.finish()
    assert code in (137, 143)  # SIGKILL or SIGTERM, whichever reached it first
    assert stderr == b"sandboxd: the command was stopped: the sandbox was removed\n"

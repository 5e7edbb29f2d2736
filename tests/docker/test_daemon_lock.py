"""One daemon per store and per instance: a second ``sandboxd serve`` leaves the first
one's executions alone, and a daemon that cannot listen changes nothing (issue #10)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys


def serve(config_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandboxd", "serve", "--config", str(config_path), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def start_sleep(d) -> str:
    created = d.cli("sandbox", "create")
    assert created.returncode == 0, created.stderr
    started = d.cli("exec", "--sandbox", created.stdout.decode().strip(), "--", "sleep", "300")
    assert started.returncode == 0, started.stderr
    return started.stdout.decode().strip()


def status(d, execution_id: str) -> str:
    listed = d.cli("--json", "ps")
    assert listed.returncode == 0, listed.stderr
    return next(e["status"] for e in json.loads(listed.stdout) if e["executionId"] == execution_id)


def test_a_second_daemon_exits_at_once_and_one_that_cannot_listen_changes_nothing(make_daemon, tmp_path):
    d = make_daemon()
    execution_id = start_sleep(d)

    same = serve(d.config_path, "--port", "0")
    assert same.returncode == 1
    assert same.stderr == (
        f"sandboxd: another sandboxd daemon (pid {d.proc.pid}) is using the store {d.state_dir}; "
        "stop it first, or give this one its own store.dir and docker.instance\n")

    own_store = tmp_path / "own-store.toml"
    own_store.write_text(d.config_path.read_text().replace(str(d.state_dir), str(tmp_path / "other-state")))
    same_instance = serve(own_store, "--port", "0")
    assert same_instance.returncode == 1
    assert same_instance.stderr.count("\n") == 1
    assert f"(pid {d.proc.pid}) is using docker.instance '{d.instance}'" in same_instance.stderr

    assert d.proc.poll() is None
    assert status(d, execution_id) == "running"

    # After a crash the record still says running; a new daemon that cannot listen
    # exits before it recovers anything (it would mark it interrupted and kill the sleep).
    d.stop(signal.SIGKILL)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(d.config_path, "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == f"sandboxd: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    with sqlite3.connect(d.state_dir / "executions.sqlite3") as db:
        (recorded,) = db.execute("SELECT status FROM executions WHERE id=?", (execution_id,)).fetchone()
    assert recorded == "running"

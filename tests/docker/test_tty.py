"""Interactive terminals: from a real pseudo-terminal through `sandboxd shell`, and over
the protocol with `tty: true`."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import trio

from sandboxd.client import open_client

from .conftest import BASE_IMAGE, FAST_IMAGE
from .helpers import expect_event, follow


class Pty:
    """A child process on a real pseudo-terminal of a given size."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 100, rows: int = 30) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        #: Kept open to look at the terminal's modes after the program exits.
        self.slave = slave
        self.output = b""

    def expect(self, pattern: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen; got {self.output[-500:]!r}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    time.sleep(0.05)
        return self.output

    def send(self, data: bytes) -> None:
        os.write(self.master, data)


def test_shell_on_a_real_terminal_raw_mode_ctrl_c_and_exit_code(daemon):
    sandbox = daemon.cli("sandbox", "create", "--image", BASE_IMAGE).stdout.decode().strip()
    env = {**os.environ, "SANDBOXD_URL": daemon.url}
    term = Pty([sys.executable, "-m", "sandboxd", "shell", sandbox], env, cols=100, rows=30)
    try:
        term.expect(rb"\$ ")  # the prompt: bash is reading the terminal
        term.send(b"stty size; echo READY\r")
        term.expect(rb"30 100\r\nREADY")  # the window size reached the sandbox
        term.send(b"sleep 30; echo after-sleep\r")
        time.sleep(1.0)
        started = time.monotonic()
        term.send(b"\x03")  # Ctrl-C, as typed: the terminal driver in the sandbox makes it SIGINT
        term.send(b"echo interrupted-$?\r")
        term.expect(rb"interrupted-130")
        assert time.monotonic() - started < 10
        assert not re.search(rb"\nafter-sleep", term.output)  # the sleep never finished
        fcntl.ioctl(term.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.killpg(term.proc.pid, 28)  # SIGWINCH, as the terminal would send it
        time.sleep(0.5)
        term.send(b"stty size\r")
        term.expect(rb"40 120")
        lflag = termios.tcgetattr(term.slave)[3]
        assert not lflag & termios.ICANON and not lflag & termios.ECHO  # raw while the shell runs
        term.send(b"exit 5\r")
        assert term.proc.wait(20) == 5
        lflag = termios.tcgetattr(term.slave)[3]
        assert lflag & termios.ICANON and lflag & termios.ECHO  # the terminal was restored
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
        os.close(term.slave)


async def test_tty_over_the_protocol_merges_streams_and_resizes(daemon):
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": BASE_IMAGE}))["containerId"]
        accepted = await client.call("execute-command", {
            "containerId": sandbox, "command": ["sh"], "tty": True, "cols": 90, "rows": 20})
        eid = accepted["executionId"]
        await client.send("stdin-data", {"executionId": eid, "data": "stty size; echo err >&2\r"})
        seen = await follow(client, eid, until=lambda s: b"err" in s.stdout and b"20 90" in s.stdout)
        await client.send("resize", {"executionId": eid, "cols": 50, "rows": 10})
        await trio.sleep(0.3)
        await client.send("stdin-data", {"executionId": eid, "data": "stty size; exit 3\r"})
        await follow(client, eid, seen=seen)
    assert b"10 50" in seen.stdout
    assert seen.stderr == b""  # a terminal has one stream
    assert seen.complete["exitCode"] == 3


async def test_resize_of_a_command_without_a_terminal_is_a_bad_request(daemon):
    async with open_client(daemon.url) as client:
        accepted = await client.call("execute-command", {"image": BASE_IMAGE, "command": ["sleep", "2"]})
        await client.send("resize", {"executionId": accepted["executionId"], "cols": 10, "rows": 10, "ref": "r"})
        err = await expect_event(client, "error")
    assert err["code"] == "BAD_REQUEST" and "no terminal" in err["message"]


async def test_a_terminal_nobody_follows_is_stopped_after_the_grace(make_daemon):
    daemon = make_daemon("[limits]\ndetached_tty_grace_seconds = 1.0")
    async with open_client(daemon.url) as watcher:
        async with open_client(daemon.url) as starter:
            configured = await starter.call("configure-session", {"binaryOutput": False})
            assert (configured["user"], configured["roles"]) == ("anonymous", ["anonymous"])
            sandbox = (await starter.call("create-container", {"image": FAST_IMAGE}))["containerId"]
            shell = await starter.call("execute-command", {"containerId": sandbox, "command": ["sh"], "tty": True})
            plain = await starter.call("execute-command", {"containerId": sandbox, "command": ["sleep", "60"]})
            await watcher.call("join-container", {"containerId": sandbox})
        await trio.sleep(2)  # two graces without the starter: a joined session keeps the terminal
        assert await _statuses(watcher, sandbox) == {shell["executionId"]: "running", plain["executionId"]: "running"}
    async with open_client(daemon.url) as later:  # a list does not follow anything
        with trio.fail_after(20):
            while (await _statuses(later, sandbox))[shell["executionId"]] == "running":
                await trio.sleep(0.2)
        records = {r["executionId"]: r for r in (await later.call("list-executions", {"containerId": sandbox}))["executions"]}
        await later.call("join-container", {"containerId": sandbox})
        await later.call("kill", {"executionId": plain["executionId"]})  # only to end the test sooner
    assert records[shell["executionId"]]["status"] == "killed"
    assert records[shell["executionId"]]["reason"] == "no client attached for 1 s"
    assert records[plain["executionId"]]["status"] == "running"  # only terminals are for someone at them


async def _statuses(client, sandbox: str) -> dict[str, str]:
    rows = (await client.call("list-executions", {"containerId": sandbox}))["executions"]
    return {r["executionId"]: r["status"] for r in rows}

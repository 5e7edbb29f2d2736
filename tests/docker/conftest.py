"""A real ``sandboxd serve`` process on 127.0.0.1, talking to the real Docker engine.

Determinism rules for these tests:
- every wait is bounded (``trio.fail_after`` or a subprocess timeout);
- each daemon uses its own ``docker.instance`` label, and every container carrying it
  is removed when the daemon fixture ends, whatever the test did;
- servers listen on 127.0.0.1 with port 0; nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from sandboxd.engine import LABEL_INSTANCE

FAST_IMAGE = "sandboxd/busybox"
BASE_IMAGE = "sandboxd/base"


class Daemon:
    """``sandboxd serve`` in a subprocess; ``url`` is its WebSocket endpoint."""

    def __init__(self, tmp: Path, config: str = "") -> None:
        self.instance = f"pytest-{uuid.uuid4().hex[:10]}"
        self.config_path = tmp / f"{self.instance}.toml"
        self.state_dir = tmp / f"{self.instance}-state"
        self.config_path.write_text(_merge(BASE_CONFIG.format(instance=self.instance, state=self.state_dir), config))
        self._spawn()

    def _spawn(self) -> None:
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandboxd", "serve", "--config", str(self.config_path),
             "--port", "0", "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self._port: int | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(30) or self._port is None:
            self.stop()
            raise RuntimeError("daemon did not start:\n" + "".join(self.log))
        self.port = self._port
        self.url = f"ws://127.0.0.1:{self.port}/sandbox/ws"
        self.http = f"http://127.0.0.1:{self.port}"

    def restart(self, sig: int = signal.SIGKILL) -> None:
        """Stop the daemon (by default as a crash would) and start it again, same config."""
        self.stop(sig)
        self._spawn()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if (m := re.search(r"listening on [^ ]+:(\d+)", line)) and self._port is None:
                self._port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "SANDBOXD_URL": self.url, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "sandboxd", *args], input=input, capture_output=True,
            timeout=timeout, env=env,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def containers(self, all: bool = True) -> list:
        """This daemon's containers on its engine (``[docker] url``, else the main one)."""
        m = re.search(r'^url = "(.+)"', self.config_path.read_text(), re.M)
        client = docker.DockerClient(base_url=m.group(1)) if m else docker.from_env()
        try:
            return client.containers.list(all=all, filters={"label": f"{LABEL_INSTANCE}={self.instance}"})
        finally:
            client.close()

    def cleanup(self) -> None:
        self.stop()
        for c in self.containers():
            c.remove(force=True)


BASE_CONFIG = """
[docker]
instance = "{instance}"
[store]
dir = "{state}"
[sandbox]
default_image = "sandboxd/busybox"
max_sandboxes_per_user = 100
[limits]
kill_grace_seconds = 1.0
"""


def _merge(base: str, extra: str) -> str:
    """``base`` TOML with ``extra``'s tables merged in; a key in both takes ``extra``'s value.
    Arrays of tables (``[[engines]]``) in ``extra`` go last, verbatim."""
    cut = ("\n" + extra).find("\n[[")
    extra, arrays = (extra, "") if cut < 0 else (extra[:cut], extra[cut:])
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in (base + "\n" + extra).splitlines():
        if m := re.match(r"\s*\[([\w.]+)\]\s*$", line):
            current = m.group(1)
            sections.setdefault(current, {})
        elif line.strip():
            key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith(" ") else line
            sections.setdefault(current, {})[key] = line
    merged = "\n".join(f"[{name}]\n" + "\n".join(lines.values()) for name, lines in sections.items() if name)
    return merged + "\n" + (arrays + "\n" if arrays else "")


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """One daemon shared by the tests that need no special config."""
    d = Daemon(tmp_path_factory.mktemp("daemon"))
    yield d
    d.cleanup()


@pytest.fixture
def make_daemon(tmp_path):
    """Start a daemon with extra config for one test."""
    started: list[Daemon] = []

    def make(config: str = "") -> Daemon:
        d = Daemon(tmp_path, config)
        started.append(d)
        return d

    yield make
    for d in started:
        d.cleanup()


@pytest.fixture
async def client(daemon):
    """A protocol client connected to the shared daemon."""
    from sandboxd.client import open_client

    async with open_client(daemon.url) as c:
        yield c


@pytest.fixture
async def sandbox(client):
    """A fresh sandbox (the fast busybox image) in the shared daemon."""
    created = await client.call("create-container", {"image": FAST_IMAGE})
    assert created["image"] == FAST_IMAGE
    return created["containerId"]


@pytest.fixture
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False

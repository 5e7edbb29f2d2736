"""A sandbox's cgroup, seen from the host: its processes and its OOM-kill count.

Stopping an execution from *inside* the sandbox needs a new process there, which a
fork bomb that used up the pids limit makes impossible. When the daemon runs on the
engine's host (it shares the host's pid and cgroup view), it can instead list the
sandbox's processes in the cgroup and signal them directly: nothing is started in the
sandbox, and nothing is paused (freezing the cgroup made concurrent ``docker exec``
starts fail with "container is paused"). Each process is opened as a pidfd before its
marker is read, so a pid reused meanwhile is never signalled.

Both cgroup v2 (``memory.events``) and v1 (``memory.oom_control``) are read. Anything
missing (a remote engine, a daemon in its own pid namespace) makes :func:`find` return
None, and callers fall back to running a helper inside the sandbox.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
#: A SIGKILL sweep repeats until no marked process is left, for at most this long.
KILL_SWEEP_SECONDS = 5.0


class SandboxCgroup:
    def __init__(self, container_id: str, directory: Path, oom_file: Path, oom_key: str) -> None:
        self.container_id = container_id
        self.directory = directory
        self._oom_file = oom_file
        self._oom_key = oom_key

    @classmethod
    def find(cls, container_id: str, pid: int, root: Path = ROOT) -> SandboxCgroup | None:
        """The cgroup of the container whose init has host pid ``pid``, if this process
        can see it (and it is that container's)."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        paths = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
        if (root / "cgroup.controllers").exists() and "" in paths:  # cgroup v2
            found = cls(container_id, root / paths[""].lstrip("/"), Path("memory.events"), "oom_kill")
        elif "memory" in paths:  # cgroup v1
            found = cls(container_id, root / "memory" / paths["memory"].lstrip("/"),
                        Path("memory.oom_control"), "oom_kill")
        else:
            return None
        if container_id not in str(found.directory) or not (found.directory / "cgroup.procs").exists():
            return None
        return found

    def oom_kills(self) -> int | None:
        """How many processes the kernel's OOM killer has killed in this cgroup."""
        try:
            text = (self.directory / self._oom_file).read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == self._oom_key and value.strip().isdigit():
                return int(value)
        return None

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def signal_marked(self, marker: str, sig: str) -> int | None:
        """Send ``sig`` to every process whose environment holds ``marker`` (and to the
        process group each leads). For KILL, sweep again until none is left.

        Returns how many processes were signalled, or None if the cgroup is gone.
        """
        if not self.directory.exists():
            return None
        signum = signal.Signals[f"SIG{sig}"]
        needle = marker.encode()
        total = 0
        deadline = time.monotonic() + KILL_SWEEP_SECONDS
        while True:
            hit = sum(_signal_if_marked(pid, needle, signum) for pid in self.pids())
            total += hit
            if hit == 0 or signum != signal.SIGKILL or time.monotonic() > deadline:
                return total


def _signal_if_marked(pid: int, needle: bytes, signum: int) -> int:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return 0
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if needle not in f.read().split(b"\0"):
                return 0
        stat = Path(f"/proc/{pid}/stat").read_text()
        pgid = int(stat.rsplit(")", 1)[1].split()[2])
        signal.pidfd_send_signal(fd, signum)
        if pgid == pid:  # it leads its group: children that cleared their environment too
            os.killpg(pgid, signum)
        return 1
    except (OSError, ValueError, IndexError):
        return 0
    finally:
        os.close(fd)

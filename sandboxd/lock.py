"""One daemon per store and per engine instance.

``sandboxd serve`` takes two exclusive locks before it touches anything: one on its store
directory (execution records and logs) and one on its ``docker.instance`` label on its
engine (the containers it owns). A second daemon configured with either of the same
refuses to start, naming the process that holds the lock, instead of marking the first
one's executions interrupted and killing their processes.

The locks are ``flock`` locks on small files, held for the life of the process: the
kernel releases them when the process ends, however it ends, so a crash never leaves a
stale lock behind. The instance lock lives on this host (``/run/sandboxd`` for root,
else ``$XDG_RUNTIME_DIR/sandboxd`` or ``/tmp/sandboxd-UID``): two daemons on different
hosts sharing one remote engine are not detected.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Iterator

from .config import Config


class LockHeld(Exception):
    """Another daemon holds the store or the instance; the message names its pid."""


@contextlib.contextmanager
def daemon_locks(config: Config) -> Iterator[None]:
    """Hold the store lock and the instance lock until the block ends.

    Raises:
        LockHeld: another process holds one of them.
        OSError: a lock file cannot be created.
    """
    store = config.store.path()
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = config.docker.url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    instance = config.docker.instance
    with contextlib.ExitStack() as held:
        held.enter_context(_flock(
            store / "daemon.lock",
            f"another sandboxd daemon (pid {{pid}}) is using the store {store}; stop it first, or give "
            "this one its own store.dir and docker.instance",
        ))
        held.enter_context(_flock(
            instance_lock_path(engine, instance),
            f"another sandboxd daemon (pid {{pid}}) is using docker.instance {instance!r} on {engine}; "
            "stop it first, or give this one its own docker.instance and store.dir",
        ))
        yield


def instance_lock_path(engine: str, instance: str) -> Path:
    """The host-wide lock file for ``instance`` on ``engine``."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        base = Path("/run/sandboxd")
    elif runtime := os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(runtime) / "sandboxd"
    else:
        base = Path(f"/tmp/sandboxd-{os.getuid()}")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", instance)[:64]
    digest = hashlib.sha256(f"{engine}\0{instance}".encode()).hexdigest()[:12]
    return base / f"instance-{safe}-{digest}.lock"


@contextlib.contextmanager
def _flock(path: Path, message: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(message.format(pid=_holder(fd))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """The pid the holder wrote into the lock file ("unknown" while it is writing it)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"

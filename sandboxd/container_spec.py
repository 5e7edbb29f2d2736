"""What a sandbox's container is created with, beyond its resource limits.

I/O-free. From the image's config and its (never run) ``/etc/passwd`` and
``/etc/group``, decide:

- the numeric ``User`` (``uid:gid``): a name would be looked up in the container's
  own files at every exec; a number means what the daemon checked at create;
- size-limited tmpfs mounts for ``/tmp``, the working directory and the user's home,
  owned by that user, so a sandbox's disk use is bounded even with a writable root
  (tmpfs pages count against the sandbox's memory limit);
- ulimits (``nofile``; ``nproc`` only when configured, since RLIMIT_NPROC counts a uid's
  processes across *all* sandboxes, which share uids).

What the image has in the working directory and home (e.g. ``.bashrc``) is copied into
their tmpfs after start, by the sandbox's user. A directory holding more than
:data:`SEED_MAX_BYTES` in the image gets no tmpfs (it would hide those files): its
writes go to the container's layer (read-only with ``read_only_root``), bounded only by
``sandbox.storage_bytes`` where the storage driver supports it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Mapping

from .config import SandboxConfig
from .errors import BadRequest

#: Most bytes (as a tar) of an image's workdir or home that are copied into its tmpfs.
SEED_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ImageFacts:
    """What the daemon learnt about an image before creating a sandbox from it."""

    uid: int
    gid: int
    workdir: str
    home: str
    #: Directories a tmpfs goes over -> the tar of what the image has there (b"": nothing),
    #: copied into the tmpfs after start. A directory with more than
    #: :data:`SEED_MAX_BYTES` in the image is left out (it stays on the container's layer).
    seeds: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"


def resolve_user(user: str, passwd: bytes | None, group: bytes | None, image: str) -> tuple[int, int, str]:
    """``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``, empty = root) as numbers and home.

    Raises:
        BadRequest: a name the image's ``/etc/passwd`` (or ``/etc/group``) does not have.
    """
    users = _table(passwd)
    name, _, grp = (user or "0").partition(":")
    if name.isdigit():
        uid = int(name)
        row = next((r for r in users.values() if r[1] == name), None)
    else:
        row = users.get(name)
        if row is None:
            raise BadRequest(f"image {image}: user {name!r} is not in its /etc/passwd")
        uid = int(row[1])
    home = row[4] if row is not None and len(row) > 4 and row[4].startswith("/") else "/"
    if grp:
        if grp.isdigit():
            gid = int(grp)
        else:
            g = _table(group).get(grp)
            if g is None:
                raise BadRequest(f"image {image}: group {grp!r} is not in its /etc/group")
            gid = int(g[1])
    else:
        gid = int(row[2]) if row is not None and row[2].isdigit() else uid
    return uid, gid, home


def _table(raw: bytes | None) -> dict[str, list[str]]:
    """``name -> [name, uid/gid, ...]`` of a passwd or group file (x password field dropped)."""
    rows: dict[str, list[str]] = {}
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            rows.setdefault(fields[0], [fields[0], fields[2], *fields[3:]])
    return rows


def tmpfs_mounts(facts: ImageFacts, config: SandboxConfig) -> dict[str, str]:
    """Mount point -> tmpfs options. A size of 0 leaves that path on the container's layer."""
    def opts(size: int, owned: bool) -> str:
        owner = f",uid={facts.uid},gid={facts.gid},mode=0755" if owned else ",mode=1777"
        return f"rw,exec,nosuid,nodev,size={size}{owner}"

    mounts: dict[str, str] = {}
    if config.tmp_bytes:
        mounts["/tmp"] = opts(config.tmp_bytes, owned=False)
    workdir = posixpath.normpath(facts.workdir)
    if config.workdir_bytes and workdir != "/" and workdir in facts.seeds and not _under(workdir, mounts):
        mounts[workdir] = opts(config.workdir_bytes, owned=True)
    home = posixpath.normpath(facts.home)
    if config.home_bytes and home != "/" and home in facts.seeds and not _under(home, mounts):
        if not any(_under(m, {home: ""}) for m in mounts):  # a home above the workdir would hide it
            mounts[home] = opts(config.home_bytes, owned=True)
    return mounts


def _under(path: str, mounts: Mapping[str, str]) -> bool:
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def ulimits(config: SandboxConfig) -> list[dict[str, int | str]]:
    out: list[dict[str, int | str]] = []
    if config.nofile:
        out.append({"Name": "nofile", "Soft": config.nofile, "Hard": config.nofile})
    if config.nproc:
        out.append({"Name": "nproc", "Soft": config.nproc, "Hard": config.nproc})
    return out

"""Sandboxes: the containers this daemon created, and only those.

The daemon never touches a container it did not create. Every id a client names is
resolved here; an id of someone else's container gets exactly the answer an unknown
id gets (``NOT_FOUND``), so probing reveals nothing.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import tarfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, AsyncIterator

import trio

from . import files
from .config import LimitsConfig, SandboxConfig
from .container_spec import SEED_MAX_BYTES, ImageFacts, resolve_user, tmpfs_mounts, ulimits
from .engine import LABEL_ENGINE, LABEL_PROBE, Engine, members_of
from .errors import Forbidden, LimitExceeded, NotFound, SandboxdError
from .plugin_types import SandboxInfo, SandboxOptions

log = logging.getLogger(__name__)

#: What a client may name a sandbox by: its full id or a prefix of 12+ (never a name).
_ID = re.compile(r"[0-9a-f]{12,64}")
#: Full ids the engine did not know (or not as ours) are not asked about again for this long.
_UNKNOWN_TTL = 30.0
LABEL_EPHEMERAL = "org.sandboxd.ephemeral"
LABEL_OWNER = "org.sandboxd.owner"
LABEL_TTL = "org.sandboxd.ttl"


@dataclass
class Sandbox:
    id: str
    image: str
    created_at: float
    ephemeral: bool = False
    owner: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: Learnt on first use (see sandboxd.files): the working directory.
    workdir: str | None = field(default=None, compare=False)
    #: Idle time after which the sandbox is removed (0: never).
    ttl_seconds: float = 0.0
    #: Last time (monotonic) an execution ended or the sandbox was created/adopted.
    last_active: float = field(default_factory=time.monotonic, compare=False)
    #: The limits it was created with.
    limits: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The engine holding it, when several are configured (its ``org.sandboxd.engine``).
    engine: str | None = None

    @classmethod
    def from_labels(cls, cid: str, image: str, created_at: float, labels: dict[str, str]) -> Sandbox:
        try:
            ttl = float(labels.get(LABEL_TTL, "0"))
        except ValueError:
            ttl = 0.0
        return cls(cid, image, created_at, labels.get(LABEL_EPHEMERAL) == "true", labels.get(LABEL_OWNER),
                   labels, ttl_seconds=ttl, engine=labels.get(LABEL_ENGINE))

    def info(self) -> SandboxInfo:
        """The sandbox as plugins see it."""
        return SandboxInfo(self.id, self.image, self.owner, dict(self.labels))

    def describe(self) -> dict[str, Any]:
        return {
            "containerId": self.id,
            "image": self.image,
            "createdAt": self.created_at,
            "ephemeral": self.ephemeral,
            "owner": self.owner,
            "labels": {k: v for k, v in self.labels.items() if not k.startswith("org.sandboxd.")},
            "ttlSeconds": self.ttl_seconds,
            **({"engine": self.engine} if self.engine else {}),
        }


class SandboxRegistry:
    def __init__(self, engine: Engine, config: SandboxConfig) -> None:
        self.engine = engine
        self.config = config
        self._known: dict[str, Sandbox] = {}
        self._creating = 0
        #: Ids being removed: a lookup meanwhile must not adopt them again.
        self._removing: set[str] = set()
        #: Image id -> what its files say (an image id names immutable content).
        self._facts: dict[str, ImageFacts] = {}
        #: Full ids recently looked up in vain (id -> when to forget), bounded.
        self._unknown: OrderedDict[str, float] = OrderedDict()

    async def load(self) -> None:
        """Adopt the sandboxes this daemon instance created before a restart."""
        for c in await self.engine.list_sandboxes():
            labels = c.get("Labels") or {}
            if labels.get(LABEL_EPHEMERAL) == "true" or labels.get(LABEL_PROBE) == "true":
                # A one-off sandbox's execution died with the previous daemon.
                await self.engine.remove_container(c["Id"])
                continue
            self._known[c["Id"]] = Sandbox.from_labels(c["Id"], c.get("Image", ""), float(c.get("Created", 0)), labels)
        log.info("adopted %d existing sandboxes", len(self._known))

    def list(self) -> list[Sandbox]:
        return sorted(self._known.values(), key=lambda s: s.created_at)

    def default_options(self, image: str | None) -> SandboxOptions:
        c = self.config
        return SandboxOptions(image or c.default_image, c.memory_bytes, c.cpus, c.pids_limit, c.read_only_root)

    async def create(
        self, options: SandboxOptions, *, owner: str, ephemeral: bool = False, ttl_seconds: float | None = None,
        engine: str | None = None,
    ) -> Sandbox:
        """Create a sandbox; ``engine``: the engine placement chose (several engines only).

        Raises:
            NotFound: the image is not on the engine.
            Forbidden, LimitExceeded: config refuses the image or the count.
        """
        image = options.image
        if self.config.allowed_images and image not in self.config.allowed_images:
            raise Forbidden(f"image {image!r} is not allowed here")
        if len(self._known) + self._creating >= self.config.max_sandboxes:
            raise LimitExceeded(f"at most {self.config.max_sandboxes} sandboxes at once")
        if sum(1 for s in self._known.values() if s.owner == owner) >= self.config.max_sandboxes_per_user:
            raise LimitExceeded(f"at most {self.config.max_sandboxes_per_user} sandboxes per user")
        ttl = self.config.idle_ttl_seconds
        if ttl_seconds is not None:
            ttl = min(ttl, ttl_seconds) if ttl else ttl_seconds
        labels = {LABEL_OWNER: owner, LABEL_TTL: f"{ttl:g}"}
        if ephemeral:
            labels[LABEL_EPHEMERAL] = "true"
        if engine is not None:
            labels[LABEL_ENGINE] = engine
        self._creating += 1
        try:
            try:
                facts = await self.image_facts(image, engine)
                mounts = tmpfs_mounts(facts, self.config)
                cid = await self.engine.create_sandbox(
                    options, command=self.config.keepalive_command, user=facts.user, labels=labels,
                    tmpfs=mounts, ulimits=ulimits(self.config), storage_bytes=self.config.storage_bytes,
                )
                try:
                    await self._seed(cid, facts, mounts)
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await self.engine.remove_container(cid)
                    raise
            except NotFound:
                raise NotFound(f"no such image: {image}") from None
        finally:
            self._creating -= 1
        sandbox = self._known[cid] = Sandbox.from_labels(cid, image, time.time(), {**options.labels, **labels})
        sandbox.limits = {"memoryBytes": options.memory_bytes, "cpus": options.cpus, "pidsLimit": options.pids_limit,
                          "readOnlyRoot": options.read_only_root}
        log.info("created sandbox %s from %s for %s", cid[:12], image, owner)
        return sandbox

    async def image_facts(self, image: str, engine: str | None = None) -> ImageFacts:
        """The numeric user, working directory, home and empty directories of ``image``.

        Learnt once per image id from a never-started container (see
        :mod:`sandboxd.container_spec`).
        """
        members = members_of(self.engine)
        target = members[engine] if engine in members else next(iter(members.values()))
        info = await target.inspect_image(image)
        if (known := self._facts.get(info["Id"])) is not None:
            return known
        config = info.get("Config") or {}
        workdir = config.get("WorkingDir") or "/"
        async with target.open_image_probe(image) as read:
            passwd = _tar_member(await read("/etc/passwd", 1 << 20))
            group = _tar_member(await read("/etc/group", 1 << 20))
            uid, gid, home = resolve_user(self.config.user or config.get("User") or "", passwd, group, image)
            seeds = {}
            for path in {posixpath.normpath(workdir), posixpath.normpath(home)} - {"/"}:
                listing = await read(path.rstrip("/") + "/.", SEED_MAX_BYTES + 1)
                if listing is None or _entries(listing) <= 1:  # missing, or only the directory itself
                    seeds[path] = b""
                elif len(listing) <= SEED_MAX_BYTES:
                    seeds[path] = listing
        while len(self._facts) >= 16:
            self._facts.pop(next(iter(self._facts)))
        facts = self._facts[info["Id"]] = ImageFacts(uid, gid, workdir, home, seeds)
        return facts

    async def _seed(self, cid: str, facts: ImageFacts, mounts: dict[str, str]) -> None:
        """Copy what the image has in each tmpfs-covered directory into it, as the sandbox user."""
        for path, tar in facts.seeds.items():
            if tar and path in mounts:
                async def body(data: bytes = tar) -> AsyncIterator[bytes]:
                    yield data
                target = SimpleNamespace(id=cid, workdir=path)
                await files.upload_stream(self.engine, target, ".", body(), user=None, workdir=path,
                                          limits=LimitsConfig(), archive=True)

    async def resolve(self, container_id: str) -> Sandbox:
        """The sandbox ``container_id`` names: a full id or a unique prefix of 12+ hex
        digits of one of this daemon's sandboxes (names never resolve).

        Raises:
            NotFound: no such container, or one this daemon did not create.
        """
        if (sandbox := self._known.get(container_id)) is not None:
            return sandbox
        if not _ID.fullmatch(container_id):
            raise NotFound.sandbox(container_id)  # ".", names, short prefixes: never asked
        matches = [s for cid, s in self._known.items() if cid.startswith(container_id)]
        if len(matches) == 1:
            return matches[0]
        # Not seen yet (created before a restart and missed, say): ask the engine about a
        # full id, and admit it only if it carries our labels.
        now = time.monotonic()
        if len(container_id) < 64 or self._unknown.get(container_id, 0) > now:
            raise NotFound.sandbox(container_id)
        try:
            info = await self.engine.inspect_container(container_id)
        except NotFound:
            info = None
        if info is None or info.get("Id") != container_id or not self.engine.is_ours(info) \
                or container_id in self._removing:
            self._unknown[container_id] = now + _UNKNOWN_TTL
            while len(self._unknown) > 4096:
                self._unknown.popitem(last=False)
            raise NotFound.sandbox(container_id)
        labels = info["Config"].get("Labels") or {}
        sandbox = self._known[info["Id"]] = Sandbox.from_labels(info["Id"], info["Config"].get("Image", ""), time.time(), labels)
        return sandbox

    def get(self, container_id: str) -> Sandbox | None:
        return self._known.get(container_id)

    async def remove(self, sandbox: Sandbox) -> None:
        self._known.pop(sandbox.id, None)
        self._removing.add(sandbox.id)
        try:
            await self.engine.remove_container(sandbox.id)
        finally:
            self._removing.discard(sandbox.id)
        log.info("removed sandbox %s", sandbox.id[:12])

    def idle(self, busy: set[str]) -> list[Sandbox]:
        """Sandboxes past their idle TTL (``busy``: ids with running executions)."""
        now = time.monotonic()
        return [s for s in self._known.values()
                if s.ttl_seconds and s.id not in busy and now - s.last_active > s.ttl_seconds]

    async def remove_ephemeral(self) -> None:
        """On shutdown: one-off sandboxes must not outlive the daemon."""
        async def remove(sandbox: Sandbox) -> None:
            try:
                await self.remove(sandbox)
            except SandboxdError as exc:
                log.warning("could not remove one-off sandbox %s: %s", sandbox.id[:12], exc.message)

        async with trio.open_nursery() as nursery:
            for sandbox in self.list():
                if sandbox.ephemeral:
                    nursery.start_soon(remove, sandbox)


def _tar_member(data: bytes | None) -> bytes | None:
    """The content of the single file in the engine's tar of one path."""
    if not data:
        return None
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            f = tar.extractfile(member) if member is not None else None
            return f.read() if f is not None else None
    except (tarfile.TarError, EOFError):
        return None


def _entries(data: bytes) -> int:
    """How many entries the start of a tar stream shows (2 means "more than one")."""
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
            for _ in tar:
                count += 1
                if count > 1:
                    break
    except (tarfile.TarError, EOFError):
        pass
    return count

"""Several Docker engines behind the one :class:`~sandboxd.engine.Engine` protocol.

A daemon that drives many hosts still has one map from ids to engines, and it is kept
here: every sandbox carries its engine's name in a label (``org.sandboxd.engine``), so
the map is rebuilt from the engines themselves at start, and a container the pool has
not seen yet is looked for on each engine in turn. Exec ids are returned prefixed with
the engine's name (``"b2:4f0c…"``), so exec calls route without any table at all.

Which engine a new sandbox goes to is not decided here (see :mod:`sandboxd.placement`
and the ``sandboxd_place_sandbox`` hook): the caller names it in the label, and the pool
only checks that it exists and answers.

Faults stay local: each member has its own connection pool, limiter, health flag and
error counter, so a member that stops answering fails only the calls routed to it.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncContextManager, Callable, Mapping, Sequence

import trio

from ..config import DockerConfig, EngineConfig
from ..errors import EngineUnavailable, NotFound, SandboxdError
from ..plugin_types import RunResult, SandboxOptions
from ._docker import DockerEngine
from ._stream import ExecStream

log = logging.getLogger(__name__)

#: Label naming the engine a sandbox was placed on.
LABEL_ENGINE = "org.sandboxd.engine"


class EnginePool:
    """Routes each call to the engine that holds the container (or the exec)."""

    def __init__(
        self, config: DockerConfig, engines: Sequence[EngineConfig], *,
        on_error: Callable[[str, str], None] | None = None,
    ) -> None:
        if not engines:
            raise ValueError("an engine pool needs at least one engine")
        self.config = config
        self.settings: dict[str, EngineConfig] = {e.name: e for e in engines}
        report = on_error or (lambda engine, op: None)
        self.members: dict[str, DockerEngine] = {
            e.name: DockerEngine(config, url=e.host, name=e.name, tls=e if e.tls else None,
                                 on_error=lambda op, name=e.name: report(name, op))
            for e in engines
        }
        #: Container id → engine name, for every sandbox seen.
        self._where: dict[str, str] = {}
        #: The protocol's error callback; the members report with their names instead.
        self.on_error: Callable[[str], None] = lambda op: None

    # --- the pool as one engine ---------------------------------------------------

    @property
    def available(self) -> bool:
        """True while at least one engine answers."""
        return any(m.available for m in self.members.values())

    @available.setter
    def available(self, value: bool) -> None:  # pragma: no cover - housekeeping sets members
        for m in self.members.values():
            m.available = value

    def check_available(self, op: str) -> None:
        if not self.available:
            raise EngineUnavailable(f"{op}: none of the Docker engines is answering")

    async def ping(self, timeout: float) -> bool:
        results: dict[str, bool] = {}

        async def one(name: str, member: DockerEngine) -> None:
            results[name] = await member.ping(timeout)

        async with trio.open_nursery() as nursery:
            for name, member in self.members.items():
                nursery.start_soon(one, name, member)
        return any(results.values())

    async def version(self) -> dict[str, Any]:
        for member in self.members.values():
            if member.available:
                return await member.version()
        raise EngineUnavailable("version: none of the Docker engines is answering")

    async def aclose(self) -> None:
        for member in self.members.values():
            await member.aclose()

    def is_ours(self, container: Mapping[str, Any]) -> bool:
        return next(iter(self.members.values())).is_ours(container)

    # --- routing ------------------------------------------------------------------

    def engine_of(self, container_id: str) -> str | None:
        """The name of the engine holding ``container_id``, if known."""
        return self._where.get(container_id)

    def member(self, name: str) -> DockerEngine:
        try:
            return self.members[name]
        except KeyError:
            raise NotFound(f"no engine named {name!r}") from None

    async def _holder(self, container_id: str) -> DockerEngine:
        """The engine holding ``container_id``; unknown ids are looked for on each
        engine that answers (a sandbox created while this daemon was down, or on an
        engine that was down when it started)."""
        if (name := self._where.get(container_id)) is not None:
            return self.members[name]
        await self.inspect_container(container_id)
        return self.members[self._where[container_id]]

    def _exec(self, exec_id: str) -> tuple[DockerEngine, str]:
        name, sep, raw = exec_id.rpartition(":")
        if not sep or name not in self.members:
            raise NotFound(f"no such exec: {exec_id}")
        return self.members[name], raw

    # --- containers -----------------------------------------------------------------

    async def create_sandbox(
        self, options: SandboxOptions, *, command: Sequence[str], user: str | None, labels: Mapping[str, str],
        **spec: Any,
    ) -> str:
        """Create the sandbox on the engine its ``org.sandboxd.engine`` label names
        (``spec``: tmpfs, ulimits, storage_bytes, as :meth:`DockerEngine.create_sandbox`)."""
        name = labels.get(LABEL_ENGINE) or options.labels.get(LABEL_ENGINE)
        if name is None:
            raise SandboxdError("internal: a sandbox was not placed on an engine")
        cid = await self.member(name).create_sandbox(options, command=command, user=user, labels=labels, **spec)
        self._where[cid] = name
        return cid

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        if (name := self._where.get(container_id)) is not None:
            return await self.members[name].inspect_container(container_id)
        for name, member in self.members.items():
            if not member.available:
                continue
            try:
                info = await member.inspect_container(container_id)
            except NotFound:
                continue
            except SandboxdError as exc:
                log.warning("engine %s: could not look for %s: %s", name, container_id[:12], exc.message)
                continue
            if self.is_ours(info):
                self._where[info["Id"]] = name
            return info
        raise NotFound(f"no such container: {container_id}")

    async def list_sandboxes(self) -> list[dict[str, Any]]:
        """Sandboxes on every engine that answers (each dict gains ``"Engine"``)."""
        found: list[dict[str, Any]] = []

        async def one(name: str, member: DockerEngine) -> None:
            try:
                containers = await member.list_sandboxes()
            except SandboxdError as exc:
                log.warning("engine %s: could not list its sandboxes: %s", name, exc.message)
                return
            for c in containers:
                self._where[c["Id"]] = name
                found.append({**c, "Engine": name})

        async with trio.open_nursery() as nursery:
            for name, member in self.members.items():
                nursery.start_soon(one, name, member)
        return found

    async def remove_container(self, container_id: str) -> None:
        try:
            member = await self._holder(container_id)
        except NotFound:
            return
        await member.remove_container(container_id)
        self._where.pop(container_id, None)

    # --- execs ----------------------------------------------------------------------

    async def exec_create(
        self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, stdin: bool = False, tty: bool = False,
    ) -> str:
        member = await self._holder(container_id)
        raw = await member.exec_create(container_id, command, env=env, workdir=workdir, user=user,
                                       stdin=stdin, tty=tty)
        return f"{member.name}:{raw}"

    async def exec_resize(self, exec_id: str, cols: int, rows: int) -> None:
        member, raw = self._exec(exec_id)
        await member.exec_resize(raw, cols, rows)

    async def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        member, raw = self._exec(exec_id)
        return await member.exec_inspect(raw)

    def open_exec_stream(self, exec_id: str, *, tty: bool = False) -> AsyncContextManager[ExecStream]:
        member, raw = self._exec(exec_id)
        return member.open_exec_stream(raw, tty=tty)

    async def run_to_end(
        self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, max_output: int = 1 << 20,
    ) -> RunResult:
        member = await self._holder(container_id)
        return await member.run_to_end(container_id, command, env=env, workdir=workdir, user=user,
                                       max_output=max_output)

    async def signal_execution(self, container_id: str, marker: str, signal: str, *, user: str | None = None) -> int | None:
        member = await self._holder(container_id)
        return await member.signal_execution(container_id, marker, signal, user=user)

    def __getattr__(self, name: str) -> Any:
        """Engine methods added later that take a container id first are routed like the
        others (so a new per-container call works on a pool without a change here)."""
        if name.startswith("_") or not callable(getattr(DockerEngine, name, None)):
            raise AttributeError(name)

        async def routed(container_id: str, *args: Any, **kwargs: Any) -> Any:
            member = await self._holder(container_id)
            return await getattr(member, name)(container_id, *args, **kwargs)

        return routed


def members_of(engine: object) -> dict[str, Any]:
    """The engines behind ``engine`` by name: a pool's members, or the one engine itself."""
    if isinstance(engine, EnginePool):
        return dict(engine.members)
    return {getattr(engine, "name", "local"): engine}

"""Use cases about the engines themselves: where a new sandbox goes, and what each
engine holds (``list-engines``, ``list-images``, ``/healthz``).

With one engine (the ``[docker]`` section) there is nothing to choose; with several
(``[[engines]]``, an :class:`~sandboxd.engine.EnginePool`) each new sandbox is placed by
:mod:`sandboxd.placement` and the ``sandboxd_place_sandbox`` hook, and the chosen
engine's name goes into the sandbox's ``org.sandboxd.engine`` label.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .. import placement
from ..engine import LABEL_ENGINE, EnginePool, members_of
from ..errors import NotFound, SandboxdError
from ..plugin_types import EngineLoad, Placement, Principal, SandboxOptions
from ._base import OperationsBase

log = logging.getLogger(__name__)


@dataclass
class EngineState:
    """One engine as ``list-engines`` reports it."""

    name: str
    url: str
    up: bool
    sandboxes: int
    running: int
    max_sandboxes: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "state": "up" if self.up else "down",
                "sandboxes": self.sandboxes, "runningExecutions": self.running,
                "maxSandboxes": self.max_sandboxes, "labels": self.labels}


class EngineOperations(OperationsBase):
    def __init__(self, **parts: Any) -> None:
        super().__init__(**parts)
        #: Sandboxes being created on each engine now (counted as load, so that concurrent
        #: creates spread instead of all choosing the same least-loaded engine).
        self._placing: Counter[str] = Counter()
        #: Each engine's size from ``/info``: (memory bytes, CPUs), learnt once.
        self._capacity: dict[str, tuple[int, float]] = {}

    def _engine_counts(self) -> tuple[Counter[str], Counter[str]]:
        where = {s.id: s.engine or "local" for s in self.sandboxes.list()}
        sandboxes: Counter[str] = Counter(where.values())
        running: Counter[str] = Counter(where.get(ex.container_id, "?") for ex in self.executions.running())
        return sandboxes, running

    async def engine_loads(self) -> list[EngineLoad]:
        """Every configured engine as placement sees it."""
        pool = self.engine
        assert isinstance(pool, EnginePool)
        placing, capacity = self._placing, self._capacity
        sandboxes, running = self._engine_counts()
        committed_mem: Counter[str] = Counter()
        committed_cpu: Counter[str] = Counter()
        for s in self.sandboxes.list():
            name = s.engine or "local"
            committed_mem[name] += int(s.limits.get("memoryBytes", self.config.sandbox.memory_bytes))
            committed_cpu[name] += float(s.limits.get("cpus", self.config.sandbox.cpus))
        loads = []
        for name, member in pool.members.items():
            settings = pool.settings[name]
            if name not in capacity and member.available:
                try:
                    info = await member.info()
                    capacity[name] = (int(info.get("MemTotal") or 0), float(info.get("NCPU") or 0))
                except SandboxdError as exc:
                    log.warning("engine %s: could not read its size: %s", name, exc.message)
            mem_free = cpus_free = None
            mem_total, ncpu = capacity.get(name, (0, 0.0))
            if mem_total > 0 and settings.memory_overcommit > 0:
                mem_free = int(mem_total * settings.memory_overcommit) - committed_mem[name]
            if ncpu > 0 and settings.cpu_overcommit > 0:
                cpus_free = ncpu * settings.cpu_overcommit - committed_cpu[name]
            loads.append(EngineLoad(
                name=name, labels=dict(settings.labels), sandboxes=sandboxes[name] + placing[name],
                running=running[name], max_sandboxes=settings.max_sandboxes,
                memory_free=mem_free, cpus_free=cpus_free,
            ))
        return loads

    async def place(self, principal: Principal, options: SandboxOptions, want: Placement) -> list[str]:
        """Engine names a new sandbox may go to, best first (the caller tries them in
        order: an engine without the image is skipped). One engine: ``["local"]``.

        Raises:
            BadRequest, EngineUnavailable, LimitExceeded: see :mod:`sandboxd.placement`.
            Forbidden: a plugin vetoed.
        """
        if not isinstance(self.engine, EnginePool):
            if want.engine not in (None, getattr(self.engine, "name", "local")):
                raise NotFound(f"placement: no engine named {want.engine!r}")
            return [getattr(self.engine, "name", "local")]
        up = {name for name, m in self.engine.members.items() if m.available}
        fits = placement.candidates(await self.engine_loads(), want, options, up=up)
        chosen = await self.plugins.place_sandbox(principal, options, want, fits)
        return [e.name for e in chosen]

    def placing(self, name: str, delta: int) -> None:
        """Count a create in flight on engine ``name`` (+1 before, -1 after)."""
        self._placing[name] += delta

    def engine_label(self, name: str) -> dict[str, str]:
        """The label that sends a sandbox to engine ``name`` (none with one engine)."""
        return {LABEL_ENGINE: name} if isinstance(self.engine, EnginePool) else {}

    async def list_engines(self, principal: Principal) -> list[EngineState]:
        """Every engine with its state and load (anyone may see these: no sandbox ids)."""
        sandboxes, running = self._engine_counts()
        states = []
        pool = self.engine if isinstance(self.engine, EnginePool) else None
        for name, member in members_of(self.engine).items():
            settings = pool.settings[name] if pool is not None else None
            states.append(EngineState(
                name=name, url=member.url, up=bool(member.available), sandboxes=sandboxes[name],
                running=running[name], max_sandboxes=settings.max_sandboxes if settings else 0,
                labels=dict(settings.labels) if settings else {},
            ))
        return states

    async def list_images(self, principal: Principal) -> dict[str, list[str]]:
        """Image tag → the engines that have it (engines that answer)."""
        images: dict[str, list[str]] = {}
        for name, member in members_of(self.engine).items():
            if not member.available:
                continue
            try:
                tags = await member.list_images()
            except SandboxdError as exc:
                log.warning("engine %s: could not list its images: %s", name, exc.message)
                continue
            for tag in tags:
                images.setdefault(tag, []).append(name)
        return dict(sorted(images.items()))

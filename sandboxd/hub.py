"""The daemon's wiring: builds its parts once, each given what it needs.

:func:`open_hub` connects to the engine, adopts existing sandboxes, and owns the
nursery where execution tasks and housekeeping live; sessions come and go, the hub
stays. Front ends see it as :class:`sandboxd.operations.Services`: its :attr:`Hub.ops`
(:mod:`sandboxd.operations`) is where every use case and policy decision lives.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from .config import Config
from .engine import DockerEngine, Engine, EnginePool, members_of
from .errors import SandboxdError
from .executions import Execution, ExecutionManager
from .housekeeping import Housekeeping
from .logstore import ExecutionRecords
from .metrics import Metrics
from .operations import Operations, Watchers
from .plugins import Plugins, load_plugins
from .sandboxes import SandboxRegistry

log = logging.getLogger(__name__)


class Hub:
    """Every part of a running daemon (implements :class:`~sandboxd.operations.Services`)."""

    def __init__(
        self, config: Config, engine: Engine, nursery: trio.Nursery, plugins: Plugins, records: ExecutionRecords,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.engine = engine
        self.plugins = plugins
        self.records = records
        self.metrics = metrics
        self.sandboxes = SandboxRegistry(engine, config.sandbox)
        self.executions = ExecutionManager(
            engine, config.limits, nursery, records, on_finished=self._finished, metrics=metrics)
        #: Connected clients of every front end, by id.
        self.watchers = Watchers()
        #: What front ends call: every use case.
        self.ops = Operations(
            config=config, engine=engine, plugins=plugins, sandboxes=self.sandboxes,
            executions=self.executions, records=records, watchers=self.watchers,
        )
        self.housekeeping = Housekeeping(
            config=config, engine=engine, sandboxes=self.sandboxes, executions=self.executions,
            records=records, watchers=self.watchers,
        )
        metrics.observe(
            sessions=lambda: len(self.watchers),
            sandboxes=lambda: len(self.sandboxes.list()),
            running=lambda: len(self.executions.running()),
            engine_up={name: (lambda e=e: 1.0 if e.available else 0.0) for name, e in members_of(engine).items()},
        )

    @property
    def sessions(self) -> Watchers:
        """Connected clients (counted by ``/healthz``, metrics and the session cap)."""
        return self.watchers

    async def _finished(self, ex: Execution) -> None:
        await self.ops.execution_finished(ex)

    async def health(self) -> dict[str, Any]:
        return await self.housekeeping.health()

    async def drain(self, grace: float) -> None:
        await self.housekeeping.drain(grace)


@asynccontextmanager
async def open_hub(
    config: Config, plugins: Plugins | None = None, *, engine: Engine | None = None
) -> AsyncIterator[Hub]:
    """Connect to the engine, adopt existing sandboxes, and own the executions' nursery.

    ``engine``: what to drive instead of the Docker engine ``config`` names (in-process
    tests pass a fake one); it is closed on exit either way.
    """
    plugins = plugins or load_plugins(config)
    state_dir = config.store.path()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    records = ExecutionRecords(state_dir)
    if interrupted := records.mark_interrupted():
        log.warning("%d executions were cut off when the daemon last stopped; marked interrupted", len(interrupted))
    metrics = Metrics()
    if engine is None:
        if config.engines:
            engine = EnginePool(config.docker, config.engines,
                                on_error=lambda name, op: metrics.docker_error(op, name))
        else:
            engine = DockerEngine(config.docker, on_error=metrics.docker_error)
    try:
        async with trio.open_nursery() as nursery:
            hub = Hub(config, engine, nursery, plugins, records, metrics)
            try:
                await hub.sandboxes.load()
            except SandboxdError as exc:
                log.warning("could not list existing sandboxes: %s", exc.message)
            if interrupted:
                nursery.start_soon(hub.housekeeping.stop_orphans, interrupted, name="stop orphans")
            nursery.start_soon(hub.housekeeping.maintain, name="housekeeping")
            nursery.start_soon(hub.housekeeping.watch_engine, name="engine health")
            nursery.start_soon(hub.housekeeping.end_detached_terminals, name="detached terminals")
            try:
                yield hub
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(2 * config.limits.kill_grace_seconds + 10):
                        await hub.housekeeping.drain(0)
                        await hub.sandboxes.remove_ephemeral()
                nursery.cancel_scope.cancel()
    finally:
        await engine.aclose()
        records.close()

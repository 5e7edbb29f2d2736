"""The daemon-wide state every session shares: sandboxes, executions, watchers, plugins.

Sessions come and go; the hub and the executions it owns stay. Its nursery (opened
by :func:`open_hub`) is the one place execution tasks live. Front ends use
:attr:`Hub.ops` (:mod:`sandboxd.operations`), where every use case and policy
decision lives.
"""

from __future__ import annotations

import itertools
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from . import __version__
from .config import Config
from .engine import EXEC_MARKER, DockerEngine
from .errors import SandboxdError
from .executions import Execution, ExecutionManager
from .logstore import ExecutionRecords
from .metrics import Metrics
from .operations import Operations, Watchers
from .plugins import Plugins, load_plugins
from .sandboxes import SandboxRegistry

log = logging.getLogger(__name__)


class Hub:
    def __init__(
        self, config: Config, engine: DockerEngine, nursery: trio.Nursery, plugins: Plugins, records: ExecutionRecords
    ) -> None:
        self.config = config
        self.engine = engine
        self.plugins = plugins
        self.records = records
        self.sandboxes = SandboxRegistry(engine, config.sandbox)
        self.executions = ExecutionManager(engine, config.limits, nursery, records, on_finished=self._finished)
        #: Connected clients of every front end, by id.
        self.watchers = Watchers()
        #: What front ends call: every use case.
        self.ops = Operations(
            config=config, engine=engine, plugins=plugins, sandboxes=self.sandboxes,
            executions=self.executions, records=records, watchers=self.watchers,
        )
        self.started_at = time.monotonic()
        self.metrics = Metrics()
        self.metrics.bind(self)
        engine.on_error = lambda op: self.metrics.docker_errors.labels(op).inc()
        self.executions.metrics = self.metrics

    @property
    def sessions(self) -> Watchers:
        """Connected clients (counted by ``/healthz``, metrics and the session cap)."""
        return self.watchers

    async def _finished(self, ex: Execution) -> None:
        await self.ops.execution_finished(ex)

    # --- daemon ---------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` reports."""
        info: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "uptimeSeconds": round(time.monotonic() - self.started_at, 3),
            "sessions": len(self.sessions),
            "runningExecutions": len(self.executions.running()),
        }
        try:
            self.engine.check_available("health check")
            with trio.fail_after(self.config.docker.health_check_timeout_seconds):
                version = await self.engine.version()
            info["engine"] = {
                "reachable": True,
                "version": version.get("Version"),
                "apiVersion": version.get("ApiVersion"),
            }
        except (SandboxdError, trio.TooSlowError) as exc:
            info["status"] = "degraded"
            info["engine"] = {
                "reachable": False,
                "code": getattr(exc, "code", "ENGINE_UNAVAILABLE"),
                "error": getattr(exc, "message", "no answer in time"),
            }
        return info

    async def watch_engine(self) -> None:
        """Ping the engine forever; when it stops answering, end running executions
        (they would otherwise hang) and make requests fail fast until it is back."""
        cfg = self.config.docker
        failures = 0
        while True:
            ok = await self.engine.ping(cfg.health_check_timeout_seconds)
            failures = 0 if ok else failures + 1
            if ok and not self.engine.available:
                self.engine.available = True
                log.warning("the Docker engine answers again")
            elif failures >= 2 and self.engine.available:
                self.engine.available = False
                log.error("the Docker engine is not answering; ending %d running executions",
                          len(self.executions.running()))
                self.executions.abort_all("ENGINE_UNAVAILABLE", "the Docker engine stopped answering")
            await trio.sleep(cfg.health_check_interval_seconds)

    async def stop_orphans(self, interrupted: list[tuple[str, str]]) -> None:
        """Kill what the previous daemon left running in sandboxes it adopted again: nobody
        can follow those commands any more, and they would hold the sandbox's resources."""
        for execution_id, container_id in interrupted:
            if self.sandboxes.get(container_id) is None:
                continue
            try:
                found = await self.engine.signal_execution(
                    container_id, f"{EXEC_MARKER}={execution_id}", "KILL", user=self.config.sandbox.user or None)
            except SandboxdError as exc:
                log.warning("could not stop what is left of %s: %s", execution_id, exc.message)
                continue
            if found:
                log.info("stopped %d leftover processes of interrupted execution %s", found, execution_id)

    async def maintain(self, *, prune_every: int = 30) -> None:
        """Housekeeping, forever: idle sandboxes (every ``sandbox.reap_interval_seconds``),
        and retention of execution records and logs (every ``prune_every`` rounds)."""
        store = self.config.store
        interval = self.config.sandbox.reap_interval_seconds
        for round_ in itertools.count():
            if round_ % prune_every == 0:
                removed = self.records.prune(
                    max_age_seconds=store.retention_seconds, max_total_bytes=store.max_total_bytes)
                if removed:
                    log.info("retention: removed %d old executions", len(removed))
            busy = {ex.container_id for ex in self.executions.running()}
            for sandbox in self.sandboxes.idle(busy):
                log.info("sandbox %s idle for %g s (its TTL); removing it", sandbox.id[:12], sandbox.ttl_seconds)
                try:
                    await self.sandboxes.remove(sandbox)
                except SandboxdError as exc:
                    log.warning("could not remove idle sandbox %s: %s", sandbox.id[:12], exc.message)
            await trio.sleep(interval)

    async def end_detached_terminals(self, *, interval: float = 1.0) -> None:
        """Forever: stop terminal executions nobody has followed for
        ``limits.detached_tty_grace_seconds`` (a closed browser tab leaves its shell
        behind; a reload, or a client that reconnects, comes back well within it)."""
        grace = self.config.limits.detached_tty_grace_seconds
        if grace <= 0:
            return
        alone_since: dict[str, float] = {}
        while True:
            now = time.monotonic()
            alone = [ex for ex in self.executions.running()
                     if ex.request.tty and not any(s.follows(ex) for s in self.sessions)]
            alone_since = {ex.id: alone_since.get(ex.id, now) for ex in alone}
            for ex in alone:
                if now - alone_since[ex.id] >= grace:
                    ex.request_stop(f"no client attached for {grace:g} s")
            await trio.sleep(min(interval, grace / 2))

    async def drain(self, grace: float) -> None:
        """Shutdown: let executions finish for ``grace`` seconds, then stop the rest."""
        with trio.move_on_after(grace):
            for ex in self.executions.running():
                await ex.finished.wait()
        self.executions.stop_all()
        bound = 2 * self.config.limits.kill_grace_seconds + 5
        with trio.move_on_after(bound):
            for ex in self.executions.running():
                await ex.finished.wait()


@asynccontextmanager
async def open_hub(
    config: Config, plugins: Plugins | None = None, *, engine: DockerEngine | None = None
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
    engine = engine or DockerEngine(config.docker)
    try:
        async with trio.open_nursery() as nursery:
            hub = Hub(config, engine, nursery, plugins, records)
            try:
                await hub.sandboxes.load()
            except SandboxdError as exc:
                log.warning("could not list existing sandboxes: %s", exc.message)
            if interrupted:
                nursery.start_soon(hub.stop_orphans, interrupted, name="stop orphans")
            nursery.start_soon(hub.maintain, name="housekeeping")
            nursery.start_soon(hub.watch_engine, name="engine health")
            nursery.start_soon(hub.end_detached_terminals, name="detached terminals")
            try:
                yield hub
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(2 * config.limits.kill_grace_seconds + 10):
                        await hub.drain(0)
                        await hub.sandboxes.remove_ephemeral()
                nursery.cancel_scope.cancel()
    finally:
        await engine.aclose()
        records.close()

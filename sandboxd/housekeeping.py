"""The daemon's housekeeping: tasks that run for as long as the daemon does.

Engine health (a watchdog that ends executions when the engine stops answering, and
``/healthz``), stopping what a previous daemon left running, idle sandboxes past their
TTL, retention of records and logs, terminals nobody follows, and the shutdown drain.
Each is a method of :class:`Housekeeping`, started in the hub's nursery by
:func:`sandboxd.hub.open_hub`.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import trio

from . import __version__
from .config import Config
from .engine import EXEC_MARKER, Engine, EnginePool, members_of
from .errors import SandboxdError
from .executions import ExecutionManager
from .logstore import ExecutionRecords
from .operations import Watchers
from .sandboxes import SandboxRegistry

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(
        self, *, config: Config, engine: Engine, sandboxes: SandboxRegistry, executions: ExecutionManager,
        records: ExecutionRecords, watchers: Watchers,
    ) -> None:
        self.config = config
        self.engine = engine
        self.sandboxes = sandboxes
        self.executions = executions
        self.records = records
        self.watchers = watchers
        self.started_at = time.monotonic()

    async def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` reports; ``status`` is ``ok``, ``degraded`` (some engine
        does not answer) or ``down`` (none does). See :func:`http_status`."""
        info: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "uptimeSeconds": round(time.monotonic() - self.started_at, 3),
            "sessions": len(self.watchers),
            "runningExecutions": len(self.executions.running()),
        }
        members = members_of(self.engine)
        reports: dict[str, dict[str, Any]] = {}

        async def probe(name: str, engine: Any) -> None:
            try:
                engine.check_available("health check")
                with trio.fail_after(self.config.docker.health_check_timeout_seconds):
                    version = await engine.version()
                reports[name] = {"name": name, "reachable": True, "version": version.get("Version"),
                                 "apiVersion": version.get("ApiVersion")}
            except (SandboxdError, trio.TooSlowError) as exc:
                reports[name] = {"name": name, "reachable": False,
                                 "code": getattr(exc, "code", "ENGINE_UNAVAILABLE"),
                                 "error": getattr(exc, "message", "no answer in time")}

        async with trio.open_nursery() as nursery:
            for name, engine in members.items():
                nursery.start_soon(probe, name, engine)
        up = sum(1 for r in reports.values() if r["reachable"])
        if up < len(members):
            info["status"] = "degraded" if up else "down"
        if isinstance(self.engine, EnginePool):
            info["engines"] = [reports[name] for name in members]
        else:
            (report,) = reports.values()
            report.pop("name")
            info["engine"] = report
            if not report["reachable"]:
                info["status"] = "degraded"  # one engine: unchanged from before [[engines]]
        return info

    async def watch_engine(self) -> None:
        """Ping every engine forever; when one stops answering, end the executions
        running on it (they would otherwise hang) and make requests routed to it fail
        fast until it is back. Other engines carry on."""
        async with trio.open_nursery() as nursery:
            for name, engine in members_of(self.engine).items():
                nursery.start_soon(self._watch_one, name, engine, name=f"engine health {name}")

    async def _watch_one(self, name: str, engine: Any) -> None:
        cfg = self.config.docker
        pool = isinstance(self.engine, EnginePool)
        failures = 0
        while True:
            ok = await engine.ping(cfg.health_check_timeout_seconds)
            failures = 0 if ok else failures + 1
            if ok and not engine.available:
                engine.available = True
                log.warning("the Docker engine %s answers again", name)
            elif failures >= 2 and engine.available:
                engine.available = False
                doomed = [ex for ex in self.executions.running()
                          if not pool or self._engine_of(ex.container_id) == name]
                log.error("the Docker engine %s is not answering; ending %d running executions", name, len(doomed))
                for ex in doomed:
                    ex.abort("ENGINE_UNAVAILABLE", f"the Docker engine {name} stopped answering"
                             if pool else "the Docker engine stopped answering")
            await trio.sleep(cfg.health_check_interval_seconds)

    def _engine_of(self, container_id: str) -> str | None:
        sandbox = self.sandboxes.get(container_id)
        if sandbox is not None and sandbox.engine:
            return sandbox.engine
        return self.engine.engine_of(container_id) if isinstance(self.engine, EnginePool) else None

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
                     if ex.request.tty and not any(s.follows(ex) for s in self.watchers)]
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



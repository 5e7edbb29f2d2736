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
from .engine import EXEC_MARKER, Engine
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
        """What ``GET /healthz`` reports."""
        info: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "uptimeSeconds": round(time.monotonic() - self.started_at, 3),
            "sessions": len(self.watchers),
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


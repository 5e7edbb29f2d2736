"""The daemon-wide state every session shares: sandboxes, executions, sessions.

Sessions come and go; the hub and the executions it owns stay. Its nursery (opened
by :func:`open_hub`) is the one place execution tasks live.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator

import trio

from . import __version__
from .config import Config
from .engine import DockerEngine
from .errors import SandboxdError
from .executions import Execution, ExecutionManager
from .sandboxes import SandboxRegistry

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, config: Config, engine: DockerEngine, nursery: trio.Nursery) -> None:
        self.config = config
        self.engine = engine
        self.sandboxes = SandboxRegistry(engine, config.sandbox)
        self.executions = ExecutionManager(engine, config.limits, nursery, on_finished=self._finished)
        self.sessions: set[Session] = set()
        self.started_at = time.monotonic()

    def watchers_of(self, container_id: str) -> list[Session]:
        return [s for s in self.sessions if container_id in s.joined]

    async def _finished(self, ex: Execution) -> None:
        if ex.request.ephemeral:
            try:
                sandbox = await self.sandboxes.resolve(ex.container_id)
                await self.sandboxes.remove(sandbox)
            except SandboxdError as exc:
                log.warning("could not remove one-off sandbox %s: %s", ex.container_id[:12], exc.message)

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
            with trio.fail_after(min(5.0, self.config.docker.call_timeout_seconds)):
                version = await self.engine.version()
            info["engine"] = {
                "reachable": True,
                "version": version.get("Version"),
                "apiVersion": version.get("ApiVersion"),
            }
        except (SandboxdError, trio.TooSlowError) as exc:
            info["status"] = "degraded"
            info["engine"] = {"reachable": False, "error": getattr(exc, "message", "timeout")}
        return info

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
async def open_hub(config: Config) -> AsyncIterator[Hub]:
    """Connect to the engine, adopt existing sandboxes, and own the executions' nursery."""
    engine = DockerEngine(config.docker)
    try:
        async with trio.open_nursery() as nursery:
            hub = Hub(config, engine, nursery)
            try:
                await hub.sandboxes.load()
            except SandboxdError as exc:
                log.warning("could not list existing sandboxes: %s", exc.message)
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

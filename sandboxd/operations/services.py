"""The daemon's parts as a front end sees them.

A front end is given one object with this shape (the hub implements it): settings,
the plugins (to authenticate and screen requests), the metrics it serves, every use
case (:attr:`ops`), the connected clients, health, and the shutdown drain. Typing
front ends against this protocol keeps them from importing the wiring above them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..metrics import Metrics
    from ..plugins import Plugins
    from . import Operations
    from .watchers import Watchers


class Services(Protocol):
    config: Config
    plugins: Plugins
    metrics: Metrics
    #: Every use case.
    ops: Operations

    @property
    def sessions(self) -> Watchers:
        """Connected clients of every front end."""

    async def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` reports."""

    async def drain(self, grace: float) -> None:
        """Shutdown: let executions finish for ``grace`` seconds, then stop the rest."""

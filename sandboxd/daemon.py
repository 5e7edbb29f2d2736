"""Process concerns of ``sandboxd serve``: logging, signals, and the top nursery."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import trio

from .config import Config
from .hub import open_hub
from .plugins import Plugins
from .server import Server

log = logging.getLogger("sandboxd")


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # trio-websocket logs every frame at DEBUG; keep it quiet unless asked.
    logging.getLogger("trio-websocket").setLevel(logging.WARNING)


async def serve_daemon(
    config: Config, plugins: Plugins | None = None, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the daemon until SIGINT or SIGTERM, then shut down gracefully.

    A second signal during shutdown cancels everything at once.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_hub(config, plugins) as hub:
            server = Server(hub)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(server.serve)
                task_status.started(port)
                async for signum in signals:
                    log.info("received %s; shutting down", signal.Signals(signum).name)
                    nursery.start_soon(_second_signal, signals, nursery.cancel_scope)
                    await server.aclose()
                    nursery.cancel_scope.cancel()
                    break
    log.info("stopped")


async def _second_signal(signals: Any, scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.warning("received %s again; stopping now", signal.Signals(signum).name)
        scope.cancel()
        return


def run(config: Config, plugins: Plugins | None = None) -> None:
    trio.run(serve_daemon, config, plugins)

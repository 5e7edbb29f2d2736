"""Process concerns of ``sandboxd serve``: logging, signals, and the top nursery."""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any

import trio

from .config import Config
from .hub import open_hub
from .lock import daemon_locks
from .plugins import Plugins
from .server import Server

log = logging.getLogger("sandboxd")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # trio-websocket logs every frame at DEBUG; keep it quiet unless asked.
    logging.getLogger("trio-websocket").setLevel(logging.WARNING)


async def serve_daemon(
    config: Config, plugins: Plugins | None = None, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the daemon until SIGINT or SIGTERM, then shut down gracefully; SIGHUP makes
    plugins re-read their files (token_auth's ``tokens_file``).

    The port is bound before the hub recovers anything from the store, so a daemon that
    cannot listen changes nothing. A second signal during shutdown cancels everything at once.

    Raises:
        OSError: the port cannot be bound (in use, not permitted).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        listeners = await trio.open_tcp_listeners(config.server.port, host=config.server.host)
        async with open_hub(config, plugins) as hub:
            server = Server(hub)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(server.serve, listeners)
                task_status.started(port)
                async for signum in signals:
                    if signum == signal.SIGHUP:  # reload plugins' files (revoked tokens)
                        log.info("received SIGHUP; reloading plugins")
                        server.credentials.reload_soon()
                        continue
                    log.info("received %s; shutting down", signal.Signals(signum).name)
                    nursery.start_soon(_second_signal, signals, nursery.cancel_scope)
                    await server.aclose()
                    nursery.cancel_scope.cancel()
                    break
    log.info("stopped")


async def _second_signal(signals: Any, scope: trio.CancelScope) -> None:
    async for signum in signals:
        if signum == signal.SIGHUP:
            continue
        log.warning("received %s again; stopping now", signal.Signals(signum).name)
        scope.cancel()
        return


def run(config: Config, plugins: Plugins | None = None) -> None:
    """Take the store and instance locks, then serve until stopped.

    Raises:
        LockHeld: another daemon uses the same store or instance (see :mod:`sandboxd.lock`).
        OSError: a lock file cannot be created, or the port cannot be bound.
    """
    with daemon_locks(config):
        trio.run(serve_daemon, config, plugins)

"""``sandboxd serve``: run the daemon."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer

from ..config import ConfigError, find_config
from ._errors import ExitCode
from ._options import ConfigOpt
from ._output import out
from ._run import fail


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(str, Enum):
    text = "text"
    json = "json"


def serve(
    config: ConfigOpt = None,
    host: Optional[str] = typer.Option(None, help="Listen address (config: server.host)."),
    port: Optional[int] = typer.Option(
        None, min=0, max=65535, metavar="PORT", help="Listen port, 0 for any free one (config: server.port)."),
    log_level: LogLevel = typer.Option(LogLevel.info, help="How much to log."),
    log_format: LogFormat = typer.Option(LogFormat.text, help="text, or json for one JSON object per line."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback address with no authentication plugin enabled."
    ),
) -> None:
    """Run the daemon in the foreground; logs go to stderr, SIGINT/SIGTERM stop it.

    One daemon per store: a second one with the same store.dir or docker.instance
    exits at once, naming the pid of the one running.
    """
    from ..daemon import run, setup_logging
    from ..lock import LockHeld
    from ..plugins import load_plugins

    try:
        cfg = find_config(config)
    except ConfigError as exc:
        raise fail(exc) from None
    if host is not None:
        cfg = cfg.replace("server", host=host)
    if port is not None:
        cfg = cfg.replace("server", port=port)
    try:
        plugins = load_plugins(cfg)
    except ConfigError as exc:
        raise fail(exc) from None
    if not plugins.auth_required and not _is_loopback(cfg.server.host) and not insecure:
        out.error(
            f"refusing to listen on {cfg.server.host} with no authentication plugin enabled: anyone who "
            "can reach it could run code. Enable token_auth (docs/plugins.md), or pass --insecure."
        )
        raise typer.Exit(ExitCode.USAGE)
    setup_logging(log_level.value, log_format.value)
    try:
        run(cfg, plugins)
    except LockHeld as exc:
        out.error(str(exc))
        raise typer.Exit(ExitCode.ERROR) from None
    except OSError as exc:
        if exc.filename:
            out.error(f"{exc.filename}: {exc.strerror}")
            raise typer.Exit(ExitCode.ERROR) from None
        out.error(f"cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror or exc}")
        raise typer.Exit(ExitCode.ERROR) from None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

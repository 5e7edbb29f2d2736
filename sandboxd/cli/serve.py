"""``sandboxd serve``: run the daemon."""

from __future__ import annotations

from typing import Optional

import typer

from ..config import ConfigError, find_config
from ._errors import ExitCode
from ._options import ConfigOpt
from ._output import out


def serve(
    config: ConfigOpt = None,
    host: Optional[str] = typer.Option(None, help="Listen address (config: server.host)."),
    port: Optional[int] = typer.Option(None, help="Listen port (config: server.port)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the daemon in the foreground; logs go to stderr, SIGINT/SIGTERM stop it."""
    from ..daemon import run, setup_logging

    try:
        cfg = find_config(config)
    except ConfigError as exc:
        out.error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None
    if host is not None:
        cfg = cfg.replace("server", host=host)
    if port is not None:
        cfg = cfg.replace("server", port=port)
    setup_logging(log_level)
    try:
        run(cfg)
    except OSError as exc:
        out.error(f"cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror or exc}")
        raise typer.Exit(ExitCode.ERROR) from None

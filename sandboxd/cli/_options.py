"""Options shared by several commands."""

from __future__ import annotations

from typing import Optional

import typer
from typing_extensions import Annotated

from ..sdk._env import DEFAULT_URL

UrlOpt = Annotated[
    Optional[str],
    typer.Option("--url", envvar="SANDBOXD_URL", help=f"Daemon WebSocket URL [default: {DEFAULT_URL}]"),
]
ConfigOpt = Annotated[
    Optional[str],
    typer.Option("--config", "-c", help="Config file (else $SANDBOXD_CONFIG, ./sandboxd.toml, ~/.config/sandboxd/config.toml, /etc/sandboxd/config.toml)."),
]

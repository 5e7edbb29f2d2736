"""``sandboxd config``: see the configuration the daemon would use."""

from __future__ import annotations

import dataclasses
import json

import typer

from ..config import ConfigError, find_config
from ._errors import ExitCode
from ._options import ConfigOpt
from ._output import out

app = typer.Typer(no_args_is_help=True, help="Inspect the daemon's configuration.")


@app.command("show")
def show(config: ConfigOpt = None) -> None:
    """Print the effective configuration (defaults filled in) as JSON."""
    try:
        cfg = find_config(config)
    except ConfigError as exc:
        out.error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None
    typer.echo(json.dumps(dataclasses.asdict(cfg), indent=2))

"""``sandboxd plugins``: which plugins are installed, which are on, what they hook."""

from __future__ import annotations

import dataclasses

import typer

from ..config import ConfigError, find_config
from ..plugins import load_plugins
from ._errors import ExitCode
from ._options import ConfigOpt
from ._output import out


def plugins(config: ConfigOpt = None) -> None:
    """List installed plugins: name, enabled, where each came from, and its hooks."""
    try:
        loaded = load_plugins(find_config(config))
    except ConfigError as exc:
        out.error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None
    rows = [
        {"name": p.name, "enabled": "yes" if p.enabled else "no", "source": p.source,
         "hooks": ", ".join(h.removeprefix("sandboxd_") for h in p.hooks)}
        for p in loaded.infos
    ]
    if out.json_mode:
        out.table([dataclasses.asdict(p) for p in loaded.infos], [])
    else:
        out.table(rows, ["name", "enabled", "source", "hooks"])

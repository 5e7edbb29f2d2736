"""``sandboxd plugins``: which plugins are installed, which are on, what they hook."""

from __future__ import annotations

import dataclasses

from ..config import ConfigError, find_config
from ..plugins import load_plugins
from ._options import ConfigOpt
from ._output import out
from ._run import fail


def plugins(config: ConfigOpt = None) -> None:
    """List installed plugins: name, enabled, where each came from, and its hooks."""
    try:
        loaded = load_plugins(find_config(config))
    except ConfigError as exc:
        raise fail(exc) from None
    rows = [
        {"name": p.name, "enabled": "yes" if p.enabled else "no", "source": p.source,
         "hooks": ", ".join(h.removeprefix("sandboxd_") for h in p.hooks)}
        for p in loaded.infos
    ]
    if out.json_mode:
        out.table([dataclasses.asdict(p) for p in loaded.infos], [])
    else:
        out.table(rows, ["name", "enabled", "source", "hooks"])

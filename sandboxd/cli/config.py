"""``sandboxd config``: see the configuration the daemon would use."""

from __future__ import annotations

import dataclasses
import json

import typer

from ..config import ConfigError, find_config
from ._options import ConfigOpt
from ._run import fail

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect the daemon's configuration.")


@app.command("show")
def show(config: ConfigOpt = None) -> None:
    """Print the effective configuration (defaults filled in) as JSON.

    The file is checked exactly as `sandboxd serve` checks it, plugins and their
    settings included: what this accepts, the daemon accepts.
    """
    from ..plugins import load_plugins

    try:
        cfg = find_config(config)
        load_plugins(cfg)
    except ConfigError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(_redact(dataclasses.asdict(cfg)), indent=2))


_SECRET_WORDS = ("token", "secret", "password", "sha256", "key")


def _redact(value: object, key: str = "") -> object:
    """Hide anything that looks like a credential (token digests included)."""
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, key) for v in value]
    if isinstance(value, str) and any(w in key.lower() for w in _SECRET_WORDS):
        return "<redacted>"
    return value

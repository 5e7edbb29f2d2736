"""Options shared by several commands.

``--url``, ``--token`` and ``--json`` work before the command (``sandboxd --json ps``)
and after it (``sandboxd ps --json``); :func:`client_command` adds them to a command.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable, Optional, TypeVar

import typer
from typing_extensions import Annotated

from ._output import out

UrlOpt = Annotated[
    Optional[str],
    typer.Option("--url", metavar="URL", show_default=False,
                 help="The daemon: ws://HOST:PORT or http://HOST:PORT [env: SANDBOXD_URL; "
                      "default: ws://127.0.0.1:8765/sandbox/ws]."),
]
TokenOpt = Annotated[
    Optional[str],
    typer.Option("--token", metavar="TOKEN", show_default=False,
                 help="Token for a daemon with token_auth [env: SANDBOXD_TOKEN]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", show_default=False, help="Print results as JSON.")]
ConfigOpt = Annotated[
    Optional[str],
    typer.Option("--config", "-c", metavar="FILE", show_default=False,
                 help="Config file (else $SANDBOXD_CONFIG, ./sandboxd.toml, "
                      "~/.config/sandboxd/config.toml, /etc/sandboxd/config.toml)."),
]


def use_daemon(url: str | None, token: str | None) -> None:
    """Connect to ``url`` with ``token`` from now on (each None: keep what is set).

    They are put in the environment, where the client looks (as for $SANDBOXD_URL
    and $SANDBOXD_TOKEN), so every command sees them, however it connects.
    """
    if url:
        os.environ["SANDBOXD_URL"] = url
    if token:
        os.environ["SANDBOXD_TOKEN"] = token


F = TypeVar("F", bound=Callable[..., Any])

_SHARED = [
    inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=UrlOpt),
    inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOpt),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
]


def client_command(fn: F) -> F:
    """Give a command that talks to the daemon the ``--url``, ``--token`` and ``--json``
    options (given here, they win over the same options before the command)."""
    signature = inspect.signature(fn, eval_str=True)

    @functools.wraps(fn)
    def command(*args: Any, url: str | None = None, token: str | None = None, json_output: bool = False,
                **kwargs: Any) -> Any:
        use_daemon(url, token)
        if json_output:
            out.json_mode = True
        return fn(*args, **kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *_SHARED])
    return command  # type: ignore[return-value]


def _plain_argument_help() -> None:
    """Show arguments as docker does: ``EXEC_ID`` and ``[SANDBOX]``, not typer's
    ``{EXEC_ID}`` usage braces and ``<str>`` type labels (typer has no setting for it)."""
    from typer.core import TyperArgument

    def usage_name(self: TyperArgument) -> str:
        name = self.display_name_raw
        if not self.required:
            name = f"[{name}]"
        return name if self.nargs == 1 or self.metavar else name + "..."

    TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign,assignment]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_plain_argument_help()

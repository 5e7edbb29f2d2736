"""The ``sandboxd`` command: one module per noun; errors map to exit codes in ``_run``."""

from __future__ import annotations

import os
from typing import Optional, TypeVar

import typer

from .. import __version__
from ._options import JsonOpt, TokenOpt, UrlOpt, use_daemon
from ._output import out
from ._run import run_async as run_async

HELP = """Run untrusted code in Docker sandboxes and watch it run, live.

\b
Environment:
  SANDBOXD_URL     the daemon (default ws://127.0.0.1:8765/sandbox/ws; http://HOST:PORT works)
  SANDBOXD_TOKEN   token for a daemon with token_auth
  SANDBOXD_CONFIG  config file for serve, config show and plugins
"""

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=HELP, rich_markup_mode=None,
    pretty_exceptions_enable=os.environ.get("SANDBOXD_DEBUG") == "1",
)

T = TypeVar("T")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sandboxd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    json_output: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    out.json_mode = json_output
    use_daemon(url, token)


from . import config as _config  # noqa: E402
from . import control as _control  # noqa: E402
from . import cp as _cp  # noqa: E402
from . import engines as _engines  # noqa: E402
from . import exec as _exec  # noqa: E402
from . import logs as _logs  # noqa: E402
from . import plugins as _plugins  # noqa: E402
from . import sandbox as _sandbox  # noqa: E402
from . import serve as _serve  # noqa: E402
from . import shell as _shell  # noqa: E402
from . import token as _token  # noqa: E402

app.add_typer(_sandbox.app, name="sandbox")
app.add_typer(_config.app, name="config")
app.add_typer(_token.app, name="token")
app.command("plugins")(_plugins.plugins)
app.command("logs")(_logs.logs)
app.command("cp")(_cp.cp)
app.command("shell")(_shell.shell)
app.command("ps")(_logs.ps)
app.command("engines")(_engines.engines)
app.command("images")(_engines.images)
app.command("kill")(_control.kill)
app.command("wait")(_control.wait)
app.command("serve")(_serve.serve)
app.command(
    "exec",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False},
)(_exec.exec_command)


def main() -> None:
    app()

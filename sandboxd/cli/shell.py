"""``sandboxd shell``: an interactive shell in a sandbox (``exec -it`` with a shell)."""

from __future__ import annotations

import typer

from ._options import UrlOpt

#: bash when the image has it, else sh.
SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]


def shell(sandbox: str = typer.Argument(..., help="Sandbox id."), url: UrlOpt = None) -> None:
    """Open an interactive shell in SANDBOX, like `docker exec -it SANDBOX sh`."""
    from .exec import exec_command

    exec_command(command=SHELL, sandbox=sandbox, image=None, follow=True, interactive=True, tty_=True,
                 env=[], workdir=None, timeout=None, url=url)

"""``sandboxd shell``: an interactive shell in a sandbox (``exec -it`` with a shell)."""

from __future__ import annotations

import typer

from ._options import client_command

#: bash when the image has it, else sh.
SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]


@client_command
def shell(sandbox: str = typer.Argument(..., metavar="SANDBOX", help="Sandbox id.")) -> None:
    """Open an interactive shell in SANDBOX, like `docker exec -it SANDBOX sh`."""
    from .exec import exec_command

    exec_command(args=[sandbox, *SHELL], sandbox=None, image=None, follow=True, interactive=True, tty_=True,
                 env=[], workdir=None, timeout=None, user=None)

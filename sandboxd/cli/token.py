"""``sandboxd token``: make tokens for the token_auth plugin."""

from __future__ import annotations

import hashlib
import secrets

import typer

from ._output import out

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Make tokens for the token_auth plugin.")


@app.command("new")
def new(
    user: str = typer.Option(..., help="The user this token authenticates as."),
    role: list[str] = typer.Option([], "--role", help="A role of the user (repeatable)."),
) -> None:
    """Print a new random token, and the config line that accepts it (only its hash)."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    roles = ", ".join(f'"{r}"' for r in role)
    line = f'{{ user = "{user}", roles = [{roles}], sha256 = "{digest}" }}'
    out.result(f"token: {token}\nconfig: {line}", token=token, sha256=digest, user=user, roles=role)

"""Running a command's body, and the one table from errors to exit codes.

Every subcommand runs its async body through :func:`run_async`; what can go wrong is
mapped here, once: an error type in :data:`ERRORS` becomes its one-line message on
stderr and its exit code (:func:`fail`). (An execution's own outcome becomes the exit
code in ``exec._exit_status``, docker's manners.)
"""

from __future__ import annotations

from typing import Any, Callable

import trio
import typer

from ..config import ConfigError
from ..errors import SandboxdError
from ..sdk._errors import collapse_groups
from ._errors import ExitCode
from ._output import out

#: Error type -> its exit code and the line printed (None: nothing); the first match wins.
ERRORS: tuple[tuple[type[BaseException], Callable[[Any], tuple[int, str | None]]], ...] = (
    (SandboxdError, lambda exc: (exc.exit_code, exc.message)),
    (ConfigError, lambda exc: (ExitCode.USAGE, str(exc))),
    (KeyboardInterrupt, lambda exc: (ExitCode.INTERRUPTED, None)),
)

_HANDLED = tuple(kind for kind, _ in ERRORS)


def fail(exc: BaseException) -> typer.Exit:
    """Print what :data:`ERRORS` says about ``exc``; return the ``typer.Exit`` to raise."""
    code, message = next((describe(exc) for kind, describe in ERRORS if isinstance(exc, kind)),
                         (ExitCode.ERROR, str(exc)))
    if message:
        out.error(message)
    return typer.Exit(code)


def run_async(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` under trio; an error in :data:`ERRORS` ends the command as it says."""
    try:
        with collapse_groups():
            return trio.run(fn, *args)
    except _HANDLED as exc:
        raise fail(exc) from None

"""Errors the SDK adds to :mod:`sandboxd.errors` (which has one class per daemon code).

An ``error`` the daemon sends is raised as the class for its code
(:meth:`sandboxd.errors.SandboxdError.from_code`): catch ``NotFound``, ``LimitExceeded``,
``CommandRejected``... Problems on the way to the daemon are these::

    SandboxdError
    ├── DockerError
    │   └── EngineUnavailable
    │       └── DaemonUnavailable     DAEMON_UNAVAILABLE   cannot reach the daemon, or lost it
    │                                                      for longer than reconnect_timeout
    └── AuthenticationFailed          AUTHENTICATION_FAILED  the handshake got 401 or 403
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import EngineUnavailable, SandboxdError


class DaemonUnavailable(EngineUnavailable):
    """The daemon could not be reached, or the connection dropped and could not be resumed."""

    code = "DAEMON_UNAVAILABLE"


class AuthenticationFailed(SandboxdError):
    """The daemon refused the WebSocket handshake (HTTP 401 or 403): wrong or missing token,
    or an Origin it does not allow. Not retried."""

    code = "AUTHENTICATION_FAILED"
    #: The CLI exits 125 for any failure to get through to the daemon.
    exit_code = 125

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def collapse_groups() -> Iterator[None]:
    """Let a sandboxd error raised inside trio nurseries out as itself, not wrapped in an
    ExceptionGroup, so callers can catch it by type (when it is the only real error)."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        errors = [e for e in leaves if isinstance(e, SandboxdError)]
        if errors and all(isinstance(e, SandboxdError) or type(e).__name__ == "Cancelled" for e in leaves):
            raise errors[0] from None
        raise


def _leaves(group: BaseExceptionGroup) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc

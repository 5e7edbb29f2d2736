"""The one place REST errors become HTTP: error type → status, and the error body.

Codes are the WebSocket protocol's stable codes (:mod:`sandboxd.errors`); only the
status is REST's own. Lookup walks the error's class hierarchy, most specific first, so
a subclass with no row of its own answers like its parent::

    BodyTimeout (BAD_REQUEST)        408   a request body too slow
    BadRequest, UnknownEvent         400
    Unauthenticated                  401
    Forbidden, CommandRejected       403
    NotFound                         404
    MethodNotAllowed (BAD_REQUEST)   405
    LengthRequired (BAD_REQUEST)     411   a file upload without Content-Length
    SandboxStopped                   409   the sandbox is not running
    Conflict (BAD_REQUEST)           409   the execution already finished, its stdin is closed
    BodyTooLarge (LIMIT_EXCEEDED)    413
    LimitExceeded                    429   a configured limit (concurrency, counts)
    QuotaExceeded                    507   the sandbox's disk is full
    PluginError, InternalError       500
    DockerError                      502   the engine refused or failed a call
    EngineUnavailable, Unavailable   503
"""

from __future__ import annotations

import math

import msgspec

from ..errors import (
    AuthBackoff,
    BadRequest,
    CommandRejected,
    Conflict,
    DockerError,
    EngineUnavailable,
    Forbidden,
    InternalError,
    LimitExceeded,
    NotFound,
    PluginError,
    QuotaExceeded,
    SandboxdError,
    SandboxStopped,
    Unauthenticated,
)
from .httpio import BodyTimeout, BodyTooLarge
from .types import ErrorBody, ErrorDetail


class MethodNotAllowed(BadRequest):
    """The path exists, the method does not (HTTP 405, with ``Allow``)."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(f"method not allowed here; allowed: {', '.join(allowed)}")
        self.allowed = allowed


class LengthRequired(BadRequest):
    """A streamed upload without ``Content-Length`` (HTTP 411)."""


class Unavailable(EngineUnavailable):
    """The daemon cannot take the request now (shutting down)."""


HTTP_STATUS: dict[type[SandboxdError], int] = {
    BodyTimeout: 408,
    MethodNotAllowed: 405,
    LengthRequired: 411,
    Conflict: 409,
    BadRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    CommandRejected: 403,
    NotFound: 404,
    SandboxStopped: 409,
    BodyTooLarge: 413,
    LimitExceeded: 429,
    QuotaExceeded: 507,
    PluginError: 500,
    InternalError: 500,
    Unavailable: 503,
    EngineUnavailable: 503,
    DockerError: 502,
    SandboxdError: 500,
}

_encoder = msgspec.json.Encoder()


def status_of(exc: SandboxdError) -> int:
    for klass in type(exc).__mro__:
        if klass in HTTP_STATUS:
            return HTTP_STATUS[klass]  # type: ignore[index]
    return 500


def error_response(exc: SandboxdError) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, JSON body and extra headers for ``exc``."""
    headers: list[tuple[str, str]] = []
    if isinstance(exc, Unauthenticated):
        headers.append(("WWW-Authenticate", 'Bearer realm="sandboxd"'))
    elif isinstance(exc, AuthBackoff):
        headers.append(("Retry-After", str(math.ceil(exc.retry_after))))
    elif isinstance(exc, MethodNotAllowed):
        headers.append(("Allow", ", ".join(exc.allowed)))
    body = _encoder.encode(ErrorBody(ErrorDetail(code=exc.code, message=exc.message)))
    return status_of(exc), body, headers

"""CORS for the REST API: configured origins may call it from a browser; others get nothing.

A page from an allowed origin gets ``Access-Control-Allow-Origin`` echoing its origin
(with ``Access-Control-Allow-Credentials: true``) on every answer, errors included, and
preflight ``OPTIONS`` requests are answered. The allowed origins are exactly the ones
the HTTP layer's Origin check lets in (``server.allowed_origins``, and the
``origin_check`` plugin's list): an origin refused at the door must not be invited in
by CORS, and one let in should work. The daemon's own pages need no CORS.
"""

from __future__ import annotations

from typing import Any

from ..http import OriginPolicy, Request

_ALLOWED_REQUEST_HEADERS = {"authorization", "content-type"}
#: Seconds a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = 600


def policy(config: Any) -> OriginPolicy:
    return OriginPolicy.from_config(config, ())


def headers_for(request: Request, policy: OriginPolicy) -> list[tuple[str, str]]:
    """CORS headers for any answer to ``request`` (none unless its origin is listed)."""
    origin = request.headers.get("origin")
    if origin is None or not policy.lists(origin):
        return []
    return [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "Content-Length, Content-Type, WWW-Authenticate"),
        ("Vary", "Origin"),
    ]


def preflight(request: Request, methods: list[str]) -> list[tuple[str, str]]:
    """Extra headers for a preflight answer (added only next to :func:`headers_for`'s)."""
    asked = {h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")}
    return [
        ("Access-Control-Allow-Methods", ", ".join([*methods, "OPTIONS"])),
        ("Access-Control-Allow-Headers", ", ".join(sorted((asked & _ALLOWED_REQUEST_HEADERS) or {"content-type"}))),
        ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE)),
    ]

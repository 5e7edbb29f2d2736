"""CORS for the REST API: configured origins may call it from a browser; others get nothing.

A page from an allowed origin gets ``Access-Control-Allow-Origin`` echoing its origin
(with ``Access-Control-Allow-Credentials: true``) on every answer, errors included, and
preflight ``OPTIONS`` requests are answered. The allowed origins are the ones the
Origin check allows (``[plugins.origin_check] allowed_origins``): an origin the daemon
refuses at the door must not be invited in by CORS, and one it lets in should work.
"""

from __future__ import annotations

from typing import Any

from ..http import Request

_ALLOWED_REQUEST_HEADERS = {"authorization", "content-type"}
#: Seconds a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = 600


def allowed_origins(config: Any) -> frozenset[str]:
    settings = config.plugins.settings.get("origin_check", {})
    origins = settings.get("allowed_origins", []) if isinstance(settings, dict) else []
    return frozenset(o.rstrip("/").lower() for o in origins if isinstance(o, str))


def headers_for(request: Request, origins: frozenset[str]) -> list[tuple[str, str]]:
    """CORS headers for any answer to ``request`` (none unless its origin is allowed)."""
    origin = request.headers.get("origin")
    if origin is None or origin.rstrip("/").lower() not in origins:
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

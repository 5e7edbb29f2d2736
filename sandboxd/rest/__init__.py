"""The REST API, ``/api/sandbox/...``: a front end over the same operations as the
WebSocket protocol (docs/protocol.md, "REST API").

Modules, one purpose each: :mod:`.httpio` (one HTTP exchange: capped, timed bodies;
whole or streamed responses), :mod:`.router` (the routing table), :mod:`.app`
(dispatch), :mod:`.errors` (the one error → HTTP status map), :mod:`.types` (every
body as a msgspec type), :mod:`.openapi` (the document, derived from both), :mod:`.cors`,
and the handlers by resource: :mod:`.containers`, :mod:`.executions`, :mod:`.files`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import containers, executions, files, openapi
from .app import Call, RestAPI
from .router import Route

if TYPE_CHECKING:
    from ..operations import Operations

PREFIX = "/api/"


def routes() -> list[Route]:
    """Every endpoint, the OpenAPI document's included."""
    table = [*containers.ROUTES, *executions.ROUTES, *files.ROUTES]
    document = openapi.build([*table, _openapi_route(None)])
    return [*table, _openapi_route(document)]


def _openapi_route(document: dict[str, Any] | None) -> Route:
    async def get_openapi(call: Call) -> dict[str, Any]:
        assert document is not None
        return document

    return Route("GET", "/api/openapi.json", get_openapi, "This OpenAPI 3.1 document",
                 responses={200: "application/json"}, public=True)


def open_api(ops: Operations, closing: Callable[[], bool], gate: Any = None) -> RestAPI:
    """The REST front end; ``gate`` (the server's :class:`~sandboxd.ratelimit.ClientGate`)
    adds the failed-authentication backoff."""
    return RestAPI(ops, routes(), closing=closing, gate=gate)


__all__ = ["PREFIX", "RestAPI", "open_api", "routes"]

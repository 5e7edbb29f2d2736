"""Dispatch of one REST request: CORS, routing, authentication, body, handler, errors.

The server hands every ``/api/`` request here after its own checks (Origin/Host,
``sandboxd_check_request``). Handlers get a :class:`Call` and return a response value
(a msgspec Struct, sent as JSON with the route's success status, or a :class:`Reply`
for another status), or ``None`` when they streamed the response themselves. Every
error, wherever raised, is answered in one place, :func:`sandboxd.rest.errors.error_response`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from ..errors import InternalError, SandboxdError, Unauthenticated
from ..http import Request
from ..ratelimit import ClientGate
from ..plugin_types import ANONYMOUS, Principal
from . import cors
from .errors import Unavailable, error_response
from .httpio import ClientGone, Exchange
from .router import Route, Router
from .types import decode, encode

if TYPE_CHECKING:
    from ..operations import Operations

log = logging.getLogger(__name__)

JSON = "application/json"


@dataclass
class Reply:
    """A response value with a status other than the route's usual one."""

    status: int
    value: Any


@dataclass
class Call:
    """One request, as a handler sees it."""

    ops: Operations
    exchange: Exchange
    principal: Principal
    params: dict[str, str]
    body: Any = None
    #: CORS headers for this request's origin (empty for most clients).
    headers: list[tuple[str, str]] = field(default_factory=list)

    def query(self, name: str) -> str | None:
        values = self.exchange.request.query.get(name)
        return values[0] if values else None

    @property
    def config(self) -> Any:
        return self.ops.config


class RestAPI:
    """The REST front end: one instance per daemon."""

    def __init__(self, ops: Operations, routes: list[Route], *, closing: Any = lambda: False,
                 gate: Any = None) -> None:
        self.ops = ops
        #: Authenticates with the failed-authentication backoff (the server's ClientGate).
        self.gate = gate if gate is not None else ClientGate(ops.plugins, ops.config.server)
        self.router = Router(routes)
        self._origins = cors.policy(ops.config)
        #: Callable telling whether the daemon is shutting down.
        self._closing = closing

    async def handle(self, stream: trio.abc.Stream, request: Request) -> None:
        """Answer one request on ``stream`` (the server closes it afterwards)."""
        config = self.ops.config
        exchange = Exchange(stream, request, body_timeout=config.api.body_timeout_seconds)
        headers = cors.headers_for(request, self._origins)
        try:
            if request.method == "OPTIONS" and (methods := self.router.methods_for(request.path)):
                extra = cors.preflight(request, methods) if headers else []
                await exchange.respond(204, b"", [*headers, *extra])
                return
            try:
                await self._dispatch(exchange, request, headers)
            except SandboxdError as exc:
                await self._fail(exchange, exc, headers)
            except (ClientGone, trio.Cancelled):
                raise
            except Exception:
                log.exception("REST %s %s: internal error", request.method, request.path)
                await self._fail(exchange, InternalError("internal error; see the daemon's log"), headers)
        except ClientGone:
            log.debug("REST %s %s: the client went away", request.method, request.path)
            return
        await exchange.discard_body()

    async def _dispatch(self, exchange: Exchange, request: Request, headers: list[tuple[str, str]]) -> None:
        route, params = self.router.match(request.method, request.path)
        if self._closing():
            raise Unavailable("the daemon is shutting down")
        principal = ANONYMOUS if route.public else await self._authenticate(request)
        call = Call(self.ops, exchange, principal, params, headers=headers)
        if route.body is not None:
            call.body = decode(await exchange.read_body(self.ops.config.server.max_message_bytes), route.body)
        result = await route.handler(call)
        if result is None:
            return  # streamed by the handler
        status = next((s for s in route.responses if 200 <= s < 300), 200)
        if isinstance(result, Reply):
            status, result = result.status, result.value
        await exchange.respond(status, encode(result), [("Content-Type", JSON), *headers])

    async def _authenticate(self, request: Request) -> Principal:
        principal, _ = await self.gate.authenticate(request.for_plugins())  # AuthBackoff: 429
        if principal is None:
            log.info("refused unauthenticated REST request for %s from %s", request.path, request.peer)
            raise Unauthenticated("authentication required: send Authorization: Bearer TOKEN (or ?token=)")
        return principal

    async def _fail(self, exchange: Exchange, exc: SandboxdError, headers: list[tuple[str, str]]) -> None:
        if exchange.responded:
            # Mid-stream: the status line is gone; cutting the connection short is the
            # only way left to say the body is incomplete.
            log.warning("REST %s %s failed mid-response: %s", exchange.request.method, exchange.request.path,
                        exc.message)
            return
        status, body, extra = error_response(exc)
        await exchange.respond(status, body, [("Content-Type", JSON), *extra, *headers])

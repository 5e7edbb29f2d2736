"""The routing table: method + path pattern → handler, with its request and response types.

A route says everything the OpenAPI document needs (:mod:`sandboxd.rest.openapi`) and
everything dispatch needs (:mod:`sandboxd.rest.app`); there is no other list of
endpoints. Patterns use ``{name}`` for one path segment and ``{name:path}`` for the
rest of the path (a file path); matched values are percent-decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping
from urllib.parse import unquote

from ..errors import NotFound
from .errors import MethodNotAllowed

if TYPE_CHECKING:
    from .app import Call

Handler = Callable[["Call"], Awaitable[Any]]

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


@dataclass(frozen=True)
class Param:
    """A query parameter, for the OpenAPI document."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    summary: str
    #: The JSON request body's type; None: no body, or a raw one (``raw_body``).
    body: type | None = None
    #: Status → response type (a msgspec Struct) or a media type for raw/streamed bodies.
    responses: Mapping[int, Any] = field(default_factory=dict)
    #: The request body is raw bytes of this media type (file uploads).
    raw_body: str | None = None
    query: tuple[Param, ...] = ()
    #: Served without authentication (the OpenAPI document).
    public: bool = False
    description: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        out, i = [], 0
        for m in _PARAM.finditer(self.pattern):
            out.append(re.escape(self.pattern[i : m.start()]))
            out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
            i = m.end()
        out.append(re.escape(self.pattern[i:]))
        return re.compile("^" + "".join(out) + "$")

    @property
    def openapi_path(self) -> str:
        return _PARAM.sub(lambda m: "{" + m.group(1) + "}", self.pattern)

    @property
    def path_params(self) -> list[str]:
        return [m.group(1) for m in _PARAM.finditer(self.pattern)]


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._compiled = [(route, route.regex) for route in routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method`` and ``path`` and its decoded path parameters.

        Raises:
            NotFound: no route has this path.
            MethodNotAllowed: some route has this path, none this method.
        """
        allowed = []
        for route, regex in self._compiled:
            m = regex.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(sorted(set(allowed)))
        raise NotFound(f"no such endpoint: {path}")

    def methods_for(self, path: str) -> list[str]:
        return sorted({route.method for route, regex in self._compiled if regex.match(path)})

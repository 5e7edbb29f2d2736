"""The OpenAPI 3.1 document, derived from the routing table and the msgspec types.

Nothing here describes an endpoint by hand: paths, methods, parameters and bodies come
from :class:`~sandboxd.rest.router.Route`, and schemas from the same msgspec types the
handlers decode and encode with (``msgspec.json.schema_components``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .. import __version__
from ..errors import ERROR_CODES
from .router import Route
from .types import ErrorBody

_REF = "#/components/schemas/{name}"

_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad request",
}


def _is_struct(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, msgspec.Struct)


def build(routes: list[Route]) -> dict[str, Any]:
    types = {ErrorBody}
    for route in routes:
        if route.body is not None:
            types.add(route.body)
        types.update(v for v in route.responses.values() if _is_struct(v))
    ordered = sorted(types, key=lambda t: t.__name__)
    refs, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    ref = dict(zip(ordered, refs, strict=True))
    error = {"description": "An error; `error.code` is one of the stable codes.",
             "content": {"application/json": {"schema": ref[ErrorBody]}}}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": route.summary,
            "responses": {},
        }
        if route.description:
            op["description"] = route.description
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in route.path_params]
        params += [{"name": q.name, "in": "query", "required": False, "schema": dict(q.schema),
                    **({"description": q.description} if q.description else {})} for q in route.query]
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[route.body]}}}
        elif route.raw_body is not None:
            op["requestBody"] = {"required": True, "content": {route.raw_body: {"schema": {}}}}
        for status, value in route.responses.items():
            text = _STATUS_TEXT.get(status, "OK")
            if _is_struct(value):
                op["responses"][str(status)] = {"description": value.__doc__ and value.__doc__.split("\n")[0] or text,
                                                "content": {"application/json": {"schema": ref[value]}}}
            else:
                media = value if isinstance(value, (list, tuple)) else [value]
                op["responses"][str(status)] = {"description": text, "content": {m: {"schema": {}} for m in media}}
        op["responses"]["default"] = error
        if route.public:
            op["security"] = []
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sandboxd REST API",
            "version": __version__,
            "description": "Sandboxes, executions and files over HTTP; the same operations, "
                           "policy and error codes as the WebSocket protocol (docs/protocol.md). "
                           "Error codes: " + ", ".join(ERROR_CODES) + ".",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
        "security": [{"bearer": []}, {"token": []}],
    }

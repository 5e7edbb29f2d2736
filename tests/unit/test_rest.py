"""The REST front end's I/O-free parts: routing, the error table, bodies, OpenAPI."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from sandboxd import errors
from sandboxd.rest import routes
from sandboxd.rest.errors import HTTP_STATUS, MethodNotAllowed, error_response, status_of
from sandboxd.rest.httpio import BodyTimeout, BodyTooLarge
from sandboxd.rest.openapi import build
from sandboxd.rest.router import Router
from sandboxd.rest.types import CreateContainerRequest, ExecRequest, decode


def test_the_openapi_document_is_valid_openapi_3_1_and_lists_every_route():
    table = routes()
    document = build(table)
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert listed == {(r.method, r.openapi_path) for r in table}
    create = document["components"]["schemas"]["CreateContainerRequest"]
    assert create["additionalProperties"] is False
    assert {"image", "labels", "memoryBytes", "ttlSeconds"} <= set(create["properties"])
    exec_body = document["components"]["schemas"]["ExecRequest"]
    assert {"containerId", "image", "command", "stdin", "socketSessionId"} <= set(exec_body["properties"])
    assert set(document["paths"]["/api/sandbox/exec"]["post"]["responses"]) == {"200", "202", "default"}
    file_get = document["paths"]["/api/sandbox/containers/{id}/files/{path}"]["get"]
    assert list(file_get["responses"]["200"]["content"]) == ["application/octet-stream"]


def test_router_matches_paths_decodes_parameters_and_tells_405_from_404():
    router = Router(routes())
    route, params = router.match("GET", "/api/sandbox/containers/abc%20def")
    assert route.handler.__name__ == "get_container" and params == {"id": "abc def"}
    with pytest.raises(MethodNotAllowed) as info:
        router.match("PATCH", "/api/sandbox/containers/abc")
    assert info.value.allowed == ["DELETE", "GET"]
    with pytest.raises(errors.NotFound):
        router.match("GET", "/api/sandbox/nothing-here")
    with pytest.raises(errors.NotFound):
        router.match("GET", "/api/sandbox/containers/a/b")  # {id} is one segment


@pytest.mark.parametrize("error, status", [
    (errors.BadRequest("x"), 400),
    (errors.UnknownEvent("x"), 400),
    (BodyTimeout("x"), 408),
    (MethodNotAllowed(["GET"]), 405),
    (errors.Unauthenticated("x"), 401),
    (errors.Forbidden("x"), 403),
    (errors.CommandRejected("no"), 403),
    (errors.NotFound("x"), 404),
    (errors.SandboxStopped("x"), 409),
    (errors.Conflict("x"), 409),
    (BodyTooLarge("x"), 413),
    (errors.LimitExceeded("x"), 429),
    (errors.QuotaExceeded("x"), 507),
    (errors.PluginError("p", "h"), 500),
    (errors.InternalError("x"), 500),
    (errors.DockerError("x"), 502),
    (errors.EngineUnavailable("x"), 503),
])
def test_error_table_gives_each_error_its_status_and_keeps_the_websocket_code(error, status):
    got, body, _ = error_response(error)
    assert got == status
    assert body.decode() == f'{{"error":{{"code":"{error.code}","message":{__import__("json").dumps(error.message)}}}}}'


def test_every_error_class_has_a_status_of_its_own():
    # A new error class of the daemon's must be given a status on purpose, not fall back
    # to 500 (clients' own error classes, like the SDK's, never reach the REST layer).
    for klass in errors._all_subclasses(errors.SandboxdError):
        if klass.__module__ != "sandboxd.errors":
            continue
        assert any(k in HTTP_STATUS for k in klass.__mro__ if k is not errors.SandboxdError), (
            f"{klass.__name__}: give it an HTTP status in sandboxd/rest/errors.py HTTP_STATUS")
    assert status_of(errors.SandboxdError("x")) == 500


@pytest.mark.parametrize("body, names", [
    (b'{"command": 3}', "$.command"),
    (b'{"command": ["ls"], "tiemout": 3}', "tiemout"),
    (b'{"command": ["ls"], "timeout": 0}', "$.timeout"),
    (b'{"command": ["ls"], "env": {"A": 1}}', "$.env"),
    (b'{"command": ["ls"], "files": {"a": {"content": "x", "mode": []}}}', "mode"),
    (b'{"command": ["ls"], "containerId": "../etc"}', "$.containerId"),
    (b'{"command": ["ls"],', "JSON"),
])
def test_bad_bodies_are_refused_naming_the_field(body, names):
    with pytest.raises(errors.BadRequest) as info:
        decode(body, ExecRequest)
    assert names in info.value.message


def test_an_empty_body_is_an_empty_object():
    assert decode(b"", CreateContainerRequest) == CreateContainerRequest()

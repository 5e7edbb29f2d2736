"""The REST API against a real daemon and engine: every endpoint, ownership, the error
table, CORS, capped and slow bodies."""

from __future__ import annotations

import pytest

from .conftest import FAST_IMAGE, Daemon
from .http_client import HTTP
from .test_plugins import TOKENS, token_table

ALLOWED_ORIGIN = "https://notebooks.example.com"


@pytest.fixture(scope="module")
def rest_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("rest"), f"""
[plugins]
enabled = ["token_auth", "ownership", "origin_check"]
[plugins.token_auth]
{token_table()}
[plugins.origin_check]
allowed_origins = ["{ALLOWED_ORIGIN}"]
[server]
max_message_bytes = 65536
[api]
body_timeout_seconds = 2.0
max_exec_output_bytes = 100000
""")
    yield d
    d.cleanup()


@pytest.fixture
def alice(rest_daemon) -> HTTP:
    return HTTP(rest_daemon.http, TOKENS["alice"])


@pytest.fixture
def bob(rest_daemon) -> HTTP:
    return HTTP(rest_daemon.http, TOKENS["bob"])


async def new_sandbox(http: HTTP) -> str:
    r = await http.post("/api/sandbox/containers", {"image": FAST_IMAGE, "labels": {"team": "x"}})
    assert r.status == 201, r.body
    return r.json()["containerId"]


async def test_containers_create_list_get_delete(alice, bob):
    cid = await new_sandbox(alice)
    listed = (await alice.get("/api/sandbox/containers")).json()["containers"]
    assert cid in [c["containerId"] for c in listed]
    info = await alice.get(f"/api/sandbox/containers/{cid}")
    assert info.status == 200
    assert info.json()["owner"] == "alice" and info.json()["labels"] == {"team": "x"}
    assert info.json()["limits"]["pidsLimit"] > 0
    # Bob cannot see, inspect or remove it: it looks exactly like an unknown id.
    assert cid not in [c["containerId"] for c in (await bob.get("/api/sandbox/containers")).json()["containers"]]
    for r in (await bob.get(f"/api/sandbox/containers/{cid}"), await bob.delete(f"/api/sandbox/containers/{cid}")):
        assert (r.status, r.code) == (404, "NOT_FOUND")
        assert r.json()["error"]["message"] == f"no such sandbox: {cid}"
    removed = await alice.delete(f"/api/sandbox/containers/{cid}")
    assert (removed.status, removed.json()) == (200, {"containerId": cid, "removed": True})
    assert (await alice.get(f"/api/sandbox/containers/{cid}")).status == 404


async def test_error_table(rest_daemon, alice):
    anonymous = HTTP(rest_daemon.http)
    r = await anonymous.get("/api/sandbox/containers")
    assert (r.status, r.code) == (401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await HTTP(rest_daemon.http, "wrong").get("/api/sandbox/containers")).status == 401
    # Refused before its body is read: the answer still arrives whole.
    refused = await anonymous.post("/api/sandbox/containers", {"labels": {"pad": "x" * 60000}})
    assert (refused.status, refused.code) == (401, "UNAUTHENTICATED")
    query = await anonymous.get(f"/api/sandbox/containers?token={TOKENS['alice']}")
    assert query.status == 200
    cases = [
        (alice.post("/api/sandbox/containers", {"image": FAST_IMAGE, "color": "red"}), 400, "BAD_REQUEST", "color"),
        (alice.post("/api/sandbox/containers", {"ttlSeconds": "soon"}), 400, "BAD_REQUEST", "$.ttlSeconds"),
        (alice.post("/api/sandbox/containers", {"labels": {"org.sandboxd.owner": "bob"}}), 400, "BAD_REQUEST",
         "org.sandboxd.owner"),
        (alice.request("PUT", "/api/sandbox/containers"), 405, "BAD_REQUEST", "GET, POST"),
        (alice.get("/api/sandbox/nothing"), 404, "NOT_FOUND", "no such endpoint"),
        (alice.post("/api/sandbox/containers", {"image": "sandboxd/no-such-image"}), 404, "NOT_FOUND", "image"),
        (alice.post("/api/sandbox/containers", {"labels": {"big": "x" * 70000}}), 413, "LIMIT_EXCEEDED", "65536"),
    ]
    for call, status, code, words in cases:
        r = await call
        assert (r.status, r.code) == (status, code), r.body
        assert words in r.json()["error"]["message"]


async def test_slow_and_broken_bodies(rest_daemon, alice):
    # A body that stops arriving is answered 408 after api.body_timeout_seconds.
    stalled = await alice.raw("POST", "/api/sandbox/containers", {"Content-Type": "application/json",
                                                                  "Content-Length": "100"}, b'{"ima')
    assert (stalled.status, stalled.code) == (408, "BAD_REQUEST")
    r = await alice.request("POST", "/api/sandbox/containers", body=b"{not json",
                            headers={"Content-Type": "application/json"})
    assert (r.status, r.code) == (400, "BAD_REQUEST")


async def test_cors_for_an_allowed_origin_and_none_for_others(rest_daemon, alice):
    pre = await HTTP(rest_daemon.http).request("OPTIONS", "/api/sandbox/containers", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status == 204
    assert pre.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "authorization, content-type"
    ok = await alice.get("/api/sandbox/containers", headers={"Origin": ALLOWED_ORIGIN})
    assert ok.status == 200 and ok.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    err = await alice.get("/api/sandbox/containers/nope", headers={"Origin": ALLOWED_ORIGIN})
    assert err.status == 404 and err.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    refused = await alice.get("/api/sandbox/containers", headers={"Origin": "https://evil.example"})
    assert refused.status == 403 and "access-control-allow-origin" not in refused.headers
    plain = await alice.get("/api/sandbox/containers")
    assert plain.status == 200 and "access-control-allow-origin" not in plain.headers


async def test_openapi_document_is_served_without_a_token(rest_daemon):
    r = await HTTP(rest_daemon.http).get("/api/openapi.json")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["openapi"] == "3.1.0"
    assert "/api/sandbox/containers/{id}" in r.json()["paths"]

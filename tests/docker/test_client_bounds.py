"""What one client can make the daemon do is bounded (#12): sessions per user, request
rate, failed authentications, idle sessions."""

from __future__ import annotations

import hashlib
import json

import pytest
import trio
import trio_websocket

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .http_client import HTTP

TOKENS = {"alice": "alice-bounded-token", "bob": "bob-bounded-token"}


def token_table() -> str:
    rows = ", ".join(f'{{ user = "{u}", roles = ["user"], sha256 = "{hashlib.sha256(t.encode()).hexdigest()}" }}'
                     for u, t in TOKENS.items())
    return f"tokens = [{rows}]"


async def handshake_status(daemon, token: str) -> int:
    try:
        async with trio_websocket.open_websocket_url(daemon.url, extra_headers=[("Authorization", f"Bearer {token}")]):
            return 101
    except trio_websocket.ConnectionRejected as exc:
        return exc.status_code


async def test_sessions_per_user_request_rate_and_failed_logins_are_bounded(make_daemon):
    daemon = make_daemon(f"""
[server]
max_sessions_per_user = 2
requests_per_second = 1.0
request_burst = 3
auth_failures_per_minute = 3
[plugins]
enabled = ["token_auth"]
[plugins.token_auth]
{token_table()}
""")
    with trio.fail_after(120):
        async with open_client(daemon.url, token=TOKENS["alice"]) as alice, \
                open_client(daemon.url, token=TOKENS["alice"]):
            # A third session for alice is refused; bob is not affected.
            assert await handshake_status(daemon, TOKENS["alice"]) == 429
            async with open_client(daemon.url, token=TOKENS["bob"]) as bob:
                assert "ref" in await bob.call("ping")
            # Requests past the burst are refused with RATE_LIMITED; the session goes on.
            codes = []
            for _ in range(8):
                try:
                    await alice.call("list-containers")
                    codes.append("ok")
                except SandboxdError as exc:
                    codes.append(exc.code)
            assert codes[:3] == ["ok"] * 3 and "RATE_LIMITED" in codes[3:]
            assert "ref" in await alice.call("ping")  # not counted
        # After 3 failed logins from this address, even a good token waits (429).
        assert [await handshake_status(daemon, "wrong") for _ in range(3)] == [401] * 3
        assert await handshake_status(daemon, TOKENS["bob"]) == 429


async def test_an_idle_session_is_closed(make_daemon):
    daemon = make_daemon("[server]\nidle_session_timeout_seconds = 2.0\n")
    async with trio_websocket.open_websocket_url(daemon.url) as ws:
        await ws.send_message(json.dumps({"event": "ping", "data": {}}))
        with trio.fail_after(60), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                await ws.get_message()
    assert (closed.value.reason.code, closed.value.reason.reason) == (1000, "idle timeout")


async def socketio_connect(daemon, token: str) -> tuple[trio_websocket.WebSocketConnection, str]:
    """A raw Engine.IO WebSocket whose Socket.IO CONNECT carries ``token``; its answer."""
    ws = await trio_websocket.connect_websocket_url(
        daemon.nursery, daemon.http.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket")
    assert (await ws.get_message()).startswith("0{")
    await ws.send_message("40" + json.dumps({"token": token}))
    return ws, await ws.get_message()


async def test_socketio_and_rest_share_the_session_caps_and_the_failed_login_backoff(make_daemon):
    daemon = make_daemon(f"""
[server]
max_sessions_per_user = 1
auth_failures_per_minute = 2
[plugins]
enabled = ["token_auth"]
[plugins.token_auth]
{token_table()}
""")
    with trio.fail_after(120):
        async with trio.open_nursery() as daemon.nursery:
            first, answer = await socketio_connect(daemon, TOKENS["alice"])
            assert answer.startswith('40{"sid"')
            # alice's one session is open: a second, on either front end, is refused.
            second, answer = await socketio_connect(daemon, TOKENS["alice"])
            assert answer.startswith("44") and json.loads(answer[2:])["code"] == "RATE_LIMITED"
            assert await handshake_status(daemon, TOKENS["alice"]) == 429
            # Failed REST logins count for the address: then REST and Socket.IO make it wait.
            assert [(await HTTP(daemon.http, "wrong").get("/api/sandbox/containers")).status
                    for _ in range(2)] == [401, 401]
            waited = await HTTP(daemon.http, TOKENS["bob"]).get("/api/sandbox/containers")
            assert (waited.status, waited.code) == (429, "RATE_LIMITED")
            assert 0 < int(waited.headers["retry-after"]) <= 60
            third, answer = await socketio_connect(daemon, TOKENS["bob"])
            refused = json.loads(answer[2:])
            assert answer.startswith("44") and refused["code"] == "RATE_LIMITED"
            assert 0 < refused["data"]["retryAfter"] <= 60
            for ws in (first, second, third):
                await ws.aclose()

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

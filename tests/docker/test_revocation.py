"""A revoked token stops working at once, open sessions included, without a restart (#12)."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import pytest
import trio
import trio_websocket

from sandboxd.client import open_client

from .conftest import FAST_IMAGE

TOKENS = {"alice": "alice-revocable-token", "bob": "bob-kept-token"}


def write_tokens(path, users) -> None:
    """Replace the tokens file atomically, as the docs ask."""
    rows = ", ".join(
        f'{{ user = "{u}", roles = ["user"], sha256 = "{hashlib.sha256(TOKENS[u].encode()).hexdigest()}" }}'
        for u in users)
    path.with_suffix(".new").write_text(f"tokens = [{rows}]\n")
    os.replace(path.with_suffix(".new"), path)


def start(make_daemon, tmp_path, interval: float):
    tokens = tmp_path / "tokens.toml"
    write_tokens(tokens, ["alice", "bob"])
    return tokens, make_daemon(f"""
[plugins]
enabled = ["token_auth"]
reload_interval_seconds = {interval}
[plugins.token_auth]
tokens_file = "{tokens}"
""")


async def streaming_session_is_closed_on_revocation(daemon, revoke) -> None:
    auth = [("Authorization", f"Bearer {TOKENS['alice']}")]
    async with trio_websocket.open_websocket_url(daemon.url, extra_headers=auth) as alice, \
            open_client(daemon.url, token=TOKENS["bob"]) as bob:
        await alice.send_message(json.dumps({"event": "execute-command", "data": {
            "image": FAST_IMAGE, "command": ["sh", "-c", "while :; do echo tick; sleep 0.1; done"]}}))
        with trio.fail_after(60):
            while json.loads(await alice.get_message())["event"] != "execution-output":
                pass
        revoke()
        with trio.fail_after(30), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:  # output flows until the session is closed
                await alice.get_message()
        assert closed.value.reason.code == 1008
        assert "ref" in await bob.call("ping")  # bob's token still holds
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with trio_websocket.open_websocket_url(daemon.url, extra_headers=auth):
            pass
    assert refused.value.status_code == 401


async def test_editing_the_tokens_file_closes_the_revoked_users_sessions(make_daemon, tmp_path):
    tokens, daemon = start(make_daemon, tmp_path, 0.5)
    await streaming_session_is_closed_on_revocation(daemon, lambda: write_tokens(tokens, ["bob"]))


async def test_sighup_reloads_the_tokens_file(make_daemon, tmp_path):
    tokens, daemon = start(make_daemon, tmp_path, 0)  # no polling: SIGHUP only

    def revoke() -> None:
        write_tokens(tokens, ["bob"])
        daemon.proc.send_signal(signal.SIGHUP)

    await streaming_session_is_closed_on_revocation(daemon, revoke)
    assert daemon.proc.poll() is None


async def test_a_revoked_socketio_client_is_disconnected_and_its_output_stops(make_daemon, tmp_path):
    """A raw Engine.IO WebSocket client, authenticated by the CONNECT payload's token."""
    tokens, daemon = start(make_daemon, tmp_path, 0.5)
    url = daemon.url.replace("/sandbox/ws", "") + "/socket.io/?EIO=4&transport=websocket"
    async with trio_websocket.open_websocket_url(url) as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40" + json.dumps({"token": TOKENS["alice"]}))
        assert (await ws.get_message()).startswith('40{"sid"')
        await ws.send_message("42" + json.dumps(["execute-command", {
            "image": FAST_IMAGE, "command": ["sh", "-c", "while :; do echo tick; sleep 0.1; done"]}]))
        with trio.fail_after(60):
            while not (await ws.get_message()).startswith('42["execution-output"'):
                pass
        write_tokens(tokens, ["bob"])
        with trio.fail_after(30):
            try:
                while (message := await ws.get_message()) != "41":  # output flows until then
                    if message == "2":
                        await ws.send_message("3")
            except trio_websocket.ConnectionClosed:
                pass
            with pytest.raises(trio_websocket.ConnectionClosed):  # and nothing after it
                while True:
                    assert not (await ws.get_message()).startswith('42["execution-output"')

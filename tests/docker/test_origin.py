"""Browser pages from other origins cannot drive the daemon; its own page can (#12).

The attack: a page served from another origin, opened in Chromium, connected to the
quick-start daemon on 127.0.0.1 and ran commands. Browsers send ``Origin``; the daemon
now refuses any it does not own, on every route, with the default configuration.
"""

from __future__ import annotations

import socket

import pytest
from playwright.sync_api import sync_playwright

from .helpers import static_site
from .test_web import CHROMIUM_ARGS

PROBE = """<!doctype html><script>
window.probe = (url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
});
</script>"""


@pytest.fixture
def other_origin():
    """A second web server on another 127.0.0.1 port: the "attacker's" page."""
    with static_site({"/": lambda: (PROBE.encode(), "text/html")}) as url:
        yield url + "/"


def test_a_page_on_another_origin_cannot_connect_but_the_daemons_own_page_can(daemon, other_origin):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(other_origin)
            for host in ("127.0.0.1", "localhost"):
                assert page.evaluate("(u) => window.probe(u)", f"ws://{host}:{daemon.port}/sandbox/ws") == "refused"
            page.goto(daemon.http + "/")
            page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'",
                                   timeout=20_000)
            page.add_script_tag(content=PROBE.split("<script>")[1].split("</script>")[0])
            # The daemon's own page, under its other loopback name, is the same origin.
            assert page.evaluate("(u) => window.probe(u)", daemon.url) == "open"
            page.goto(f"http://localhost:{daemon.port}/")
            page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'",
                                   timeout=20_000)
        finally:
            browser.close()


def handshake(port: int, *headers: str) -> bytes:
    """Send a WebSocket handshake with exactly these extra header lines; the status line."""
    lines = ["GET /sandbox/ws HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", *headers]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.makefile("rb").readline()


def test_origin_and_host_rules_on_the_wire(daemon):
    own = f"Host: 127.0.0.1:{daemon.port}"
    assert b" 101 " in handshake(daemon.port, own)                          # no Origin: CLI, SDK
    assert b" 101 " in handshake(daemon.port, own, f"Origin: http://localhost:{daemon.port}")
    assert b" 403 " in handshake(daemon.port, own, "Origin: http://evil.example")
    # Two Origin headers: refused, whichever comes last.
    assert b" 403 " in handshake(daemon.port, own, "Origin: http://evil.example",
                                 f"Origin: http://127.0.0.1:{daemon.port}")
    # DNS rebinding: attacker.example resolved to 127.0.0.1; its Origin matches its Host.
    assert b" 403 " in handshake(daemon.port, f"Host: attacker.example:{daemon.port}",
                                 f"Origin: http://attacker.example:{daemon.port}")
    assert b" 403 " in handshake(daemon.port, f"Host: attacker.example:{daemon.port}")
    # Every route, not only the WebSocket endpoint.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: attacker.example:{daemon.port}\r\n\r\n".encode())
        assert b" 403 " in s.makefile("rb").readline()
    assert b" 431 " in handshake(daemon.port, own, *(f"X-Pad-{i}: x" for i in range(200)))

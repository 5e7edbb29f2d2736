"""Socket.IO: the seed's clients, verbatim, with the real npm socket.io-client (Node).

The scenarios live in ``tests/js/socketio_client.js`` (one Node process each; it exits
non-zero with the failed assertion). ``scripts/setup.sh`` installs the package.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Daemon
from .helpers import static_site

JS = Path(__file__).parents[1] / "js"
SCRIPT = JS / "socketio_client.js"
TOKEN = "sio-test-token"
ALLOWED_ORIGIN = "http://notebooks.example"
PING_INTERVAL, PING_TIMEOUT = 2.0, 8.0


def node(scenario: str, daemon: Daemon, **args) -> None:
    proc = subprocess.run(["node", str(SCRIPT), scenario, json.dumps({"url": daemon.http, **args})],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{scenario} failed:\n{proc.stderr}{proc.stdout}"
    assert f"ok {scenario}" in proc.stdout


@pytest.fixture(scope="module")
def seed_app():
    """The seed's web app on its own origin (another port on 127.0.0.1): the WebTerminal
    page and socket.io-client's browser bundle."""
    bundle = JS / "node_modules/socket.io-client/dist/socket.io.min.js"
    with static_site({"/": lambda: ((JS / "web_terminal.html").read_bytes(), "text/html"),
                      "/socket.io.min.js": lambda: (bundle.read_bytes(), "text/javascript")}) as url:
        yield url


@pytest.fixture(scope="module")
def seed_daemon(tmp_path_factory, seed_app):
    """No authentication, as the seed's clients expect; the seed's app origin allowed."""
    d = Daemon(tmp_path_factory.mktemp("sio"), f'[server]\nallowed_origins = ["{seed_app}"]\n')
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """Token auth, an allowed browser origin, and a quick heartbeat."""
    sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    d = Daemon(tmp_path_factory.mktemp("sio"), f"""
[server]
allowed_origins = ["{ALLOWED_ORIGIN}"]
[socketio]
ping_interval_seconds = {PING_INTERVAL}
ping_timeout_seconds = {PING_TIMEOUT}
[plugins]
enabled = ["token_auth"]
[plugins.token_auth]
tokens = [{{ user = "alice", roles = ["user"], sha256 = "{sha}" }}]
""")
    yield d
    d.cleanup()


@pytest.mark.parametrize(("transports", "ends_on"), [
    (None, "websocket"),           # io(apiUrl) exactly: polling, then the upgrade
    (["polling"], "polling"),
    (["websocket"], "websocket"),
], ids=["upgrade", "polling", "websocket"])
def test_first_design_web_terminal_works_verbatim(seed_daemon, transports, ends_on):
    """join-session → session-joined; exec-output stdout and stderr apart, 2 MB whole and
    in order with contiguous seq; exec-finished with the exit code; error events."""
    node("first-design", seed_daemon, transports=transports, expectTransport=ends_on)


@pytest.mark.parametrize("transports", [None, ["polling"]], ids=["websocket-first", "polling"])
def test_second_design_client_works_verbatim(seed_daemon, transports):
    """path /sandbox/ws, join-container "<id>" → container-joined {success: true};
    execution-output / execution-complete with ISO 8601 timestamps."""
    node("second-design", seed_daemon, transports=transports)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]], ids=["polling", "websocket"])
def test_acks_stdin_kill_and_binary_attachments(seed_daemon, transports):
    """An ack gets the reply (or {error}); stdin as text and as a Buffer comes back
    byte-exact; kill; binary output as Buffer attachments."""
    node("interactive", seed_daemon, transports=transports)


def test_token_from_the_connect_auth_payload(guarded):
    """auth: {token}, ?token= and Authorization all work; without, connect_error."""
    node("auth", guarded, token=TOKEN, auth={"token": TOKEN})


def test_engineio_errors_and_cors_as_the_reference_server(guarded):
    """Unknown sid, EIO=3, two polls at once, a malformed payload; CORS echoed (with
    credentials) for an allowed origin on every answer, none for a refused one."""
    node("http", guarded, token=TOKEN, pingIntervalMs=PING_INTERVAL * 1000, allowedOrigin=ALLOWED_ORIGIN,
         refusedOrigin="http://elsewhere.example")


def test_heartbeat_closes_silent_clients(guarded):
    node("heartbeat", guarded, pingIntervalMs=PING_INTERVAL * 1000, pingTimeoutMs=PING_TIMEOUT * 1000)


def test_a_client_that_stops_polling_stops_the_command_not_the_daemon(seed_daemon):
    """Backpressure over long-polling: while the starting client does not poll, the
    command's output is not read ahead (its log stays small) and the daemon's memory
    does not grow; once it polls again the output resumes where it stopped."""
    daemon = seed_daemon
    base = "/socket.io/?EIO=4&transport=polling"
    conn = lambda: http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)  # noqa: E731

    def request(method: str, sid: str | None = None, body: str | None = None) -> str:
        c = conn()
        c.request(method, base + (f"&sid={sid}" if sid else ""), body=body)
        r = c.getresponse()
        text = r.read().decode()
        assert r.status == 200, text
        c.close()
        return text

    sid = json.loads(request("GET")[1:])["sid"]
    request("POST", sid, '40\x1e42["execute-command",{"image":"sandboxd/busybox","command":'
                         '["sh","-c","yes 0123456789abcdef | head -c 400000000"]}]')
    received, execution_id = 0, None
    while execution_id is None or received < 1_000_000:
        for packet in request("GET", sid).split("\x1e"):
            if packet.startswith('42["command-accepted"'):
                execution_id = json.loads(packet[2:])[1]["executionId"]
            elif packet.startswith('42["execution-output"'):
                received += len(json.loads(packet[2:])[1]["data"])
    log = daemon.state_dir / "logs" / f"{execution_id}.log"
    rss_before, log_before = daemon.rss_kib(), log.stat().st_size
    time.sleep(4)  # not polling, on purpose: nothing else can show that nothing happens
    grown_log = log.stat().st_size - log_before
    grown_rss = daemon.rss_kib() - rss_before
    assert grown_log < 8_000_000, f"the command ran ahead by {grown_log} bytes"
    assert grown_rss < 16 * 1024, f"daemon RSS grew {grown_rss} KiB"
    seq = None
    for packet in request("GET", sid).split("\x1e"):
        if packet.startswith('42["execution-output"'):
            seq = json.loads(packet[2:])[1]["seq"] if seq is None else seq
    assert seq == received, "output resumes exactly where it stopped"
    request("POST", sid, f'42["kill",{{"executionId":"{execution_id}"}}]\x1e1')


def test_the_web_terminal_in_a_browser(seed_daemon, seed_app):
    """The seed's WebTerminal logic with socket.io-client's browser bundle, on its own
    (allowed) origin, in headless Chromium: polling with CORS, the upgrade, line output
    with stderr in red, the status line."""
    from playwright.sync_api import sync_playwright

    from .test_web import CHROMIUM_ARGS

    made = seed_daemon.cli("sandbox", "create", "--image", "sandboxd/busybox")
    assert made.returncode == 0, made.stderr
    container_id = made.stdout.decode().split()[-1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{seed_app}/?api={seed_daemon.http}&containerId={container_id}")
            page.wait_for_function("document.getElementById('status').textContent === 'Connected'", timeout=60_000)
            page.wait_for_selector(f"text=成功连接到容器: {container_id}", timeout=60_000)
            page.fill("#input", "echo out; echo err >&2; exit 3")
            page.press("#input", "Enter")
            page.wait_for_selector("text=退出码: 3", timeout=60_000)
            lines = page.eval_on_selector_all(
                ".line", "els => els.map(e => [e.dataset.type, e.textContent, getComputedStyle(e).color])")
            page.wait_for_function("window.socket.io.engine.transport.name === 'websocket'", timeout=60_000)
        finally:
            browser.close()
    assert ["system", "$ echo out; echo err >&2; exit 3", "rgb(139, 233, 253)"] in lines
    assert ["stdout", "out\n", "rgb(240, 240, 240)"] in lines
    assert ["stderr", "err\n", "rgb(255, 85, 85)"] in lines, "stderr in red"
    assert any(t == "system" and "状态: failed, 退出码: 3" in text for t, text, _ in lines)
    assert errors == []

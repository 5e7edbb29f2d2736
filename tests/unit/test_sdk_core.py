"""The SDK's sans-IO core, driven byte for byte by an in-memory WebSocket server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage

from sandboxd.errors import NotFound
from sandboxd.protocol import encode_binary_output
from sandboxd.sdk._core import ClientCore
from sandboxd.sdk._errors import DaemonUnavailable
from sandboxd.sdk._wire import parse_url


class FakeDaemon:
    """The server end of one connection: what the client sent, and a way to answer."""

    def __init__(self, core: ClientCore) -> None:
        self.core = core
        self.ws = WSConnection(ConnectionType.SERVER)
        self.received: list[dict] = []
        core.connect()
        self.pump()

    def pump(self) -> None:
        """Move the client's queued bytes to the server, and the server's replies back."""
        self.ws.receive_data(self.core.data_to_send())
        out = b""
        for event in self.ws.events():
            if isinstance(event, Request):
                out += self.ws.send(AcceptConnection())
            elif isinstance(event, TextMessage):
                self.received.append(json.loads(event.data))
        if out:
            self.core.receive_data(out)
            self.pump()

    def send(self, event: str, **data) -> None:
        self.core.receive_data(self.ws.send(TextMessage(data=json.dumps({"event": event, "data": data}))))

    def output(self, eid: str, stream: int, seq: int, data: bytes) -> None:
        self.core.receive_data(self.ws.send(BytesMessage(data=encode_binary_output(eid, stream, seq, [data]))))

    def last(self, event: str) -> dict:
        return next(m["data"] for m in reversed(self.received) if m["event"] == event)


def drain(core: ClientCore, eid: str) -> bytes:
    out = b""
    while (chunk := core.pop_chunk(eid)) is not None:
        out += chunk.data
    return out


def started(core: ClientCore, daemon: FakeDaemon, eid: str = "exec-1"):
    call = core.call("execute-command", {"containerId": "c" * 64, "command": ["x"]},
                     on_reply=lambda r: core.track(r["executionId"], r["containerId"], live=True))
    daemon.pump()
    daemon.send("command-accepted", executionId=eid, containerId="c" * 64, ref=call.ref)
    return core.executions[eid]


def test_first_frame_asks_for_binary_output_and_replies_match_by_ref():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)
    a, b = core.call("ping", {}), core.call("inspect-container", {"containerId": "x" * 12})
    d.pump()
    assert d.received[0] == {"event": "configure-session", "data": {"binaryOutput": True}}
    d.send("error", code="NOT_FOUND", message="no such sandbox", ref=b.ref)
    d.send("pong", ref=a.ref)
    assert a.result() == {"ref": a.ref}
    with pytest.raises(NotFound, match="no such sandbox"):
        b.result()


def test_duplicates_are_dropped_and_a_gap_reattaches_from_what_we_have():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)
    st = started(core, d)
    d.output("exec-1", 1, 0, b"hello ")
    d.output("exec-1", 1, 3, b"lo wor")  # overlaps: only "wor" is new
    d.output("exec-1", 1, 0, b"hel")  # a pure duplicate
    d.output("exec-1", 1, 20, b"??")  # a gap: ask for the rest from offset 9
    d.pump()
    assert drain(core, "exec-1") == b"hello wor"
    assert d.last("attach-execution")["since"] == {"stdout": 9, "stderr": 0}
    assert st.attach is not None


def test_a_completion_is_believed_only_when_every_byte_is_there():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)
    st = started(core, d)
    d.output("exec-1", 1, 0, b"abc")
    d.send("execution-complete", executionId="exec-1", status="success", exitCode=0, bytes={"stdout": 5, "stderr": 0})
    assert st.complete is None  # two bytes missing: fetch them from the log
    d.pump()
    attach = d.last("attach-execution")
    assert attach["since"] == {"stdout": 3, "stderr": 0}
    d.send("execution-attached", executionId="exec-1", containerId="c" * 64, status="success", ref=attach["ref"])
    d.output("exec-1", 1, 3, b"de")
    d.send("execution-complete", executionId="exec-1", status="success", exitCode=0, bytes={"stdout": 5, "stderr": 0})
    assert st.complete is not None and drain(core, "exec-1") == b"abcde"


def test_a_slow_consumer_costs_bounded_memory_and_catches_up_from_the_log():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws", max_buffer_bytes=10)
    d = FakeDaemon(core)
    st = started(core, d)
    for i in range(5):
        d.output("exec-1", 1, i * 8, b"x" * 8)
    assert st.queued <= 16 and st.lagging  # 16 bytes kept; the rest dropped, not buffered
    d.send("execution-complete", executionId="exec-1", status="success", exitCode=0, bytes={"stdout": 40, "stderr": 0})
    assert st.complete is None
    assert drain(core, "exec-1") == b"x" * 16
    d.pump()
    assert d.last("attach-execution")["since"] == {"stdout": 16, "stderr": 0}


def test_after_a_drop_safe_requests_are_resent_others_fail_and_executions_resume():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)
    st = started(core, d)
    d.output("exec-1", 2, 0, b"err")
    listing = core.call("list-containers", {})
    create = core.call("create-container", {})
    d.pump()
    core.connection_lost()
    assert isinstance(create.error, DaemonUnavailable) and not listing.done
    d2 = FakeDaemon(core)
    events = [m["event"] for m in d2.received]
    assert events == ["configure-session", "attach-execution", "list-containers"]
    assert d2.last("attach-execution")["since"] == {"stdout": 0, "stderr": 3}
    assert not st.live


def test_a_closed_connection_is_reported():
    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    FakeDaemon(core)
    with pytest.raises(DaemonUnavailable):
        core.receive_data(b"")


@pytest.mark.parametrize("url, target, tls, port", [
    ("http://h:8765", "/sandbox/ws", False, 8765),
    ("https://h/prefix/", "/prefix/sandbox/ws", True, 443),
    ("ws://h:1/sandbox/ws?token=t", "/sandbox/ws?token=t", False, 1),
    ("wss://h/custom", "/custom", True, 443),
])
def test_urls(url, target, tls, port):
    ep = parse_url(url)
    assert (ep.target, ep.tls, ep.port, ep.host) == (target, tls, port, "h")


def test_serve_does_not_import_the_sdk():
    code = ("import sys, sandboxd, sandboxd.cli, sandboxd.server; "
            "print(sorted(m for m in sys.modules if m.startswith('sandboxd.sdk.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert set(eval(loaded)) <= {"sandboxd.sdk._env", "sandboxd.sdk._errors"}


def test_the_cli_is_a_user_of_the_sdk_not_a_second_client():
    code = "import sys, sandboxd.cli; print('sandboxd.client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_sdk_is_exported_from_sandboxd_on_first_use():
    import sandboxd
    from sandboxd.sdk import AsyncSandbox, Sandbox

    assert sandboxd.Sandbox is Sandbox and sandboxd.AsyncSandbox is AsyncSandbox


def drive(plan, daemon: FakeDaemon, answer) -> object:
    """Run a transfer plan against the fake daemon; ``answer(message)`` replies to each frame."""
    seen = 0
    try:
        step = next(plan)
        while True:
            daemon.pump()
            for message in daemon.received[seen:]:
                answer(message)
            seen = len(daemon.received)
            assert step is None or step(), "the plan waits for something the daemon did not send"
            step = plan.send(None)
    except StopIteration as done:
        return done.value


def test_a_download_is_written_to_the_sink_chunk_by_chunk():
    import base64
    import io

    from sandboxd.sdk._files import download_plan

    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)
    sink = io.BytesIO()

    def answer(m):
        if m["event"] == "download-start":
            ref = m["data"]["ref"]
            d.send("download-started", downloadId="d1", path="/w/f", kind="file", size=6, mode=420, mtime=1, ref=ref)
            for offset, part in ((0, b"abc"), (3, b"\x00\xff\n")):
                d.send("download-chunk", downloadId="d1", offset=offset, data=base64.b64encode(part).decode(), ref=ref)
            d.send("download-end", downloadId="d1", size=6, ref=ref)

    info = drive(download_plan(core, "c" * 64, "f", sink), d, answer)
    assert sink.getvalue() == b"abc\x00\xff\n" and (info.kind, info.size, info.mode) == ("file", 6, 420)


def test_a_refused_upload_chunk_is_raised_with_its_own_error():
    import io

    from sandboxd.errors import LimitExceeded
    from sandboxd.sdk._files import upload_plan

    core = ClientCore("ws://127.0.0.1:1/sandbox/ws")
    d = FakeDaemon(core)

    def answer(m):
        if m["event"] == "upload-start":
            d.send("upload-ready", uploadId="u1", containerId="c" * 64, ref=m["data"]["ref"])
        elif m["event"] == "upload-chunk":
            d.send("error", code="LIMIT_EXCEEDED", message="too big", ref=m["data"]["ref"])
        elif m["event"] == "upload-end":
            d.send("error", code="NOT_FOUND", message="no such upload", ref=m["data"]["ref"])

    with pytest.raises(LimitExceeded, match="too big"):
        drive(upload_plan(core, "c" * 64, "f", io.BytesIO(b"x" * 3_000_000), size=3_000_000), d, answer)
    assert [m["event"] for m in d.received].count("upload-chunk") == 1  # it stopped at the refusal

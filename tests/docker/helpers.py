"""Protocol helpers for tests: run a command and gather exactly what a client saw."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import trio

from sandboxd.client import Client, output_bytes

OUTPUT = ("execution-output", "exec-output")
COMPLETE = ("execution-complete", "exec-finished")


@dataclass
class Seen:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    complete: dict[str, Any] | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, {k: v for k, v in data.items() if k != "ref"}))
        if name in OUTPUT:
            stream = self.stdout if data["type"] == "stdout" else self.stderr
            assert data["seq"] == len(stream), f"gap or duplicate at {data['seq']} (have {len(stream)})"
            stream += output_bytes(data)
        elif name in COMPLETE:
            self.complete = data


async def follow(client: Client, execution_id: str, timeout: float = 60, *, seen: Seen | None = None,
                 until: Any = None) -> Seen:
    """Read events until ``execution_id`` completes (or ``until(seen)`` holds).

    Other executions' events are ignored.
    """
    seen = seen or Seen()
    with trio.fail_after(timeout):
        while seen.complete is None and not (until and until(seen)):
            ev = await client.next_event()
            if isinstance(ev.data, dict) and ev.data.get("executionId") == execution_id:
                seen.add(ev.name, ev.data)
    return seen


async def run(client: Client, container_id: str, command: list[str], timeout: float = 60, **extra: Any) -> Seen:
    accepted = await client.call("execute-command", {"containerId": container_id, "command": command, **extra})
    return await follow(client, accepted["executionId"], timeout)


async def expect_event(client: Client, name: str, timeout: float = 10) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            ev = await client.next_event()
            if ev.name == name:
                return ev.data


@contextmanager
def static_site(files: dict[str, Callable[[], tuple[bytes, str]]]) -> Iterator[str]:
    """A web server on another 127.0.0.1 port (another origin than the daemon's):
    ``files`` maps each path to a function giving its body and content type. Yields
    ``http://127.0.0.1:PORT``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            found = files.get(self.path.split("?")[0])
            body, content_type = found() if found else (b"", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)

"""A raw trio-websocket client for the sandboxd protocol, for tests and protocol work.

Applications (and the ``sandboxd`` CLI) use the SDK, :mod:`sandboxd.sdk`; this client
shows the wire as it is: every event, raw frames through ``client.ws``, no reconnects.

Example::

    async with open_client("ws://127.0.0.1:8765/sandbox/ws") as client:
        created = await client.call("create-container", {"image": "sandboxd/base"})
        result = await client.run(["echo", "hi"], container_id=created["containerId"],
                                  on_output=lambda stream, data: print(stream, data))
"""

from __future__ import annotations

import collections
import itertools
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

import msgspec
import trio
import trio_websocket

from .errors import SandboxdError
from .output import chunk_bytes
from .protocol import decode_binary_output
from .sdk._env import DEFAULT_URL, default_url
from .sdk._errors import DaemonUnavailable, collapse_groups

__all__ = ["DEFAULT_URL", "Client", "DaemonUnavailable", "Event", "collapse_groups", "default_url", "open_client"]


@dataclass
class Event:
    name: str
    data: Any


class Client:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self._refs = itertools.count(1)
        self._pending: collections.deque[Event] = collections.deque()

    async def send(self, event: str, data: Any = None) -> None:
        try:
            await self.ws.send_message(
                msgspec.json.encode({"event": event, "data": data if data is not None else {}}).decode()
            )
        except trio_websocket.ConnectionClosed as exc:
            raise DaemonUnavailable(f"connection to the daemon closed ({exc.reason})") from None

    async def _receive(self) -> Event:
        try:
            message = await self.ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise DaemonUnavailable(f"connection to the daemon closed ({exc.reason})") from None
        if isinstance(message, bytes):
            execution_id, stream, seq, data = decode_binary_output(message)
            return Event("execution-output", {
                "executionId": execution_id, "type": stream, "seq": seq, "raw": data,
            })
        frame = msgspec.json.decode(message)
        return Event(frame["event"], frame.get("data"))

    async def next_event(self) -> Event:
        """The next event from the daemon (including those passed over by :meth:`call`)."""
        if self._pending:
            return self._pending.popleft()
        return await self._receive()

    async def call(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``event`` and return the data of the reply carrying its ref.

        Raises:
            SandboxdError: the daemon answered with an ``error`` (typed by its code).
        """
        ref = f"c{next(self._refs)}"
        await self.send(event, {**(data or {}), "ref": ref})
        while True:
            ev = await self._receive()
            if isinstance(ev.data, dict) and ev.data.get("ref") == ref:
                if ev.name == "error":
                    raise SandboxdError.from_code(ev.data.get("code", "INTERNAL"), ev.data.get("message", ""))
                return ev.data
            self._pending.append(ev)

    async def run(
        self,
        command: Sequence[str],
        *,
        container_id: str | None = None,
        image: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        timeout: float | None = None,
        stdin: Callable[[], Awaitable[bytes]] | None = None,
        on_output: Callable[[str, bytes], Any] | None = None,
        on_accepted: Callable[[dict[str, Any]], Any] | None = None,
    ) -> dict[str, Any]:
        """Run a command and follow it to the end; return ``execution-complete``'s data.

        ``stdin``, when given, is called for chunks of input until it returns ``b""``;
        ``on_output(stream, data)`` gets the exact bytes of each output chunk.
        """
        request = execute_request(command, stdin=stdin is not None, containerId=container_id, image=image,
                                  env=env, workdir=workdir, timeout=timeout)
        accepted = await self.call("execute-command", request)
        execution_id = accepted["executionId"]
        if on_accepted is not None:
            on_accepted(accepted)
        with collapse_groups():
            async with trio.open_nursery() as nursery:
                if stdin is not None:
                    nursery.start_soon(self._pump_stdin, execution_id, stdin)
                result = await self.wait_complete(execution_id, on_output)
                nursery.cancel_scope.cancel()
                return result

    async def follow(
        self,
        execution_id: str,
        *,
        since: dict[str, int] | None = None,
        on_output: Callable[[str, bytes], Any] | None = None,
    ) -> dict[str, Any]:
        """Attach to an execution (replaying from ``since`` offsets per stream) and follow
        it to the end; return ``execution-complete``'s data."""
        await self.call("attach-execution", {"executionId": execution_id, "since": since or {}})
        return await self.wait_complete(execution_id, on_output)

    async def wait_complete(self, execution_id: str, on_output: Callable[[str, bytes], Any] | None) -> dict[str, Any]:
        """Pass ``execution_id``'s output to ``on_output`` until it ends; return
        ``execution-complete``'s data (for an execution this client already follows)."""
        while True:
            ev = await self.next_event()
            data = ev.data if isinstance(ev.data, dict) else {}
            if data.get("executionId") != execution_id:
                continue
            if ev.name in ("execution-output", "exec-output"):
                if on_output is not None:
                    on_output(data["type"], output_bytes(data))
            elif ev.name in ("execution-complete", "exec-finished"):
                return data
            elif ev.name == "error":
                raise SandboxdError.from_code(data.get("code", "INTERNAL"), data.get("message", ""))

    async def use_binary_output(self) -> None:
        """Ask for output as binary frames: raw bytes, no JSON or base64 on either side."""
        await self.call("configure-session", {"binaryOutput": True})

    async def _pump_stdin(self, execution_id: str, read: Callable[[], Awaitable[bytes]]) -> None:
        import base64

        while data := await read():
            await self.send("stdin-data", {
                "executionId": execution_id, "data": base64.b64encode(data).decode(), "encoding": "base64",
            })
        await self.send("stdin-close", {"executionId": execution_id})


@asynccontextmanager
async def open_client(
    url: str | None = None, *, token: str | None = None, connect_timeout: float = 10.0
) -> AsyncIterator[Client]:
    """Connect to the daemon at ``url`` (default: ``$SANDBOXD_URL``, else :data:`DEFAULT_URL`).

    ``token`` (default ``$SANDBOXD_TOKEN``) is sent as ``Authorization: Bearer``.

    Raises:
        DaemonUnavailable: the daemon cannot be reached or refused the handshake.
    """
    url = url or default_url()
    token = token or os.environ.get("SANDBOXD_TOKEN")
    headers = [("Authorization", f"Bearer {token}")] if token else None
    with collapse_groups():
        async with _open(url, headers, connect_timeout) as client:
            yield client


@asynccontextmanager
async def _open(url: str, headers: Any, connect_timeout: float) -> AsyncIterator[Client]:
    connected = False
    try:
        async with trio_websocket.open_websocket_url(
            url,
            max_message_size=64 * 1024 * 1024,
            message_queue_size=8,
            receive_buffer_size=1024 * 1024,
            connect_timeout=connect_timeout,
            disconnect_timeout=2,
            extra_headers=headers,
        ) as ws:
            connected = True
            yield Client(ws)
    except _CONNECT_ERRORS as exc:
        if connected:
            raise
        raise DaemonUnavailable(f"cannot reach the sandboxd daemon at {url}: {_describe(exc)}") from None


_CONNECT_ERRORS = (
    OSError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionRejected,
    trio_websocket.ConnectionTimeout,
)


def execute_request(command: Sequence[str], **fields: Any) -> dict[str, Any]:
    """An ``execute-command`` data object; fields that are None or empty are left out."""
    request: dict[str, Any] = {"command": list(command)}
    request.update({k: v for k, v in fields.items() if v or v is False})
    return request


def output_bytes(data: dict[str, Any]) -> bytes | memoryview:
    """The exact bytes an ``execution-output`` event carries, in either wire form."""
    raw = data.get("raw")
    if raw is not None:
        return raw
    return chunk_bytes(data["data"], data.get("encoding") == "base64")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionRejected):
        body = (exc.body or b"").decode("utf-8", "replace").strip()
        return f"HTTP {exc.status_code}" + (f": {body}" if body else "")
    if isinstance(exc, trio_websocket.ConnectionTimeout):
        return "timed out"
    return str(exc) or type(exc).__name__

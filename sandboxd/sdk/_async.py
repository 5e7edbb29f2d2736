"""The async API, for asyncio and trio: :class:`AsyncClient`, :class:`AsyncSandbox`,
:class:`AsyncExecution`, :class:`AsyncFiles`. Each mirrors its sync twin in
:mod:`sandboxd.sdk._sync` (same arguments, same results), with ``await``.

Callbacks may be plain functions or coroutine functions; they run in the task that
consumes their execution (``run``, ``wait``, ``async for ... in output()``).
"""

from __future__ import annotations

import inspect
import ssl
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from ._async_io import AsyncConnection
from ._common import (
    ChunkCallback,
    HandleBase,
    OutputSink,
    TextCallback,
    create_request,
    execute_request,
    kill_request,
    stdin_payload,
)
from ._env import default_token
from ._files import AsyncFiles
from ._types import ExecutionInfo, ExecutionResult, FileContent, OutputChunk, SandboxInfo


class AsyncClient:
    """One connection to a sandboxd daemon; see :class:`sandboxd.sdk.Client` for the arguments."""

    def __init__(self, url: str | None = None, *, token: str | None = None, connect_timeout: float = 10.0,
                 reconnect_timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._conn = AsyncConnection(url, token or default_token(), connect_timeout=connect_timeout,
                                     reconnect_timeout=reconnect_timeout, ssl_context=ssl_context)

    @property
    def url(self) -> str:
        return self._conn.core.endpoint.url

    async def _call(self, event: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self._conn.call(event, data, **kw)

    async def create_sandbox(self, image: str | None = None, *, labels: Mapping[str, str] | None = None,
                             memory_bytes: int | None = None, cpus: float | None = None,
                             pids_limit: int | None = None, ttl_seconds: float | None = None,
                             placement: Mapping[str, Any] | None = None) -> AsyncSandbox:
        """``placement``: ``{"engine": NAME}`` and/or ``{"labels": {...}}`` when the daemon
        drives several engines."""
        reply = await self._call("create-container", create_request(image, labels, memory_bytes, cpus, pids_limit,
                                                                      ttl_seconds, placement))
        return AsyncSandbox(self, reply["containerId"], reply.get("image", image or ""), owns=True)

    async def sandbox(self, sandbox_id: str) -> AsyncSandbox:
        info = SandboxInfo.from_wire(await self._call("inspect-container", {"containerId": sandbox_id}))
        return AsyncSandbox(self, info.id, info.image, owns=False)

    async def sandboxes(self) -> list[SandboxInfo]:
        return [SandboxInfo.from_wire(d) for d in (await self._call("list-containers", {}))["containers"]]

    async def remove_sandbox(self, sandbox_id: str) -> str:
        """Remove a sandbox (running commands in it are stopped); return its full id."""
        return (await self._call("remove-container", {"containerId": sandbox_id}))["containerId"]

    async def engines(self) -> list[dict[str, Any]]:
        """The daemon's engines: name, url, state ("up"/"down"), sandboxes, running executions."""
        return list((await self._call("list-engines", {}))["engines"])

    async def images(self) -> list[dict[str, Any]]:
        """Images and the engines that have them: ``[{"image", "engines": [...]}]``."""
        return list((await self._call("list-images", {}))["images"])

    async def executions(self, sandbox_id: str | None = None) -> list[ExecutionInfo]:
        data = {"containerId": sandbox_id} if sandbox_id else {}
        return [ExecutionInfo.from_wire(d) for d in (await self._call("list-executions", data))["executions"]]

    async def start(
        self, command: Sequence[str] | str, *, sandbox_id: str | None = None, image: str | None = None,
        timeout: float | None = None, env: Mapping[str, str] | None = None, workdir: str | None = None,
        files: Mapping[str, FileContent] | None = None, stdin: bool | str | bytes = False, tty: bool = False,
        cols: int | None = None, rows: int | None = None, on_stdout: TextCallback | None = None,
        on_stderr: TextCallback | None = None, on_output: ChunkCallback | None = None, capture: bool = True,
        user: str | None = None,
    ) -> AsyncExecution:
        """Start ``command`` in sandbox ``sandbox_id``, or in a new one-off sandbox from
        ``image`` that is removed when the command ends. See :meth:`Sandbox.start`."""
        core = self._conn.core
        keep_open = stdin is not False
        request = execute_request(sandbox_id, command, image=image, env=env, workdir=workdir, timeout=timeout,
                                  files=files, stdin=keep_open, tty=tty, cols=cols, rows=rows, user=user)
        reply = await self._call("execute-command", request, on_reply=lambda r: core.track(
            r["executionId"], r["containerId"], live=True, stdin=keep_open or tty))
        handle = AsyncExecution(self, core.executions[reply["executionId"]],
                                OutputSink(on_stdout, on_stderr, on_output, capture))
        if isinstance(stdin, (str, bytes)):
            if stdin:
                await handle.send_stdin(stdin)
            await handle.close_stdin()
        return handle

    async def attach(self, execution_id: str, *, since: Mapping[str, int] | None = None, follow: bool = True,
                     on_stdout: TextCallback | None = None, on_stderr: TextCallback | None = None,
                     on_output: ChunkCallback | None = None, capture: bool = True) -> AsyncExecution:
        st = self._conn.core.attach(execution_id, dict(since or {}), follow=follow)
        handle = AsyncExecution(self, st, OutputSink(on_stdout, on_stderr, on_output, capture))
        await self._conn.flush()
        await self._conn.wait(lambda: st.attach is None or st.error is not None)
        if st.error is not None:
            self._conn.core.forget(execution_id)
            raise st.error
        return handle

    async def ping(self) -> None:
        await self._call("ping", {})

    async def aclose(self) -> None:
        await self._conn.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def _on(client: AsyncClient | None, url: str | None, token: str | None,
              make: Callable[[AsyncClient], Awaitable[AsyncSandbox]]) -> AsyncSandbox:
    """``await make(client)``, on a new connection (owned by the sandbox) if ``client`` is None."""
    own = client is None
    client = client or AsyncClient(url, token=token)
    try:
        sbx = await make(client)
    except BaseException:
        if own:
            await client.aclose()
        raise
    sbx._owns_client = own
    return sbx


class AsyncSandbox:
    """A sandbox; see :class:`sandboxd.sdk.Sandbox`. ``async with await AsyncSandbox.create(...)``."""

    def __init__(self, client: AsyncClient, sandbox_id: str, image: str, *, owns: bool,
                 owns_client: bool = False) -> None:
        self.client = client
        self.id = sandbox_id
        self.image = image
        self.files = AsyncFiles(self)
        self._owns = owns
        self._owns_client = owns_client

    @classmethod
    async def create(cls, image: str | None = None, *, url: str | None = None, token: str | None = None,
                     client: AsyncClient | None = None, labels: Mapping[str, str] | None = None,
                     memory_bytes: int | None = None, cpus: float | None = None, pids_limit: int | None = None,
                     ttl_seconds: float | None = None, placement: Mapping[str, Any] | None = None) -> AsyncSandbox:
        return await _on(client, url, token, lambda c: c.create_sandbox(
            image, labels=labels, memory_bytes=memory_bytes, cpus=cpus, pids_limit=pids_limit,
            ttl_seconds=ttl_seconds, placement=placement))

    @classmethod
    async def connect(cls, sandbox_id: str, *, url: str | None = None, token: str | None = None,
                      client: AsyncClient | None = None) -> AsyncSandbox:
        return await _on(client, url, token, lambda c: c.sandbox(sandbox_id))

    @staticmethod
    async def list(*, url: str | None = None, token: str | None = None) -> list[SandboxInfo]:
        async with AsyncClient(url, token=token) as client:
            return await client.sandboxes()

    async def run(self, command: Sequence[str] | str, *, timeout: float | None = None,
                  env: Mapping[str, str] | None = None, workdir: str | None = None,
                  files: Mapping[str, FileContent] | None = None, stdin: str | bytes | None = None, tty: bool = False,
                  cols: int | None = None, rows: int | None = None, on_stdout: TextCallback | None = None,
                  on_stderr: TextCallback | None = None, on_output: ChunkCallback | None = None,
                  capture: bool = True, user: str | None = None) -> ExecutionResult:
        h = await self.start(command, timeout=timeout, env=env, workdir=workdir, files=files,
                             stdin=stdin if stdin is not None else False, tty=tty, cols=cols, rows=rows,
                             on_stdout=on_stdout, on_stderr=on_stderr, on_output=on_output, capture=capture, user=user)
        return await h.wait()

    async def start(self, command: Sequence[str] | str, *, timeout: float | None = None,
                    env: Mapping[str, str] | None = None, workdir: str | None = None,
                    files: Mapping[str, FileContent] | None = None, stdin: bool | str | bytes = False,
                    tty: bool = False, cols: int | None = None, rows: int | None = None,
                    on_stdout: TextCallback | None = None, on_stderr: TextCallback | None = None,
                    on_output: ChunkCallback | None = None, capture: bool = True, user: str | None = None) -> AsyncExecution:
        return await self.client.start(
            command, sandbox_id=self.id, timeout=timeout, env=env, workdir=workdir, files=files, stdin=stdin,
            tty=tty, cols=cols, rows=rows, on_stdout=on_stdout, on_stderr=on_stderr, on_output=on_output,
            capture=capture, user=user)

    async def attach(self, execution_id: str, **kw: Any) -> AsyncExecution:
        return await self.client.attach(execution_id, **kw)

    async def executions(self) -> list[ExecutionInfo]:
        return await self.client.executions(self.id)

    async def info(self) -> SandboxInfo:
        return SandboxInfo.from_wire(await self.client._call("inspect-container", {"containerId": self.id}))

    async def remove(self) -> None:
        await self.client.remove_sandbox(self.id)
        self._owns = False

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._owns:
                await self.remove()
        finally:
            await self.aclose()


class AsyncExecution(HandleBase):
    """A running (or finished) command; see :class:`sandboxd.sdk.Execution`."""

    async def _next(self) -> OutputChunk | None:
        conn, st = self.client._conn, self._st
        await conn.wait(lambda: st.has_news)
        chunk = conn.core.pop_chunk(st.id)
        if chunk is None and st.error is not None:
            raise st.error
        await conn.flush()
        return chunk

    async def _deliver(self, results: list[Any]) -> None:
        for r in results:
            if inspect.isawaitable(r):
                await r

    async def output(self) -> AsyncIterator[OutputChunk]:
        while (chunk := await self._next()) is not None:
            await self._deliver(self._sink.deliver(chunk))
            yield chunk

    async def wait(self, timeout: float | None = None) -> ExecutionResult:
        if self._result is not None:
            return self._result
        async with self.client._conn._backend().timeout(timeout):
            while (chunk := await self._next()) is not None:
                await self._deliver(self._sink.deliver(chunk))
        await self._deliver(self._sink.finish())
        return self._finish()

    async def send_stdin(self, data: str | bytes) -> None:
        await self._control("stdin-data", {"executionId": self.id, **stdin_payload(data)})

    async def close_stdin(self) -> None:
        await self._control("stdin-close", {"executionId": self.id})
        self._st.stdin_open = False

    async def resize(self, cols: int, rows: int) -> None:
        await self._control("resize", {"executionId": self.id, "cols": cols, "rows": rows})

    async def kill(self, signal: str | int = "TERM") -> None:
        self._join_if_needed()
        await self.client._call("kill", kill_request(self.id, signal))

    async def _control(self, event: str, data: dict[str, Any]) -> None:
        self._queue_control(event, data)
        await self.client._conn.flush()

"""One SDK behaviour suite, three flavours: the sync API seen through an awaitable proxy,
so the same ``async def`` test body runs on ``Sandbox`` (sync), and on ``AsyncSandbox``
under asyncio and under trio.

Every body runs under a hard deadline (``DEADLINE`` seconds, raised as TimeoutError).
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import threading
from typing import Any, Awaitable, Callable

import trio

import sandboxd.sdk as sdk

DEADLINE = 120.0
FLAVOURS = ["sync", "asyncio", "trio"]


class SyncAsAsync:
    """Wraps a sync SDK object so that its methods can be awaited and its iterators
    iterated with ``async for`` (a sync call simply runs to the end)."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    async def __aenter__(self) -> SyncAsAsync:
        self._obj.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._obj.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._obj, name)
        if not callable(value) or isinstance(value, type):
            return _wrap(value)

        def call(*args: Any, **kw: Any) -> Any:
            result = value(*args, **kw)
            if inspect.isgenerator(result):
                return _AsyncIter(result)
            return _Ready(_wrap(result))

        return call


class _Ready:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.value
        yield  # pragma: no cover - makes this a generator


class _AsyncIter:
    def __init__(self, it: Any) -> None:
        self.it = it

    def __aiter__(self) -> _AsyncIter:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self.it)
        except StopIteration:
            raise StopAsyncIteration from None


def _wrap(value: Any) -> Any:
    if isinstance(value, (sdk.Sandbox, sdk.Execution, sdk.Files, sdk.Client)):
        return SyncAsAsync(value)
    return value


class Flavour:
    """The SDK entry points of one flavour, awaitable in all three."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def create(self, **kw: Any) -> Any:
        if self.name == "sync":
            return SyncAsAsync(sdk.Sandbox.create(**kw))
        return await sdk.AsyncSandbox.create(**kw)

    async def connect(self, sandbox_id: str, **kw: Any) -> Any:
        if self.name == "sync":
            return SyncAsAsync(sdk.Sandbox.connect(sandbox_id, **kw))
        return await sdk.AsyncSandbox.connect(sandbox_id, **kw)

    def client(self, url: str, **kw: Any) -> Any:
        return SyncAsAsync(sdk.Client(url, **kw)) if self.name == "sync" else sdk.AsyncClient(url, **kw)

    async def close(self, obj: Any) -> None:
        if self.name == "sync":
            obj.close()
        else:
            await obj.aclose()

    def run(self, body: Callable[[Flavour], Awaitable[Any]]) -> Any:
        """Run ``body(self)`` to the end under this flavour's event loop, within DEADLINE."""
        if self.name == "trio":
            async def main() -> Any:
                with trio.fail_after(DEADLINE):
                    return await body(self)
            return trio.run(main)

        async def amain() -> Any:
            async with asyncio.timeout(DEADLINE):
                return await body(self)
        if self.name == "asyncio":
            return asyncio.run(amain())
        # Sync calls block the loop, so asyncio.timeout could not interrupt them: SIGALRM can.
        def expire(*_: Any) -> None:
            raise TimeoutError(f"the test body took more than {DEADLINE:g} s")
        previous = signal.signal(signal.SIGALRM, expire)
        signal.alarm(int(DEADLINE))
        try:
            return asyncio.run(amain())
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 that cuts every connection after ``cut_after`` bytes went
    from the daemon to the client (a flaky network, made deterministic)."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts = 0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.cut_after), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

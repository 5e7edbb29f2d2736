"""The async flavour's driver, for asyncio and trio alike (picked by sniffio at connect).

No background task and no thread: whichever coroutine is waiting for something (a reply,
output, the end) takes the *reader* role, reads one batch from the socket and feeds the
core; the others sleep on a "progress" event that the reader sets after each batch, then
look again. When the reader gets what it waited for it hands the role on. So any number
of executions share one connection from one event loop, and callbacks run in the task
that consumes their execution.
"""

from __future__ import annotations

import ssl
import time
from typing import Any, Callable, Protocol

import sniffio

from ..endpoint import unreachable_message
from ._common import IDLE_PROBE_SECONDS, Backoff, reason_of
from ._core import ClientCore
from ._errors import AuthenticationFailed, DaemonUnavailable

_RECV = 256 * 1024


class _Stream(Protocol):
    async def send_all(self, data: bytes) -> None: ...
    async def receive_some(self) -> bytes: ...
    async def aclose(self) -> None: ...


class _Backend(Protocol):
    def event(self) -> Any: ...
    def lock(self) -> Any: ...
    async def sleep(self, seconds: float) -> None: ...
    def timeout(self, seconds: float | None) -> Any: ...
    async def connect(self, host: str, port: int, ctx: ssl.SSLContext | None, timeout: float) -> _Stream: ...


class _AsyncioStream:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader, self.writer = reader, writer

    async def send_all(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive_some(self) -> bytes:
        return await self.reader.read(_RECV)

    async def aclose(self) -> None:
        self.writer.close()


class _Asyncio:
    def __init__(self) -> None:
        import asyncio

        self.aio = asyncio

    def event(self) -> Any:
        return self.aio.Event()

    def lock(self) -> Any:
        return self.aio.Lock()

    async def sleep(self, seconds: float) -> None:
        await self.aio.sleep(seconds)

    def timeout(self, seconds: float | None) -> Any:
        return self.aio.timeout(seconds)

    async def connect(self, host: str, port: int, ctx: ssl.SSLContext | None, timeout: float) -> _Stream:
        async with self.aio.timeout(timeout):
            reader, writer = await self.aio.open_connection(
                host, port, ssl=ctx, server_hostname=host if ctx else None, limit=_RECV)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _AsyncioStream(reader, writer)


class _TrioStream:
    def __init__(self, stream: Any) -> None:
        import trio

        self.stream = stream
        # Another task closing the stream, or the peer breaking it: a lost connection.
        self._broken = (trio.BrokenResourceError, trio.ClosedResourceError)

    async def send_all(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except self._broken as exc:
            raise ConnectionError(str(exc) or type(exc).__name__) from None

    async def receive_some(self) -> bytes:
        try:
            return await self.stream.receive_some(_RECV)
        except self._broken as exc:
            raise ConnectionError(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        import trio

        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self.stream.aclose()


class _Trio:
    def __init__(self) -> None:
        import trio

        self.trio = trio

    def event(self) -> Any:
        return self.trio.Event()

    def lock(self) -> Any:
        return self.trio.Lock()

    async def sleep(self, seconds: float) -> None:
        await self.trio.sleep(seconds)

    def timeout(self, seconds: float | None) -> Any:
        return _trio_timeout(self.trio, seconds)

    async def connect(self, host: str, port: int, ctx: ssl.SSLContext | None, timeout: float) -> _Stream:
        trio = self.trio
        with trio.fail_after(timeout):
            stream: Any = await trio.open_tcp_stream(host, port)
            if ctx is not None:
                stream = trio.SSLStream(stream, ctx, server_hostname=host, https_compatible=True)
                await stream.do_handshake()
        return _TrioStream(stream)


class _trio_timeout:
    """``trio.fail_after`` that raises the builtin TimeoutError, as asyncio.timeout does."""

    def __init__(self, trio: Any, seconds: float | None) -> None:
        self.trio, self.seconds = trio, seconds

    async def __aenter__(self) -> None:
        self.cm = self.trio.fail_after(self.seconds) if self.seconds is not None else None
        if self.cm is not None:
            self.cm.__enter__()

    async def __aexit__(self, *exc: Any) -> bool:
        if self.cm is None:
            return False
        try:
            return bool(self.cm.__exit__(*exc))
        except self.trio.TooSlowError:
            raise TimeoutError from None


def current_backend() -> _Backend:
    library = sniffio.current_async_library()
    if library == "trio":
        return _Trio()
    if library == "asyncio":
        return _Asyncio()
    raise RuntimeError(f"the sandboxd SDK runs under asyncio or trio, not {library}")


class AsyncConnection:
    def __init__(self, url: str | None, token: str | None, *, connect_timeout: float,
                 reconnect_timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self.core = ClientCore(url, token)
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._ssl = ssl_context
        self._io: _Backend | None = None
        self._stream: _Stream | None = None
        self._reading = False
        self._progress: Any = None
        self._send_lock: Any = None
        self._last_rx = 0.0

    def _backend(self) -> _Backend:
        if self._io is None:
            self._io = current_backend()
            self._progress = self._io.event()
            self._send_lock = self._io.lock()
        return self._io

    # --- connecting ------------------------------------------------------------

    async def _connect(self) -> None:
        io, ep = self._backend(), self.core.endpoint
        self.core.connect()
        ctx = (self._ssl or ssl.create_default_context()) if ep.tls else None
        try:
            self._stream = await io.connect(ep.host, ep.port, ctx, self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            self.core.connection_lost()
            raise DaemonUnavailable(unreachable_message(ep.url, exc)) from None
        except BaseException as exc:
            self.core.connection_lost()
            if type(exc).__name__ == "TooSlowError":
                raise DaemonUnavailable(f"cannot reach the sandboxd daemon at {ep.url}: timed out") from None
            raise
        try:
            async with io.timeout(self.connect_timeout):
                await self._flush()
                while not self.core.is_open:
                    await self._receive()
        except TimeoutError:
            await self._drop()
            raise DaemonUnavailable(f"the sandboxd daemon at {ep.url} did not answer the handshake") from None
        except BaseException:
            await self._drop()
            raise

    async def _reconnect(self, reason: str = "the connection to the daemon was lost") -> None:
        io = self._backend()
        await self._drop(reason)
        backoff = Backoff(self.core, self.reconnect_timeout)
        while True:
            try:
                await self._connect()
                return
            except AuthenticationFailed as exc:
                self.core.fail_all(exc)
                raise
            except (OSError, DaemonUnavailable) as exc:
                error: BaseException = exc
            await io.sleep(backoff.next_delay(error))

    async def _drop(self, reason: str = "the connection to the daemon was lost") -> None:
        stream, self._stream = self._stream, None
        if self.core.wire is not None:
            self.core.connection_lost(reason)
        if stream is not None:
            try:
                await stream.aclose()
            except Exception:  # noqa: BLE001 - closing a broken stream; nothing to report
                pass

    # --- moving bytes ----------------------------------------------------------

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self.core.data_to_send()
            if data and self._stream is not None:
                stream = self._stream
                try:
                    await stream.send_all(data)
                except BaseException:
                    # Part of a frame may be out: this connection cannot carry on.
                    if self._stream is stream:
                        self._stream = None
                        self.core.connection_lost()
                    raise

    async def _receive(self) -> None:
        assert self._stream is not None
        data = await self._stream.receive_some()
        self._last_rx = time.monotonic()
        self.core.receive_data(data)

    async def wait(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        """Until ``done()``: read as the reader, or sleep until the reader made progress.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            DaemonUnavailable: the daemon stayed unreachable for ``reconnect_timeout``.
        """
        io = self._backend()
        async with io.timeout(timeout):
            while not done():
                if self.core.closed:
                    raise DaemonUnavailable("the client is closed")
                if self._reading:
                    await self._progress.wait()
                    continue
                self._reading = True
                try:
                    await self._pump()
                finally:
                    self._reading = False
                    progress, self._progress = self._progress, io.event()
                    progress.set()

    async def _pump(self) -> None:
        try:
            if self._stream is None:
                if self.core.connections == 0:
                    await self._connect()  # the first connection: fail at once, no retries
                else:
                    await self._reconnect()
                return
            await self._flush()
            await self._receive()
            await self._flush()
        except AuthenticationFailed:
            raise
        except (OSError, DaemonUnavailable) as exc:
            if self.core.closed:  # aclose() ran while we were reading
                raise DaemonUnavailable("the client is closed") from None
            if self.core.connections == 0:
                await self._drop()
                raise exc if isinstance(exc, DaemonUnavailable) else DaemonUnavailable(str(exc)) from None
            await self._reconnect(reason_of(exc))

    async def flush(self) -> None:
        """Send what is queued; a broken connection is left for the next :meth:`wait`."""
        if self._stream is None:
            return
        try:
            await self._flush()
        except OSError:
            await self._drop()

    async def call(self, event: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if self._stream is not None and not self._reading and time.monotonic() - self._last_rx > IDLE_PROBE_SECONDS:
            probe = self.core.call("ping", {})
            await self.wait(lambda: probe.done)
        c = self.core.call(event, data, **kw)
        await self.flush()
        await self.wait(lambda: c.done)
        return c.result()

    async def aclose(self) -> None:
        """Close cleanly: a close frame, then wait (up to 1 s) for the daemon to hang up, so
        unread bytes do not turn our close into a reset. Idempotent."""
        stream = self._stream
        try:
            if stream is not None and self.core.wire is not None:
                self.core.wire.close()
                try:
                    async with self._backend().timeout(1.0):
                        await stream.send_all(self.core.wire.data_to_send())
                        while not self._reading and await stream.receive_some():
                            pass
                except (OSError, TimeoutError, DaemonUnavailable):
                    pass
        finally:
            self.core.closed = True
            await self._drop()

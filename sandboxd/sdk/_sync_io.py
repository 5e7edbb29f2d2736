"""The sync flavour's driver: one blocking socket, no threads.

Whatever call is waiting (a request, ``wait()``, iterating output) reads the socket and
feeds the core, so callbacks run in the caller's thread, inside that call. A connection
that drops is replaced and resumed within ``reconnect_timeout``.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Callable

from ..endpoint import unreachable_message
from ._common import IDLE_PROBE_SECONDS, Backoff, reason_of
from ._core import ClientCore
from ._errors import AuthenticationFailed, DaemonUnavailable

_RECV = 256 * 1024


class SyncConnection:
    def __init__(self, url: str | None, token: str | None, *, connect_timeout: float,
                 reconnect_timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self.core = ClientCore(url, token)
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._ssl = ssl_context
        self._sock: socket.socket | None = None
        self._last_rx = 0.0

    # --- connecting ------------------------------------------------------------

    def _connect(self) -> None:
        ep = self.core.endpoint
        self.core.connect()
        deadline = time.monotonic() + self.connect_timeout
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise DaemonUnavailable(unreachable_message(ep.url, exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ep.tls:
                sock = (self._ssl or ssl.create_default_context()).wrap_socket(sock, server_hostname=ep.host)
            self._sock = sock
            self._flush()
            while not self.core.is_open:
                self._receive(deadline)
            sock.settimeout(None)
        except TimeoutError:
            self._drop()
            raise DaemonUnavailable(f"the sandboxd daemon at {ep.url} did not answer the handshake") from None
        except BaseException:
            self._drop()
            raise

    def _reconnect(self, reason: str = "the connection to the daemon was lost") -> None:
        """Replace a broken connection, with backoff, for up to ``reconnect_timeout``."""
        self._drop(reason)
        backoff = Backoff(self.core, self.reconnect_timeout)
        while True:
            try:
                self._connect()
                return
            except AuthenticationFailed as exc:
                self.core.fail_all(exc)
                raise
            except (OSError, DaemonUnavailable) as exc:
                error: BaseException = exc
            time.sleep(backoff.next_delay(error))

    def _drop(self, reason: str = "the connection to the daemon was lost") -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        if self.core.wire is not None:
            self.core.connection_lost(reason)

    # --- moving bytes ----------------------------------------------------------

    def _flush(self) -> None:
        data = self.core.data_to_send()
        if data:
            assert self._sock is not None
            self._sock.sendall(data)

    def _receive(self, deadline: float | None) -> None:
        assert self._sock is not None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(_RECV)
        finally:
            if deadline is not None and self._sock is not None:
                self._sock.settimeout(None)
        self._last_rx = time.monotonic()
        self.core.receive_data(data)
        self._flush()

    def wait(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        """Read and dispatch frames until ``done()``; reconnect if the connection drops.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            DaemonUnavailable: the daemon stayed unreachable for ``reconnect_timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.core.closed and not done():
            raise DaemonUnavailable("the client is closed")
        while not done():
            try:
                if self._sock is None:
                    if self.core.connections == 0:
                        self._connect()  # the first connection: fail at once, no retries
                    else:
                        self._reconnect()
                    continue
                self._flush()
                self._receive(deadline)
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"not done after {timeout:g} s") from None
                self._reconnect("the connection to the daemon timed out")
            except AuthenticationFailed:
                raise
            except (OSError, DaemonUnavailable) as exc:
                if self.core.connections == 0 or self.core.closed:
                    self._drop()
                    raise exc if isinstance(exc, DaemonUnavailable) else DaemonUnavailable(str(exc)) from None
                self._reconnect(reason_of(exc))

    def flush(self) -> None:
        """Send what is queued; a broken connection is left for the next :meth:`wait`."""
        if self._sock is None:
            return
        try:
            self._flush()
        except OSError:
            self._drop()

    def call(self, event: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if self._sock is not None and time.monotonic() - self._last_rx > IDLE_PROBE_SECONDS:
            probe = self.core.call("ping", {})
            self.wait(lambda: probe.done)
        c = self.core.call(event, data, **kw)
        self.wait(lambda: c.done)
        return c.result()

    def close(self) -> None:
        """Close cleanly: a close frame, then wait (up to 1 s) for the daemon to hang up, so
        unread bytes do not turn our close into a reset. Idempotent."""
        if self._sock is not None and self.core.wire is not None:
            self.core.wire.close()
            try:
                self._sock.settimeout(1.0)
                self._sock.sendall(self.core.wire.data_to_send())
                while self._sock.recv(_RECV):
                    pass
            except OSError:
                pass
        self.core.closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

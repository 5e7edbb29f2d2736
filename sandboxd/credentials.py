"""Open sessions' credentials, checked again when plugins reload (token revocation).

Each authenticated session is registered with the request it was authenticated by
and a way to close it. When a plugin says its outside state changed
(``sandboxd_reload``: a tokens file was edited, or SIGHUP), every registered session
is authenticated again with its original request; one that no longer gets the same
principal is closed with WebSocket code 1008 (policy violation), which ends its
session and so its output. A plugin that fails meanwhile closes it too (fail closed).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Awaitable, Callable, Iterator

import trio

from .errors import SandboxdError
from .plugin_types import HTTPRequest, Principal
from .plugins import Plugins

log = logging.getLogger(__name__)

#: WebSocket close code for a session whose credentials were revoked.
CLOSE_REVOKED = 1008

Close = Callable[[int, str], Awaitable[None]]


class OpenCredentials:
    def __init__(self, plugins: Plugins, reload_interval: float) -> None:
        self.plugins = plugins
        self.reload_interval = reload_interval
        self._open: dict[object, tuple[HTTPRequest, Principal, Close]] = {}
        self._reload_now = trio.Event()

    @contextlib.contextmanager
    def holding(self, request: HTTPRequest, principal: Principal, close: Close) -> Iterator[None]:
        """Register a session for the time it is open (only when authentication is on)."""
        if not self.plugins.auth_required:
            yield
            return
        key = object()
        self._open[key] = (request, principal, close)
        try:
            yield
        finally:
            del self._open[key]

    def reload_soon(self) -> None:
        """SIGHUP: reload plugins and check every session now."""
        self._reload_now.set()

    async def watch(self) -> None:
        """Forever: reload plugins on schedule or when asked, and revalidate on change."""
        while True:
            with trio.move_on_after(self.reload_interval if self.reload_interval > 0 else math.inf):
                await self._reload_now.wait()
            force, self._reload_now = self._reload_now.is_set(), trio.Event()
            try:
                changed = await self.plugins.reload(force=force)
            except SandboxdError as exc:
                log.error("reloading plugins failed: %s", exc.message)
                continue
            if changed:
                await self.revalidate()

    async def revalidate(self) -> int:
        """Authenticate every open session again; close those that fail. How many closed."""
        closing = []
        for request, principal, close in list(self._open.values()):
            try:
                now = await self.plugins.authenticate(request)
            except SandboxdError:
                now = None
            if now != principal:
                log.info("closing the session of %r from %s: its credentials no longer hold",
                         principal.user, request.peer)
                closing.append(close)
        async with trio.open_nursery() as nursery:
            for close in closing:
                nursery.start_soon(close, CLOSE_REVOKED, "credentials revoked")
        return len(closing)

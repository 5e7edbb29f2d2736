"""Bounds on what one client can make the daemon do: a token bucket per session, a
per-peer count of failed authentications that turns into a wait, and the
:class:`ClientGate` every front end (native WebSocket, REST, Socket.IO, /metrics)
authenticates and counts its sessions through."""

from __future__ import annotations

import contextlib
import time
from collections import Counter, OrderedDict
from typing import Any, Iterator

from .errors import AuthBackoff
from .plugin_types import ANONYMOUS, HTTPRequest, Principal


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; rate 0 means no limit."""

    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._at = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class AuthFailures:
    """Failed authentications per peer address over the last ``window`` seconds; past
    ``allowed`` of them, a peer must wait (:meth:`retry_after`) before trying again."""

    def __init__(self, allowed: int, window: float = 60.0, max_peers: int = 10_000) -> None:
        self.allowed = allowed
        self.window = window
        self.max_peers = max_peers
        self._peers: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, peer: str, now: float) -> list[float]:
        times = [t for t in self._peers.get(peer, ()) if now - t < self.window]
        if times:
            self._peers[peer] = times
            self._peers.move_to_end(peer)
        else:
            self._peers.pop(peer, None)
        return times

    def retry_after(self, peer: str) -> float:
        """Seconds ``peer`` must wait before its next attempt is even looked at (0: none)."""
        if self.allowed <= 0:
            return 0.0
        now = time.monotonic()
        times = self._recent(peer, now)
        if len(times) < self.allowed:
            return 0.0
        return max(0.0, times[-self.allowed] + self.window - now)

    def failed(self, peer: str) -> None:
        now = time.monotonic()
        self._peers[peer] = [*self._recent(peer, now), now][-max(self.allowed, 1):]
        self._peers.move_to_end(peer)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)


#: Addresses the per-address session cap does not count.
LOOPBACK = frozenset({"127.0.0.1", "::1", "?"})


def client_ip(peer: str) -> str:
    """The address part of a ``host:port`` peer."""
    return peer.rsplit(":", 1)[0].strip("[]") if ":" in peer else peer


class ClientGate:
    """The one place per-client admission is decided, for every front end: the
    failed-authentication backoff per address (``server.auth_failures_per_minute``) and
    the open sessions per address and per user (``server.max_sessions_per_ip`` /
    ``max_sessions_per_user``)."""

    def __init__(self, plugins: Any, config: Any) -> None:
        self.plugins = plugins
        self.config = config
        self.auth_failures = AuthFailures(config.auth_failures_per_minute)
        self._per_ip: Counter[str] = Counter()
        self._per_user: Counter[str] = Counter()

    async def authenticate(self, *requests: HTTPRequest) -> tuple[Principal | None, HTTPRequest]:
        """The principal of the first of ``requests`` a plugin authenticates (ANONYMOUS
        when none authenticates), with that request; ``(None, last)`` when
        authentication is required and none passes, which counts as a failure.

        Raises:
            AuthBackoff: the address failed too often lately (before any plugin is asked).
            SandboxdError: a plugin failed.
        """
        plugins = self.plugins
        ip = client_ip(requests[0].peer)
        if plugins.auth_required and (wait := self.auth_failures.retry_after(ip)) > 0:
            raise AuthBackoff(wait)
        for request in requests:
            if (principal := await plugins.authenticate(request)) is not None:
                return principal, request
        if plugins.auth_required:
            self.auth_failures.failed(ip)
            return None, requests[-1]
        return ANONYMOUS, requests[-1]

    def address_refusal(self, peer: str) -> str | None:
        """Why one more session from ``peer``'s address is refused, if it is."""
        ip = client_ip(peer)
        if ip not in LOOPBACK and 0 < self.config.max_sessions_per_ip <= self._per_ip[ip]:
            return f"more than {self.config.max_sessions_per_ip} sessions from {ip}"
        return None

    def user_refusal(self, principal: Principal) -> str | None:
        """Why one more session for ``principal`` is refused, if it is."""
        if principal is not ANONYMOUS and 0 < self.config.max_sessions_per_user <= self._per_user[principal.user]:
            return f"more than {self.config.max_sessions_per_user} sessions for user {principal.user}"
        return None

    @contextlib.contextmanager
    def counted(self, peer: str, principal: Principal) -> Iterator[None]:
        """Count one open session against its address and user while it runs."""
        ip = client_ip(peer)
        self._per_ip[ip] += 1
        self._per_user[principal.user] += 1
        try:
            yield
        finally:
            for counts, key in ((self._per_ip, ip), (self._per_user, principal.user)):
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]

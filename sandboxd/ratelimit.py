"""Bounds on what one client can make the daemon do: a token bucket per session, and
a per-peer count of failed authentications that turns into a wait."""

from __future__ import annotations

import time
from collections import OrderedDict


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

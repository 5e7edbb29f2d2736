"""The live feed from an execution to the session that started it.

The pump gives the starter each event through a small bounded channel and waits for
room while the command runs: a slow starter holds the command back (backpressure)
instead of the daemon buffering. Stopping and completing never wait on a client: once
the execution is stopping (timeout, kill, output cap), or as it completes, an event
that does not fit at once *drops* the feed (:attr:`Subscription.dropped`), and a wait
already under way is cancelled. The session then follows the rest from the
execution's log, from the offsets it was sent, without a gap.
"""

from __future__ import annotations

import trio

from .events import ServerEvent

#: Events queued for the starting session before the pump waits (the backpressure window).
WINDOW = 8


class Subscription:
    """The starting session's live view of an execution: a small bounded channel."""

    def __init__(self, binary: bool = False) -> None:
        #: The session takes output as binary frames (so the pump may skip UTF-8 work).
        self.binary = binary
        self.send_channel, self.receive_channel = trio.open_memory_channel[ServerEvent](WINDOW)
        #: The execution stopped feeding it while stopping or completing, because the
        #: session was not keeping up: the session resumes from the log.
        self.dropped = False


class StarterFeed:
    """The live-feed half of an :class:`~sandboxd.execution.Execution`."""

    finished: trio.Event
    stop_requested: trio.Event

    def __init__(self) -> None:
        #: The starting session's live channel (None once it went away).
        self.live: Subscription | None = None
        #: Around a publish that waits for room; :meth:`stop_waiting` cancels it.
        self._waiting: trio.CancelScope | None = None

    def subscribe_live(self, *, binary: bool = False) -> Subscription | None:
        """The starter's live channel; None if it already exists or the execution is over."""
        if self.live is not None or self.finished.is_set():
            return None
        self.live = Subscription(binary)
        return self.live

    def unsubscribe_live(self) -> None:
        if self.live is not None:
            self.live.send_channel.close()
            self.live = None

    def wants_text(self) -> bool:
        return self.live is not None and not self.live.binary

    def stop_waiting(self) -> None:
        """The execution is stopping: a publish waiting for room gives up (and drops)."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def publish(self, event: ServerEvent, *, wait: bool = True) -> None:
        """Give ``event`` to the starter: waiting for room while the command runs, never
        once it is stopping or when ``wait`` is False."""
        live = self.live
        if live is None:
            return
        try:
            if wait and not self.stop_requested.is_set():
                with trio.CancelScope() as scope:
                    self._waiting = scope
                    await live.send_channel.send(event)
                self._waiting = None
                if not scope.cancelled_caught:
                    return
            live.send_channel.send_nowait(event)  # stopping: room now, or the feed is dropped
            return
        except trio.WouldBlock:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The session went away: the command goes on without it.
            self.live = None
            return
        live.dropped = True
        live.send_channel.close()
        if self.live is live:
            self.live = None

"""Who is watching: the registry of connected clients, each with its own inbox.

A *watcher* is one connected client of any front end (a native WebSocket session, a
Socket.IO socket). The operations layer never runs code in a watcher's tasks: when
something happens that a watcher should follow (an execution starts in a sandbox it
joined, or a front end hands it the live feed of an execution started for it), a
small :class:`Delivery` is put into the watcher's **inbox**, and the watcher's own
task drains the inbox and starts whatever following it needs in its own nursery.

Inboxes are bounded. A watcher that does not drain its inbox (its client is stuck)
loses announcements rather than growing memory; a live feed it cannot take is
closed at once, so the execution never waits on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Container, Iterator, Union

import trio

from ..plugin_types import Principal

if TYPE_CHECKING:
    from ..execution import Execution, Subscription

log = logging.getLogger(__name__)

#: Deliveries a watcher may have waiting before new ones are dropped.
INBOX_SIZE = 64


@dataclass(frozen=True)
class Announcement:
    """An execution started in a sandbox the watcher joined: follow it from ``since``
    (stream id -> byte offset), after telling the client (``execution-started``)."""

    execution_id: str
    since: dict[int, int]


@dataclass(frozen=True)
class LiveFeed:
    """The live feed of an execution started *for* this watcher by another front end
    (REST's ``socketSessionId``): the watcher forwards it as if it had started the
    execution itself. ``announce``: first send ``execution-started``."""

    execution: Execution
    feed: Subscription
    announce: bool = True


Delivery = Union[Announcement, LiveFeed]


@dataclass(eq=False)
class Watcher:
    """One connected client, as the operations layer sees it.

    Front ends create one per connection (:meth:`Watchers.open`), and drain
    :attr:`inbox` in a task of their own.
    """

    id: str
    principal: Principal
    #: Send an out-of-band event (``name``, ``data``) to the client, giving up on a
    #: stuck or gone client after a bounded wait (plugins' ``send_event``).
    notify: Callable[[str, dict[str, Any]], Awaitable[None]]
    #: Sandboxes this client joined, by full id.
    joined: set[str] = field(default_factory=set)
    #: Executions this client follows through their logs (attached), by id.
    tails: Container[str] = field(default_factory=set)
    #: Deliveries for this client; its own task receives them.
    inbox: trio.MemoryReceiveChannel[Delivery] = field(init=False)
    _inbox_send: trio.MemorySendChannel[Delivery] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inbox_send, self.inbox = trio.open_memory_channel[Delivery](INBOX_SIZE)

    def follows(self, ex: Execution) -> bool:
        """Whether this client gets ``ex``'s output: it started it, joined its sandbox or attached."""
        return ex.started_by == self.id or ex.container_id in self.joined or ex.id in self.tails

    def deliver(self, item: Delivery) -> bool:
        """Put ``item`` into the inbox without waiting; False if the watcher is gone
        or its inbox is full (a live feed is then closed, so nothing waits on it)."""
        try:
            self._inbox_send.send_nowait(item)
            return True
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            log.info("watcher %s cannot take %s now; dropped", self.id, type(item).__name__)
            if isinstance(item, LiveFeed):
                item.execution.unsubscribe_live()
            return False

    def close(self) -> None:
        """The client went away: refuse new deliveries, close live feeds still queued."""
        self._inbox_send.close()
        while True:
            try:
                item = self.inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(item, LiveFeed):
                item.execution.unsubscribe_live()
        self.inbox.close()


class Watchers:
    """Every connected client, by id."""

    def __init__(self) -> None:
        self._by_id: dict[str, Watcher] = {}

    def add(self, watcher: Watcher) -> None:
        self._by_id[watcher.id] = watcher

    def remove(self, watcher: Watcher) -> None:
        """Forget ``watcher`` and close its inbox."""
        if self._by_id.get(watcher.id) is watcher:
            del self._by_id[watcher.id]
        watcher.close()

    def get(self, watcher_id: str) -> Watcher | None:
        """The connected client with this id (a WebSocket session's or a Socket.IO
        socket's id), or None."""
        return self._by_id.get(watcher_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Watcher]:
        return iter(list(self._by_id.values()))

    def of_sandbox(self, container_id: str) -> list[Watcher]:
        """Clients that joined this sandbox."""
        return [w for w in self._by_id.values() if container_id in w.joined]

    def announce(self, ex: Execution, *, exclude: str | None = None) -> None:
        """Tell every client that joined ``ex``'s sandbox (but ``exclude``) to follow it
        from the start of its output."""
        for watcher in self.of_sandbox(ex.container_id):
            if watcher.id != exclude:
                watcher.deliver(Announcement(ex.id, dict(ex.offsets)))

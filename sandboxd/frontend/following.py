"""How a session follows executions: its live feeds, its log tails, and its inbox.

All of it runs in the session's own nursery. The starter of an execution forwards the
execution's live feed (:class:`~sandboxd.executions.Subscription`); everyone else —
clients that joined the sandbox, late attachers — follows the execution's log from
an offset (:meth:`~sandboxd.operations.Operations.replay_output`), so they can neither
slow the command down nor grow memory. New executions to follow arrive in the
session's inbox (:mod:`sandboxd.operations.watchers`), which :meth:`Following.drain_inbox`
empties.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ..events import OutputEvent, ServerEvent, output_end
from ..operations import Announcement, LiveFeed
from ..protocol import server as m

if TYPE_CHECKING:
    from ..execution import Execution, Subscription
    from ..operations import Operations, Watcher

log = logging.getLogger(__name__)


class SessionClosed(Exception):
    """The client went away; raised by a transport's send and receive."""


class Following:
    """The following half of a session; :class:`~sandboxd.frontend.core.SessionCore`
    mixes it in. A transport provides :meth:`emit` and :meth:`emit_output`."""

    ops: Operations
    watcher: Watcher
    binary_output: bool
    alias: bool | None

    def __init__(self) -> None:
        #: Executions this session started and gets live.
        self._live: dict[str, Execution] = {}
        #: Executions this session follows through their logs, by id.
        self._tailers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def emit(self, name: str, data: dict[str, Any]) -> None:  # pragma: no cover - abstract
        """Send one server event (its primary name and data) in this transport's framing."""
        raise NotImplementedError

    async def send(self, message: m.Message, *, alias: bool | None = None) -> None:
        """Send a typed server message, in this client's dialect (or ``alias``'s)."""
        await self.emit(*m.message_parts(message, alias=bool(self.alias) if alias is None else alias))

    async def emit_output(self, event: ServerEvent) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def drain_inbox(self) -> None:
        """Take deliveries from the operations layer and follow what they name."""
        async for item in self.watcher.inbox:
            if isinstance(item, Announcement):
                if item.execution_id not in self._tailers and item.execution_id not in self._live:
                    self.start_tail(item.execution_id, item.since, follow=True, announce=True)
            elif isinstance(item, LiveFeed):
                if item.announce:
                    await self._announce(item.execution.id, item.execution.record(), {})
                self.follow_live(item.execution, item.feed)

    def follow_live(self, ex: Execution, feed: Subscription | None) -> None:
        """Forward ``ex``'s live feed (this session started it) to the client."""
        if feed is None or self._nursery is None:
            ex.unsubscribe_live()
            return
        if (scope := self._tailers.pop(ex.id, None)) is not None:
            scope.cancel()  # the live feed replaces a tail: one copy only
        self._live[ex.id] = ex
        self._nursery.start_soon(self._forward, ex, feed)

    def following_anything(self) -> bool:
        """Whether any execution's output is being forwarded (the session is not idle)."""
        return bool(self._live or self._tailers)

    def stop_live(self, execution_id: str) -> None:
        if (live := self._live.pop(execution_id, None)) is not None:
            live.unsubscribe_live()

    def stop_tail(self, execution_id: str) -> None:
        if (scope := self._tailers.pop(execution_id, None)) is not None:
            scope.cancel()

    def close_live(self) -> None:
        for ex in list(self._live.values()):
            ex.unsubscribe_live()
        self._live.clear()

    def set_binary(self, binary: bool) -> None:
        self.binary_output = binary
        for ex in self._live.values():
            if ex.live is not None:
                ex.live.binary = binary

    async def _forward(self, ex: Execution, feed: Subscription) -> None:
        sent: dict[int, int] = {}  # stream id -> bytes of it this client has been sent
        warned = False  # the OUTPUT_TRUNCATED warning went out live
        try:
            async with feed.receive_channel:
                async for event in feed.receive_channel:
                    await self.emit_output(event)
                    if isinstance(event, OutputEvent) and (end := output_end(event, self.binary_output)) is not None:
                        sent[event.stream_id] = end
                    warned = warned or event.name == "warning"
        except SessionClosed:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            if self._live.get(ex.id) is ex:
                del self._live[ex.id]
        if feed.dropped and self._nursery is not None:
            # We fell behind while it stopped or completed: the rest comes from the log.
            self.start_tail(ex.id, sent, follow=True, warned=warned)

    def start_tail(self, execution_id: str, since: dict[int, int], *, follow: bool, announce: bool = False,
                   warned: bool = False) -> None:
        """Follow one execution's log from ``since`` in a task of this session
        (``warned``: the client already got the OUTPUT_TRUNCATED warning)."""
        scope = trio.CancelScope()
        self._tailers[execution_id] = scope
        assert self._nursery is not None
        self._nursery.start_soon(self._tail, execution_id, since, follow, scope, announce, warned)

    async def _announce(self, execution_id: str, record: dict[str, Any], since: dict[int, int]) -> None:
        await self.send(m.ExecutionStarted(
            execution_id=execution_id, container_id=record["containerId"], command=record["command"],
            owner=record["owner"], since=m.Offsets.of(since)))

    async def _tail(
        self, execution_id: str, since: dict[int, int], follow: bool, scope: trio.CancelScope, announce: bool,
        warned: bool = False,
    ) -> None:
        """Follow one execution's log; then say how it ended (or where we stopped).

        ``announce``: first tell the client what it is about to watch (``execution-started``),
        for sessions that joined the sandbox rather than asked for this execution.
        """
        ops = self.ops
        try:
            with scope:
                record = ops.record(execution_id)
                if record is None:
                    return
                if announce:
                    await self._announce(execution_id, record, since)
                complete = await ops.replay_output(
                    execution_id, record["containerId"], since,
                    send=self.emit_output, text=not self.binary_output, follow=follow,
                )
                for event in ops.replay_ending(execution_id, record, complete):
                    assert event.data is not None
                    if not (warned and event.name == "warning"):
                        await self.emit(event.name, event.data)
        except SessionClosed:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            if self._tailers.get(execution_id) is scope:
                del self._tailers[execution_id]

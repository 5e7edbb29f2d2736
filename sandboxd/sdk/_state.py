"""The core's records: a request waiting for its reply, and an execution being followed."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from ..errors import SandboxdError
from ._types import OutputChunk


class Call:
    """One request waiting for its reply."""

    __slots__ = ("ref", "event", "frame", "idempotent", "done", "reply", "error", "on_reply", "sent", "stream",
                 "stream_end")

    def __init__(self, ref: str, event: str, frame: str, idempotent: bool,
                 on_reply: Callable[[dict[str, Any]], None] | None) -> None:
        self.ref = ref
        self.event = event
        self.frame = frame
        self.idempotent = idempotent
        self.on_reply = on_reply
        self.done = False
        self.sent = False
        self.reply: dict[str, Any] | None = None
        self.error: SandboxdError | None = None
        #: For a request answered by several events (``download-start``): they queue here
        #: until one named in ``stream_end`` arrives.
        self.stream: deque[tuple[str, dict[str, Any]]] | None = None
        self.stream_end: frozenset[str] = frozenset()

    def result(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply


class ExecState:
    """What the client knows about one execution it follows."""

    def __init__(self, execution_id: str, container_id: str, *, live: bool, stdin: bool = False) -> None:
        self.id = execution_id
        self.container_id = container_id
        #: Bytes of each stream received in order so far (the resume point).
        self.offsets = {"stdout": 0, "stderr": 0}
        self.queue: deque[OutputChunk] = deque()
        self.queued = 0
        self.complete: dict[str, Any] | None = None
        #: Fatal: the execution cannot be followed (attach refused, daemon unreachable).
        self.error: SandboxdError | None = None
        #: Refused stdin/resize frame (no reply on success): raised at the next such call.
        self.control_error: SandboxdError | None = None
        self.warnings: list[dict[str, Any]] = []
        #: This connection's session started it: the daemon may still push its live feed.
        self.live = live
        self.stdin_open = stdin
        #: An ``attach-execution`` not answered yet: completions before it are stale.
        self.attach: Call | None = None
        self.lagging = False
        self.reattaches = 0
        #: False: replay what was written so far, then stop (``execution-detached``).
        self.follow = True
        self.attached_status: str | None = None

    @property
    def finished(self) -> bool:
        """Nothing more will come: ended and every queued chunk taken, or failed."""
        return self.error is not None or (self.complete is not None and not self.queue)

    @property
    def has_news(self) -> bool:
        return bool(self.queue) or self.complete is not None or self.error is not None

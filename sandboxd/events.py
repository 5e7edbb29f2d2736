"""Events for watchers, built once and encoded at most once per wire format.

The pump (live output) and the log replay (watchers, reattaches) build output events
the same way, here, so a client cannot tell which one a chunk came from.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence, TypeVar

from .engine import STDERR, STDOUT
from .output import StreamDecoder, chunk_bytes
from .protocol import encode, encode_binary_output
from .protocol.server import ExecutionWarning, Message, message_parts

STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}

T = TypeVar("T")


class ServerEvent:
    """An event for watchers, encoded at most once per wire format."""

    __slots__ = ("name", "data", "nbytes", "_cache")

    def __init__(self, name: str, data: dict[str, Any] | None, nbytes: int = 0) -> None:
        self.name = name
        self.data = data
        #: Stream bytes this event carries.
        self.nbytes = nbytes
        self._cache: dict[tuple[bool, bool], str | bytes | None] = {}

    def encoded(self, alias: bool, binary: bool = False) -> str | bytes | None:
        """The frame for a session with these settings, or None if it has none to get."""
        key = (alias, binary)
        try:
            return self._cache[key]
        except KeyError:
            frame = self._cache[key] = self._encode(alias, binary)
            return frame

    def _encode(self, alias: bool, binary: bool) -> str | bytes | None:
        return encode(self.name, self.data, alias=alias) if self.data is not None else None


class OutputEvent(ServerEvent):
    """A piece of one output stream, in both wire forms.

    JSON sessions get ``data`` (whole UTF-8 characters, or base64); sessions that asked
    for binary output get ``raw``, the exact bytes at offset ``raw_seq``. The two may be
    cut differently (a character split across reads waits for its end in JSON form
    only), so either may be absent from one event.
    """

    __slots__ = ("raw", "raw_seq", "stream_id", "execution_id")

    def __init__(self, execution_id: str, stream_id: int, data: dict[str, Any] | None,
                 raw: list[memoryview] | None, raw_seq: int, nbytes: int) -> None:
        super().__init__("execution-output", data, nbytes)
        self.execution_id = execution_id
        self.stream_id = stream_id
        self.raw = raw
        self.raw_seq = raw_seq

    def _encode(self, alias: bool, binary: bool) -> str | bytes | None:
        if not binary:
            return super()._encode(alias, False)
        if self.raw is None:
            return None
        return encode_binary_output(self.execution_id, self.stream_id, self.raw_seq, self.raw)


def output_end(event: OutputEvent, binary: bool) -> int | None:
    """The stream offset just past what ``event`` carries in the given wire form (None:
    nothing in that form)."""
    if binary:
        return None if event.raw is None else event.raw_seq + event.nbytes
    if event.data is None:
        return None
    return event.data["seq"] + len(chunk_bytes(event.data["data"], "encoding" in event.data))


def event_of(message: Message) -> ServerEvent:
    """A typed server message as an event for the live feed."""
    return ServerEvent(*message_parts(message))


def truncated_warning(execution_id: str, container_id: str) -> ServerEvent:
    """``OUTPUT_TRUNCATED``, the same words live and from the log."""
    return event_of(ExecutionWarning(
        execution_id=execution_id, container_id=container_id, code="OUTPUT_TRUNCATED",
        message="the output reached its limit: the rest was cut and the command stopped"))


def group_runs(items: Iterable[tuple[int, T]]) -> list[tuple[int, list[T]]]:
    """Group consecutive pieces of the same stream, in order (no copying): a process
    writing in small pieces should not cost one message per write."""
    out: list[tuple[int, list[T]]] = []
    for sid, payload in items:
        if out and out[-1][0] == sid:
            out[-1][1].append(payload)
        else:
            out.append((sid, [payload]))
    return out


def output_event(
    execution_id: str, container_id: str, sid: int, decoder: StreamDecoder,
    pieces: Sequence[bytes | memoryview] | None, size: int, *, text: bool, timestamp: float | None = None,
) -> OutputEvent | None:
    """The event for ``pieces`` of stream ``sid`` (None: end of stream, flush the decoder).

    ``text=False`` skips UTF-8 decoding when nobody needs the JSON form. ``timestamp``:
    when the output was read (replays pass the logged time); default now.
    """
    raw_seq = decoder.offset
    if pieces is None:
        chunk = decoder.flush()
        if chunk is None:
            return None
    elif text:
        chunk = decoder.decode(pieces[0] if len(pieces) == 1 else b"".join(pieces))
    else:
        # Binary watchers only: skip UTF-8 work. A text watcher arriving later starts
        # at a chunk boundary (a split character would come as base64).
        decoder.skip(size)
        chunk = None
    data = None
    if chunk is not None:
        data = {
            "executionId": execution_id,
            "containerId": container_id,
            "type": STREAM_NAMES[sid],
            "data": chunk.data,
            "seq": chunk.seq,
            "timestamp": time.time() if timestamp is None else timestamp,
        }
        if chunk.binary:
            data["encoding"] = "base64"
    return OutputEvent(execution_id, sid, data, list(pieces) if pieces is not None else None, raw_seq, size)

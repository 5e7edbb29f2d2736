"""Serving an execution's output from its log: for watchers, late attachers, and replays.

A watcher is a position in the execution's log file. It reads what is there, sends it
(waiting for the client, however slow), and when it reaches the end of what is written
it waits for the pump to write more. Nothing is buffered for it but the piece being
sent, so watchers cost no memory in proportion to how far behind they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable

from .engine import STDERR, STDOUT
from .events import ServerEvent, group_runs, output_event
from .logstore import ExecutionLog, LogReader
from .output import StreamDecoder


async def replay(
    *,
    path: Path,
    execution_id: str,
    container_id: str,
    live: ExecutionLog | None,
    since: dict[int, int],
    send: Callable[[ServerEvent], Awaitable[None]],
    text: bool,
    follow: bool = True,
) -> bool:
    """Send the output of one execution from ``since`` (stream id -> byte offset) on.

    ``live`` is the log being written, or None when the execution is over. Returns True
    once everything up to the end of a finished execution was sent; False if
    ``follow`` is off and it stopped at the end of what was written so far.

    Cancellation: safe at any point; the client has then received a prefix of the
    output, and can resume from its offsets.
    """
    decoders = {STDOUT: StreamDecoder(since.get(STDOUT, 0)), STDERR: StreamDecoder(since.get(STDERR, 0))}
    try:
        reader = LogReader(path, since)
    except FileNotFoundError:
        reader = None
    # A finished execution's log no longer grows: its size is known once.
    final_size = (path.stat().st_size if reader else 0) if live is None else None
    try:
        while True:
            done = live is None or live.closed
            limit = final_size if live is None else live.size
            pieces = reader.read(limit) if reader else []
            if pieces:
                # Each message carries the time its first piece was logged.
                for sid, run in group_runs((piece.stream_id, piece) for piece in pieces):
                    data = [piece.data for piece in run]
                    event = output_event(execution_id, container_id, sid, decoders[sid], data,
                                         sum(len(d) for d in data), text=text, timestamp=run[0].timestamp)
                    if event is not None:
                        await send(event)
                continue
            if done:
                for sid, decoder in decoders.items():
                    event = output_event(execution_id, container_id, sid, decoder, None, 0, text=text)
                    if event is not None:
                        await send(event)
                return True
            if not follow:
                return False
            assert live is not None
            await live.wait_beyond(reader.position if reader else 0)
            if reader is None:
                reader = LogReader(path, since)
    finally:
        if reader is not None:
            reader.close()

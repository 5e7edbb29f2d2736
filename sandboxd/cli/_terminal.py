"""The local side of an interactive terminal session (``sandboxd exec -it``, ``sandboxd shell``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import tty
from typing import Any, Iterator

import trio


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put the terminal in raw mode (keys go to the sandbox as typed, Ctrl-C included)
    and restore it however we leave."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        size = os.terminal_size((80, 24))
    return size.columns, size.lines


async def forward_keys(execution: Any) -> None:
    """Send what is typed as stdin until our stdin ends."""
    while data := await trio.to_thread.run_sync(os.read, 0, 65536, abandon_on_cancel=True):
        await execution.send_stdin(data)
    await execution.close_stdin()


async def forward_resizes(execution: Any) -> None:
    """Tell the sandbox when our window changes size (SIGWINCH)."""
    with trio.open_signal_receiver(signal.SIGWINCH) as signals:
        async for _ in signals:
            await execution.resize(*terminal_size())

"""Ctrl-C while ``sandboxd exec --follow`` runs, as for a local command.

- The first Ctrl-C (SIGINT) is passed on: SIGINT to every process of the execution. A
  command that dies of it makes the CLI exit 130, printing nothing.
- A second Ctrl-C, or SIGTERM or SIGHUP to the CLI at any time, stops the execution:
  SIGTERM to its process tree, SIGKILL after the daemon's ``limits.kill_grace_seconds``.
- A third one stops waiting for the execution to end, and the CLI exits at once.

The CLI then exits 128 + the number of the first signal it got (130 for Ctrl-C, 143 for
SIGTERM, 129 for SIGHUP), unless the command caught the signal and exited on its own,
with a status below 128: then that status, as a shell would report it.
"""

from __future__ import annotations

import math
import signal
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator

import trio

from ..errors import SandboxdError

if TYPE_CHECKING:
    from ..sdk import ExecutionResult

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """What to signal (set as the execution starts), and which signals arrived."""

    def __init__(self) -> None:
        self.execution: Any = None
        self._known = trio.Event()
        self.first: int | None = None
        self.abandoned = False

    def target(self, execution: Any) -> None:
        """Signals go to ``execution`` (an SDK execution handle) from now on."""
        self.execution = execution
        self._known.set()

    def exit_status(self, result: ExecutionResult | None) -> int | None:
        """The CLI's exit status after an interrupt, or None if nothing was interrupted."""
        if self.first is None:
            return None
        code = result.exit_code if result is not None else None
        if not self.abandoned and result is not None and result.status in ("success", "failed") \
                and isinstance(code, int) and code < 128:
            return code
        return 128 + self.first

    async def _count(self, signals: Any, scope: trio.CancelScope, actions: trio.MemorySendChannel[bool]) -> None:
        count = 0
        async for signum in signals:
            count += 1
            if self.first is None:
                self.first = signum
            if count >= 3:
                self.abandoned = True
                scope.cancel()
                return
            stop = count > 1 or signum != signal.SIGINT
            actions.send_nowait(stop)
            if stop:
                count = 2

    async def _deliver(self, actions: trio.MemoryReceiveChannel[bool]) -> None:
        """Send each action once the execution is known (a signal may come before)."""
        await self._known.wait()
        async for stop in actions:
            try:
                await self.execution.kill("TERM" if stop else "INT")
            except SandboxdError:
                pass  # the daemon could not be reached: the command's fate is the daemon's now


@asynccontextmanager
async def forwarding_interrupts() -> AsyncIterator[Interrupts]:
    """Handle SIGINT, SIGTERM and SIGHUP as described above while the block runs.

    The block is cancelled on the third signal; :meth:`Interrupts.exit_status` then says
    how to exit.
    """
    interrupts = Interrupts()
    actions_in, actions_out = trio.open_memory_channel[bool](math.inf)
    with trio.open_signal_receiver(*SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupts._count, signals, nursery.cancel_scope, actions_in)
            nursery.start_soon(interrupts._deliver, actions_out)
            yield interrupts
            nursery.cancel_scope.cancel()

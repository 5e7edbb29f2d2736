"""``sandboxd kill`` and ``sandboxd wait``: stop or await an execution started elsewhere
(``sandboxd exec`` without ``--follow``), with ``docker kill`` / ``docker wait`` manners."""

from __future__ import annotations

from typing import TYPE_CHECKING, List

import typer

from ._errors import ExitCode
from ._options import client_command
from ._output import out
from ._run import run_async

if TYPE_CHECKING:
    from ..sdk import AsyncClient, AsyncExecution

#: Attach "from the end": no output is replayed, only how the execution ends.
_AT_THE_END = {"stdout": 1 << 62, "stderr": 1 << 62}


@client_command
def kill(
    execution_ids: List[str] = typer.Argument(..., metavar="EXEC_ID...", help="Executions to signal."),
    signal: str = typer.Option(
        "KILL", "--signal", "-s",
        help="Signal name (with or without SIG) or number. KILL and TERM stop the command "
        "and its whole process tree (TERM: KILL after the daemon's grace period); HUP, INT, "
        "QUIT, USR1, USR2, CONT, STOP and WINCH are passed on.",
    ),
) -> None:
    """Send a signal to a running execution (default KILL) and print its id."""

    sig: str | int = int(signal) if signal.isdigit() else signal

    async def go() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            for execution_id in execution_ids:
                execution = await _attach_at_end(client, execution_id, follow=False)
                state = await execution.wait()
                if state.status != "running":
                    out.error(f"execution {execution_id} is not running (it ended: {state.status})")
                    return ExitCode.ERROR
                await execution.kill(sig)
                out.result(execution_id, executionId=execution_id, signal=signal)
        return ExitCode.OK

    raise typer.Exit(run_async(go))


@client_command
def wait(
    execution_id: str = typer.Argument(..., metavar="EXEC_ID", help="Execution to wait for."),
) -> None:
    """Wait until an execution ends; print its exit code and exit with it.

    Like `exec --follow` without the output: 124 if it timed out, 125 if the daemon or
    the sandbox failed.
    """
    from .exec import _exit_status, print_warnings

    async def go() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            execution = await _attach_at_end(client, execution_id, follow=True)
            result = await execution.wait()
        print_warnings(execution)
        if result.exit_code is not None or out.json_mode:
            out.result(str(result.exit_code), **result.raw)
        return _exit_status(result, say_why_stopped=False)  # docker wait: just the status

    raise typer.Exit(run_async(go))


async def _attach_at_end(client: AsyncClient, execution_id: str, *, follow: bool) -> AsyncExecution:
    """Attach without replaying output: only how the execution ends (or its state now)."""
    return await client.attach(execution_id, since=_AT_THE_END, follow=follow, capture=False)

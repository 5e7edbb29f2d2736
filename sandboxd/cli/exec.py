"""``sandboxd exec``: run a command in a sandbox through the daemon, like ``docker exec``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, List, Optional

import trio
import typer

from ._errors import ExitCode
from ._interrupts import forwarding_interrupts
from ._options import UrlOpt
from ._output import out

if TYPE_CHECKING:
    from ..sdk import ExecutionResult


def exec_command(
    command: List[str] = typer.Argument(..., metavar="-- CMD [ARG...]", help="The command and its arguments."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", "-s", help="Sandbox id to run in."),
    image: Optional[str] = typer.Option(
        None, "--image", help="Run in a new one-off sandbox from this image, removed afterwards."
    ),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Stream output to stdout/stderr and exit with the command's status."
    ),
    interactive: bool = typer.Option(False, "--interactive", "-i", help="Forward stdin until EOF (needs --follow)."),
    tty_: bool = typer.Option(
        False, "--tty", "-t", help="Run with a terminal: raw keys, window size, Ctrl-C to the command (implies --follow)."
    ),
    env: List[str] = typer.Option([], "--env", "-e", help="Set K=V in the command's environment (repeatable)."),
    workdir: Optional[str] = typer.Option(None, "--workdir", "-w", help="Working directory in the sandbox."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Stop the command after this many seconds."),
    url: UrlOpt = None,
) -> None:
    """Run CMD in a sandbox.

    Without --follow, print the execution id and return at once; the command keeps
    running. With --follow, behave like `docker exec`: the command's stdout and stderr
    bytes on ours, and its exit status as ours (124 if it timed out, 125 if the daemon
    or the sandbox failed).
    """
    from . import run_async

    if tty_:
        follow = True
    if (sandbox is None) == (image is None):
        out.error("give exactly one of --sandbox ID or --image IMAGE")
        raise typer.Exit(ExitCode.USAGE)
    if interactive and not follow:
        out.error("--interactive needs --follow")
        raise typer.Exit(ExitCode.USAGE)
    environment = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            out.error(f"--env wants K=V, got {item!r}")
            raise typer.Exit(ExitCode.USAGE)
        environment[key] = value

    where: dict[str, Any] = {"sandbox_id": sandbox, "image": image, "env": environment, "workdir": workdir,
                             "timeout": timeout}

    def write(chunk: Any) -> None:
        _write_output(chunk.stream, chunk.data)

    async def start_only() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            execution = await client.start(command, **where)
        out.result(execution.id, executionId=execution.id, containerId=execution.sandbox_id)
        return ExitCode.OK

    async def run_and_follow(**terminal: Any) -> int:
        """Follow to the end; the SDK reconnects and resumes by itself if the connection drops."""
        from ..sdk import AsyncClient
        from . import _terminal

        result = None
        # The client outlives the interrupt handler, which may be signalling through it.
        async with AsyncClient(url) as client, forwarding_interrupts() as interrupts:
            execution = await client.start(command, **where, **terminal, stdin=interactive, capture=False,
                                           on_output=write)
            interrupts.target(execution)
            async with trio.open_nursery() as nursery:
                if interactive:
                    nursery.start_soon(_terminal.forward_keys, execution)
                if terminal:
                    nursery.start_soon(_terminal.forward_resizes, execution)
                result = await execution.wait()
                nursery.cancel_scope.cancel()
        status = interrupts.exit_status(result)
        return _exit_status(result) if status is None else status

    async def run_with_terminal() -> int:
        from ._terminal import terminal_size

        cols, rows = terminal_size()
        return await run_and_follow(tty=True, cols=cols, rows=rows)

    if tty_ and os.isatty(0) and interactive:
        from ._terminal import raw_terminal

        with raw_terminal(0):
            code = run_async(run_with_terminal)
    else:
        code = run_async(run_with_terminal if tty_ else run_and_follow if follow else start_only)
    raise typer.Exit(code)


def _write_output(stream: str, data: bytes | memoryview) -> None:
    target = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
    try:
        target.write(data)
        target.flush()
    except BrokenPipeError:
        # Like a process killed by SIGPIPE: stop quietly.
        os._exit(141)


def _exit_status(result: ExecutionResult) -> int:
    """``docker exec``'s manners: the command's status, 124 after a timeout, 125 when
    the daemon, the engine or the sandbox failed."""
    if result.status == "timeout":
        out.error(result.reason or "the command timed out")
        return ExitCode.TIMEOUT
    if result.status == "error" or result.exit_code is None:
        out.error(result.reason or "the execution failed")
        return ExitCode.DAEMON
    if result.truncated:
        out.error("output passed the daemon's limit and was truncated; the command was stopped")
    return int(result.exit_code)

"""``sandboxd exec``: run a command in a sandbox through the daemon, like ``docker exec``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, List, NoReturn, Optional

import trio
import typer

from ._errors import ExitCode
from ._interrupts import forwarding_interrupts
from ._options import client_command
from ._output import out
from ._run import run_async

if TYPE_CHECKING:
    from ..sdk import ExecutionResult


@client_command
def exec_command(
    args: List[str] = typer.Argument(
        ..., metavar="[SANDBOX] [--] CMD [ARG]...",
        help="The sandbox (unless --sandbox or --image names where to run), then the command."),
    sandbox: Optional[str] = typer.Option(
        None, "--sandbox", "-s", metavar="ID", help="Sandbox to run in (the same as giving it first)."),
    image: Optional[str] = typer.Option(
        None, "--image", metavar="IMAGE", help="Run in a new one-off sandbox from IMAGE, removed afterwards."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Stream output to stdout/stderr and exit with the command's status."),
    interactive: bool = typer.Option(
        False, "--interactive", "-i", help="Forward stdin until EOF (implies --follow)."),
    tty_: bool = typer.Option(
        False, "--tty", "-t", help="Run with a terminal: raw keys, window size, Ctrl-C to the command "
        "(implies --follow)."),
    env: List[str] = typer.Option(
        [], "--env", "-e", metavar="K=V", show_default=False,
        help="Set K=V in the command's environment (repeatable)."),
    workdir: Optional[str] = typer.Option(None, "--workdir", "-w", metavar="DIR", help="Working directory in the sandbox."),
    user: Optional[str] = typer.Option(
        None, "--user", "-u", metavar="USER",
        help="Run as USER (only users in the daemon's sandbox.allowed_users)."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", metavar="SECONDS",
        help="Stop the command after SECONDS (more than 0; the daemon's limits.max_exec_timeout_seconds caps it)."),
) -> None:
    """Run a command in a sandbox, like `docker exec`.

    Without --follow, print the execution id and return at once; the command keeps
    running (see `sandboxd wait` and `sandboxd kill`). With --follow, its stdout and
    stderr bytes go to ours and its exit status is ours (124 if it timed out, 125 if
    the daemon or the sandbox failed). Ctrl-C sends SIGINT to the command; a second one
    stops it.
    """

    command = list(args)
    if sandbox is None and image is None and command:
        sandbox = command.pop(0)
    if command[:1] == ["--"]:
        command.pop(0)
    if sandbox is not None and image is not None:
        _usage("give a sandbox or --image IMAGE, not both")
    if not command:
        _usage("no command given: sandboxd exec SANDBOX -- CMD [ARG]...")
    if timeout is not None and not timeout > 0:
        _usage(f"--timeout must be more than 0 seconds, got {timeout:g}")
    if tty_ or interactive:
        follow = True
    environment = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _usage(f"--env wants K=V, got {item!r}")
        environment[key] = value

    where: dict[str, Any] = {"sandbox_id": sandbox, "image": image, "env": environment, "workdir": workdir,
                             "timeout": timeout, "user": user}

    def write(chunk: Any) -> None:
        _write_output(chunk.stream, chunk.data)

    async def start_only() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            execution = await client.start(command, **where)
        out.result(execution.id, executionId=execution.id, containerId=execution.sandbox_id)
        return ExitCode.OK

    async def run_and_follow(**terminal: Any) -> int:
        """Follow to the end; the SDK reconnects and resumes by itself if the connection drops."""
        from ..sdk import AsyncClient
        from . import _terminal

        result = None
        # The client outlives the interrupt handler, which may be signalling through it.
        async with AsyncClient() as client, forwarding_interrupts() as interrupts:
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
            print_warnings(execution)
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


def _usage(message: str) -> NoReturn:
    out.error(message)
    raise typer.Exit(ExitCode.USAGE)


def _exit_status(result: ExecutionResult, *, say_why_stopped: bool = True) -> int:
    """``docker exec``'s manners: the command's status, 124 after a timeout, 125 when
    the daemon, the engine or the sandbox failed; a stopped command says why (unless
    ``say_why_stopped`` is off); a cut output came as a warning."""
    if result.status == "timeout":
        out.error(result.reason or "the command timed out")
        return ExitCode.TIMEOUT
    if result.status == "error" or result.exit_code is None:
        out.error(result.reason or "the execution failed")
        return ExitCode.DAEMON
    if result.status == "killed" and say_why_stopped and not result.truncated:
        reason = result.reason or "killed"
        out.error("the command was stopped: " + ("a kill request" if reason == "killed" else reason))
    return int(result.exit_code)


def print_warnings(execution: Any) -> None:
    """The ``warning`` events the daemon (or a plugin) sent about ``execution``, on stderr."""
    for data in execution.warnings:
        code = data.get("code")
        out.error(f"warning: {data.get('message') or code}" + (f" ({code})" if code else ""))

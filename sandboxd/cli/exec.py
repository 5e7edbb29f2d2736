"""``sandboxd exec``: run a command in a sandbox through the daemon, like ``docker exec``."""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

import trio
import typer

from ..client import DaemonUnavailable, execute_request, open_client
from ._errors import ExitCode
from ._interrupts import forwarding_interrupts
from ._options import UrlOpt
from ._output import out


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

    where = {"containerId": sandbox, "image": image, "env": environment, "workdir": workdir, "timeout": timeout}

    async def start_only() -> int:
        async with open_client(url) as client:
            accepted = await client.call("execute-command", execute_request(command, **where))
        out.result(accepted["executionId"], **accepted)
        return ExitCode.OK

    async def run_and_follow() -> int:
        written = {"stdout": 0, "stderr": 0}
        started: dict[str, Any] = {}
        result = None

        def on_output(stream: str, data: bytes | memoryview) -> None:
            _write_output(stream, data)
            written[stream] += len(data)

        async with forwarding_interrupts() as interrupts:

            def on_accepted(accepted: dict[str, Any], client: Any) -> None:
                started.update(accepted)
                interrupts.target(client, accepted["executionId"])

            async def attempt(client: Any) -> dict[str, Any]:
                await client.use_binary_output()
                if not started:
                    return await client.run(
                        command, container_id=sandbox, image=image, env=environment or None,
                        workdir=workdir, timeout=timeout, stdin=_read_stdin if interactive else None,
                        on_output=on_output, on_accepted=lambda accepted: on_accepted(accepted, client),
                    )
                interrupts.target(client, started["executionId"])
                return await client.follow(started["executionId"], since=dict(written), on_output=on_output)

            result = await follow_with_reconnect(url, attempt, can_resume=lambda: bool(started) and not interactive)
        status = interrupts.exit_status(result)
        return _exit_status(result) if status is None else status

    async def run_with_terminal() -> int:
        from . import _terminal

        cols, rows = _terminal.terminal_size()
        result = None
        async with forwarding_interrupts() as interrupts, open_client(url) as client:
            await client.use_binary_output()
            request = execute_request(command, tty=True, stdin=interactive, cols=cols, rows=rows, **where)
            accepted = await client.call("execute-command", request)
            eid = accepted["executionId"]
            interrupts.target(client, eid)
            async with trio.open_nursery() as nursery:
                if interactive:
                    nursery.start_soon(_terminal.forward_keys, client, eid)
                nursery.start_soon(_terminal.forward_resizes, client, eid)
                result = await client.wait_complete(eid, _write_output)
                nursery.cancel_scope.cancel()
        status = interrupts.exit_status(result)
        return _exit_status(result) if status is None else status

    if tty_ and os.isatty(0) and interactive:
        from ._terminal import raw_terminal

        with raw_terminal(0):
            code = run_async(run_with_terminal)
    else:
        code = run_async(run_with_terminal if tty_ else run_and_follow if follow else start_only)
    raise typer.Exit(code)


async def follow_with_reconnect(
    url: str | None, attempt: Any, *, can_resume: Any, give_up_after: float = 60.0
) -> dict[str, Any]:
    """Run ``attempt(client)``; when the connection drops, reconnect with backoff and call
    it again (it resumes from what was already written), for up to ``give_up_after`` s."""
    delay, deadline = 0.1, None
    while True:
        try:
            async with open_client(url) as client:
                return await attempt(client)
        except DaemonUnavailable as exc:
            if not can_resume():
                raise
            deadline = deadline or trio.current_time() + give_up_after
            if trio.current_time() + delay > deadline:
                raise DaemonUnavailable(f"{exc.message}; gave up reconnecting after {give_up_after:g} s") from None
            await trio.sleep(delay)
            delay = min(delay * 2, 2.0)



async def _read_stdin() -> bytes:
    # A worker thread for our own stdin: the CLI runs one command, and a regular file
    # on stdin cannot be polled.
    return await trio.to_thread.run_sync(os.read, 0, 256 * 1024, abandon_on_cancel=True)


def _write_output(stream: str, data: bytes | memoryview) -> None:
    target = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
    try:
        target.write(data)
        target.flush()
    except BrokenPipeError:
        # Like a process killed by SIGPIPE: stop quietly.
        os._exit(141)


def _exit_status(result: dict[str, Any]) -> int:
    status = result.get("status")
    code = result.get("exitCode")
    if status == "timeout":
        out.error(result.get("reason") or "the command timed out")
        return ExitCode.TIMEOUT
    if status == "error" or code is None:
        out.error(result.get("reason") or "the execution failed")
        return ExitCode.DAEMON
    if result.get("truncated"):
        out.error("output passed the daemon's limit and was truncated; the command was stopped")
    return int(code)

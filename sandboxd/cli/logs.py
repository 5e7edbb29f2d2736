"""``sandboxd logs`` and ``sandboxd ps``: what executions printed, and how they ended."""

from __future__ import annotations

import time
from typing import Optional

import typer

from ._errors import ExitCode
from ._options import UrlOpt
from ._output import out


def logs(
    execution_id: str = typer.Argument(..., help="Execution id (from `sandboxd exec` or `sandboxd ps`)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until the execution ends."),
    since: int = typer.Option(0, "--since", help="Start at this byte offset of each stream."),
    url: UrlOpt = None,
) -> None:
    """Print an execution's output, stdout to stdout and stderr to stderr, byte-exact.

    With --follow, exit with the command's status once it ends, like `exec --follow`.
    """
    from . import run_async
    from .exec import _exit_status, _write_output

    async def go() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            replay = await client.attach(execution_id, since={"stdout": since, "stderr": since}, follow=follow,
                                         capture=False, on_output=lambda c: _write_output(c.stream, c.data))
            result = await replay.wait()
        return _exit_status(result) if follow else ExitCode.OK

    raise typer.Exit(run_async(go))


def ps(
    sandbox: Optional[str] = typer.Option(None, "--sandbox", "-s", help="Only executions in this sandbox."),
    url: UrlOpt = None,
) -> None:
    """List executions, newest first: status, exit code, duration, command."""
    from . import run_async

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            listed = await client.executions(sandbox)
        if out.json_mode:
            out.table([dict(e.raw) for e in listed], [])
            return
        rows = [{
            "execution": e.id,
            "sandbox": e.sandbox_id[:12],
            "status": e.status,
            "exit": "" if e.exit_code is None else e.exit_code,
            "duration": f"{e.duration or 0:.1f}s",
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.started_at)),
            "command": " ".join(e.command)[:60],
        } for e in listed]
        out.table(rows, ["execution", "sandbox", "status", "exit", "duration", "started", "command"])

    run_async(go)

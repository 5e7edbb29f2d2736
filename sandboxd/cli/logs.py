"""``sandboxd logs`` and ``sandboxd ps``: what executions printed, and how they ended."""

from __future__ import annotations

import time
from typing import Optional

import typer

from ..client import open_client, output_bytes
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
        async with open_client(url) as client:
            await client.use_binary_output()
            await client.call("attach-execution", {"executionId": execution_id, "since": since, "follow": follow})
            while True:
                ev = await client.next_event()
                data = ev.data if isinstance(ev.data, dict) else {}
                if data.get("executionId") != execution_id:
                    continue
                if ev.name == "execution-output":
                    _write_output(data["type"], output_bytes(data))
                elif ev.name == "execution-complete":
                    return _exit_status(data) if follow else ExitCode.OK
                elif ev.name == "execution-detached":
                    return ExitCode.OK

    raise typer.Exit(run_async(go))


def ps(
    sandbox: Optional[str] = typer.Option(None, "--sandbox", "-s", help="Only executions in this sandbox."),
    url: UrlOpt = None,
) -> None:
    """List executions, newest first: status, exit code, duration, command."""
    from . import run_async

    async def go() -> None:
        async with open_client(url) as client:
            listed = await client.call("list-executions", {"containerId": sandbox} if sandbox else {})
        if out.json_mode:
            out.table(listed["executions"], [])
            return
        rows = [{
            "execution": e["executionId"],
            "sandbox": e["containerId"][:12],
            "status": e["status"],
            "exit": "" if e["exitCode"] is None else e["exitCode"],
            "duration": f"{e['durationMs'] / 1000:.1f}s",
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["startedAt"])),
            "command": " ".join(e["command"])[:60],
        } for e in listed["executions"]]
        out.table(rows, ["execution", "sandbox", "status", "exit", "duration", "started", "command"])

    run_async(go)

"""``sandboxd logs`` and ``sandboxd ps``: what executions printed, and how they ended."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Optional

import typer

from ._errors import ExitCode
from ._options import client_command
from ._output import out
from ._run import run_async

STATUSES = ("running", "success", "failed", "timeout", "killed", "error", "interrupted")


@client_command
def logs(
    execution_id: str = typer.Argument(
        ..., metavar="EXEC_ID", help="Execution id (from `sandboxd exec` or `sandboxd ps`)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until the execution ends."),
    since: Optional[str] = typer.Option(
        None, "--since", metavar="TIME",
        help="Only output written since TIME: a duration ago (30s, 10m, 1h30m) or an RFC 3339 "
        "time (2026-01-02T15:04:05Z)."),
    since_offset: int = typer.Option(
        0, "--since-offset", metavar="BYTES", min=0, help="Start at this byte offset of each stream."),
) -> None:
    """Print an execution's output, stdout to stdout and stderr to stderr, byte-exact.

    With --follow, exit with the command's status once it ends, like `exec --follow`.
    """
    from .exec import _exit_status, _write_output, print_warnings

    try:
        not_before = None if since is None else parse_since(since, time.time())
    except ValueError as exc:
        out.error(f"--since: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None

    async def go() -> int:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            replay = await client.attach(
                execution_id, since={"stdout": since_offset, "stderr": since_offset}, follow=follow,
                capture=False, on_output=lambda c: _write_output(c.stream, c.data))
            result = await replay.wait()
        print_warnings(replay)
        return _exit_status(result) if follow else ExitCode.OK

    async def go_since(not_before: float) -> int:
        # The SDK reads binary output frames, which carry no time: here, and only here, the
        # raw protocol client reads the JSON events, which do.
        from ..client import default_url, open_client, output_bytes
        from ..endpoint import websocket_url
        from ..sdk import ExecutionResult

        async with open_client(websocket_url(default_url())) as client:
            await client.call("attach-execution",
                              {"executionId": execution_id, "since": since_offset, "follow": follow})
            while True:
                ev = await client.next_event()
                data = ev.data if isinstance(ev.data, dict) else {}
                if data.get("executionId") != execution_id:
                    continue
                if ev.name == "execution-output" and data.get("timestamp", 0) >= not_before:
                    _write_output(data["type"], output_bytes(data))
                elif ev.name == "warning":
                    out.error(f"warning: {data.get('message')} ({data.get('code')})")
                elif ev.name == "execution-complete":
                    result = ExecutionResult(
                        execution_id, data.get("containerId", ""), data.get("status", ""), data.get("exitCode"),
                        truncated=bool(data.get("truncated")), reason=data.get("reason"), raw=data)
                    return _exit_status(result) if follow else ExitCode.OK
                elif ev.name == "execution-detached":
                    return ExitCode.OK

    raise typer.Exit(run_async(go) if not_before is None else run_async(go_since, not_before))


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """The Unix time ``text`` names: a duration before ``now`` (``10m``, ``1h30m``) or
    an RFC 3339 time (``2026-01-02T15:04:05Z``; without a zone, local time).

    Raises:
        ValueError: neither; a bare number is refused (byte offsets are --since-offset).
    """
    text = text.strip()
    if _DURATION.fullmatch(text):
        return now - sum(float(n) * _SECONDS[u] for n, u in _PART.findall(text))
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"{text!r} has no unit: write 10s or 10m (for a byte offset, use --since-offset)")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"expected a duration (10m, 1h30m) or an RFC 3339 time, got {text!r}") from None


@client_command
def ps(
    sandbox: Optional[str] = typer.Option(
        None, "--sandbox", "-s", metavar="ID", help="Only executions in this sandbox."),
    status: Optional[str] = typer.Option(
        None, "--status", metavar="STATUS", help=f"Only executions with this status: {', '.join(STATUSES)}."),
) -> None:
    """List executions, newest first: status, exit code, duration, command."""

    if status is not None and status not in STATUSES:
        out.error(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
        raise typer.Exit(ExitCode.USAGE)

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            listed = [e for e in await client.executions(sandbox) if status is None or e.status == status]
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

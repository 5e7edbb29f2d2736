"""``sandboxd sandbox``: create, list and remove sandboxes through the daemon."""

from __future__ import annotations

import json
import re
import time
from typing import List, Optional

import typer

from ._errors import ExitCode
from ._options import client_command
from ._output import out
from ._run import run_async

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Create, list and remove sandboxes.")


@app.command("create")
@client_command
def create(
    image: Optional[str] = typer.Option(
        None, metavar="IMAGE", help="Image (default: the daemon's sandbox.default_image)."),
    label: List[str] = typer.Option(
        [], "--label", "-l", metavar="K=V", show_default=False, help="Label (repeatable)."),
    memory: Optional[str] = typer.Option(
        None, "--memory", "-m", metavar="SIZE",
        help="Memory limit: bytes, or with a unit: 512m, 1g (at most the daemon's limit)."),
    cpus: Optional[float] = typer.Option(None, "--cpus", metavar="N", help="CPU limit (at most the daemon's limit)."),
    pids: Optional[int] = typer.Option(
        None, "--pids", metavar="N", help="Process limit (at most the daemon's limit)."),
    ttl: Optional[float] = typer.Option(
        None, "--ttl", metavar="SECONDS", help="Remove after this many idle seconds."),
    engine: Optional[str] = typer.Option(
        None, "--engine", metavar="NAME", help="Place it on this engine (several engines)."),
    engine_label: List[str] = typer.Option(
        [], "--engine-label", metavar="K=V", show_default=False, help="A label the engine must have (repeatable)."),
) -> None:
    """Create a sandbox and print its id."""

    try:
        memory_bytes = None if memory is None else parse_size(memory)
    except ValueError as exc:
        out.error(f"--memory: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    labels: dict[str, str] = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep:
            out.error(f"--label wants K=V, got {item!r}")
            raise typer.Exit(ExitCode.USAGE)
        labels[key] = value
    placement: dict[str, object] = {"engine": engine} if engine else {}
    if engine_label:
        wanted = dict(item.partition("=")[::2] for item in engine_label)
        placement["labels"] = wanted

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            sbx = await client.create_sandbox(image, labels=labels, memory_bytes=memory_bytes, cpus=cpus, pids_limit=pids,
                                              ttl_seconds=ttl, placement=placement or None)
        out.result(sbx.id, containerId=sbx.id, image=sbx.image)

    run_async(go)


@app.command("ls")
@client_command
def ls() -> None:
    """List the sandboxes you may see (an admin sees everyone's): id, image, age, owner, labels."""

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            listed = await client.sandboxes()
        rows = [
            {"id": c.id[:12], "image": c.image, "created": _ago(c.created_at), "owner": c.owner or "",
             "labels": ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
             "ephemeral": "yes" if c.ephemeral else ""}
            for c in listed
        ]
        if out.json_mode:
            out.table([dict(c.raw) for c in listed], [])
        else:
            out.table(rows, ["id", "image", "created", "owner", "labels", "ephemeral"])

    run_async(go)


@app.command("inspect")
@client_command
def inspect(sandbox_id: str = typer.Argument(..., metavar="SANDBOX", help="Sandbox id.")) -> None:
    """Show a sandbox: image, owner, labels, limits, TTL, running executions (JSON)."""

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            info = await (await client.sandbox(sandbox_id)).info()
        typer.echo(json.dumps(dict(info.raw), indent=2))

    run_async(go)


@app.command("rm")
@client_command
def rm(ids: List[str] = typer.Argument(
        ..., metavar="SANDBOX...", help="Sandbox ids (unique prefixes of 12 or more characters work).")) -> None:
    """Remove sandboxes (running executions in them are stopped)."""

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient() as client:
            for cid in ids:
                removed = await client.remove_sandbox(cid)
                out.result(removed, containerId=removed)

    run_async(go)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in a size as docker writes them: ``536870912``, ``512m``, ``1g``, ``1.5GiB``.

    Raises:
        ValueError: not such a size, or less than one byte.
    """
    m = _SIZE.fullmatch(text.strip())
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()]) if m else 0
    if size < 1:
        raise ValueError(f"expected a size like 512m or 1g, got {text!r}")
    return size


def _ago(ts: float) -> str:
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"

"""``sandboxd sandbox``: create, list and remove sandboxes through the daemon."""

from __future__ import annotations

import json
import time
from typing import List, Optional

import typer

from ._options import UrlOpt
from ._output import out

app = typer.Typer(no_args_is_help=True, help="Create, list and remove sandboxes.")


@app.command("create")
def create(
    image: Optional[str] = typer.Option(None, help="Image (default: the daemon's default image)."),
    label: List[str] = typer.Option([], "--label", "-l", help="K=V label (repeatable)."),
    memory: Optional[int] = typer.Option(None, "--memory", help="Memory limit in bytes (capped by the daemon)."),
    cpus: Optional[float] = typer.Option(None, "--cpus", help="CPU limit (capped by the daemon)."),
    pids: Optional[int] = typer.Option(None, "--pids", help="Process limit (capped by the daemon)."),
    ttl: Optional[float] = typer.Option(None, "--ttl", help="Remove after this many idle seconds."),
    engine: Optional[str] = typer.Option(None, "--engine", help="Place it on this engine (several engines)."),
    engine_label: List[str] = typer.Option([], "--engine-label", help="K=V an engine must have (repeatable)."),
    url: UrlOpt = None,
) -> None:
    """Create a sandbox and print its id."""
    from . import run_async

    labels: dict[str, str] = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep:
            out.error(f"--label wants K=V, got {item!r}")
            raise typer.Exit(2)
        labels[key] = value
    placement: dict[str, object] = {"engine": engine} if engine else {}
    if engine_label:
        wanted = dict(item.partition("=")[::2] for item in engine_label)
        placement["labels"] = wanted

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            sbx = await client.create_sandbox(image, labels=labels, memory_bytes=memory, cpus=cpus, pids_limit=pids,
                                              ttl_seconds=ttl, placement=placement or None)
        out.result(sbx.id, containerId=sbx.id, image=sbx.image)

    run_async(go)


@app.command("ls")
def ls(url: UrlOpt = None) -> None:
    """List this daemon's sandboxes."""
    from . import run_async

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            listed = await client.sandboxes()
        rows = [
            {"id": c.id[:12], "image": c.image, "created": _ago(c.created_at), "ephemeral": "yes" if c.ephemeral else ""}
            for c in listed
        ]
        if out.json_mode:
            out.table([dict(c.raw) for c in listed], [])
        else:
            out.table(rows, ["id", "image", "created", "ephemeral"])

    run_async(go)


@app.command("inspect")
def inspect(sandbox_id: str = typer.Argument(..., help="Sandbox id."), url: UrlOpt = None) -> None:
    """Show a sandbox: image, owner, labels, limits, TTL, running executions (JSON)."""
    from . import run_async

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            info = await (await client.sandbox(sandbox_id)).info()
        typer.echo(json.dumps(dict(info.raw), indent=2))

    run_async(go)


@app.command("rm")
def rm(ids: List[str] = typer.Argument(..., help="Sandbox ids (12+ character prefixes work)."), url: UrlOpt = None) -> None:
    """Remove sandboxes (running executions in them are stopped)."""
    from . import run_async

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            for cid in ids:
                removed = await client.remove_sandbox(cid)
                out.result(removed, containerId=removed)

    run_async(go)


def _ago(ts: float) -> str:
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"

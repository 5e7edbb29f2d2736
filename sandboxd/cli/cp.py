"""``sandboxd cp``: copy a file into or out of a sandbox."""

from __future__ import annotations

import os
import sys

import typer

from ._errors import ExitCode
from ._options import UrlOpt
from ._output import out


def cp(
    source: str = typer.Argument(..., help="LOCAL_FILE, or SANDBOX_ID:PATH ('-' for stdin)."),
    destination: str = typer.Argument(..., help="SANDBOX_ID:PATH, or LOCAL_FILE ('-' for stdout)."),
    url: UrlOpt = None,
) -> None:
    """Copy one file between this machine and a sandbox (either direction).

    Sandbox paths are relative to the sandbox's working directory, or absolute inside it.
    """
    from . import run_async

    src_remote, dst_remote = _split(source), _split(destination)
    if (src_remote is None) == (dst_remote is None):
        out.error("exactly one of SOURCE and DESTINATION must be SANDBOX_ID:PATH")
        raise typer.Exit(ExitCode.USAGE)

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            if dst_remote is not None:
                sandbox, path = dst_remote
                if path.endswith("/") or not path:
                    path += os.path.basename(source)
                data = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()
                mode = 0o644 if source == "-" else os.stat(source).st_mode & 0o777
                sbx = await client.sandbox(sandbox)
                written = await sbx.files.write(path, data, mode=mode)
                out.result(written, containerId=sbx.id, paths=[written])
            else:
                assert src_remote is not None
                sandbox, path = src_remote
                data = await (await client.sandbox(sandbox)).files.read(path)
                if destination == "-":
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                else:
                    target = os.path.join(destination, os.path.basename(path)) if os.path.isdir(destination) else destination
                    with open(target, "wb") as f:
                        f.write(data)

    try:
        run_async(go)
    except OSError as exc:  # pragma: no cover - local file problems
        out.error(f"{exc.filename}: {exc.strerror}")
        raise typer.Exit(ExitCode.ERROR) from None


def _split(arg: str) -> tuple[str, str] | None:
    head, sep, tail = arg.partition(":")
    if sep and head and "/" not in head and head != "-":
        return head, tail
    return None

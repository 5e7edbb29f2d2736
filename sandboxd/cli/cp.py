"""``sandboxd cp``: copy files and directories into or out of a sandbox, like ``docker cp``."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
from typing import Any

import typer

from ._errors import ExitCode
from ._options import UrlOpt
from ._output import out
from ._run import run_async


def cp(
    source: str = typer.Argument(..., help="LOCAL_PATH, or SANDBOX_ID:PATH ('-': a file's bytes on stdin)."),
    destination: str = typer.Argument(..., help="SANDBOX_ID:PATH, or LOCAL_PATH ('-': to stdout)."),
    url: UrlOpt = None,
) -> None:
    """Copy a file or a directory between this machine and a sandbox (either direction).

    Sandbox paths are relative to the sandbox's working directory, or absolute; '..' is
    refused. As with docker cp: copying to an existing directory puts the copy inside it,
    otherwise the copy gets the destination's name; a destination ending in '/' is a
    directory. Modes and modification times are kept. A directory copied to '-' is
    written as a tar stream.
    """

    src_remote, dst_remote = _split(source), _split(destination)
    if (src_remote is None) == (dst_remote is None):
        out.error("exactly one of SOURCE and DESTINATION must be SANDBOX_ID:PATH")
        raise typer.Exit(ExitCode.USAGE)

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            if dst_remote is not None:
                sbx = await client.sandbox(dst_remote[0])
                written = await _upload(sbx, source, dst_remote[1])
                out.result(written, containerId=sbx.id, paths=[written])
            else:
                assert src_remote is not None
                await _download(await client.sandbox(src_remote[0]), src_remote[1], destination)

    try:
        run_async(go)
    except OSError as exc:
        out.error(f"{exc.filename or destination}: {exc.strerror}")
        raise typer.Exit(ExitCode.ERROR) from None


async def _upload(sbx: Any, source: str, path: str) -> str:
    """``source`` (a file, a directory, or '-') to ``path``, with docker cp's manners."""
    into_dir = path == "" or path.endswith("/")
    name = "stdin" if source == "-" else os.path.basename(os.path.normpath(source))
    target, nest = (path + name, None) if into_dir else (path, name)
    if source != "-" and not os.path.isdir(source):
        return await sbx.files.upload(target, source, nest=nest)
    with tempfile.TemporaryFile() as spool:  # stdin's length, or a directory's tar, up front
        if source == "-":
            shutil.copyfileobj(sys.stdin.buffer, spool)
            size = spool.tell()
            spool.seek(0)
            return await sbx.files.upload(target, spool, size=size, mode=0o644, nest=nest)
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(source, arcname=".")
        spool.seek(0)
        return await sbx.files.upload(target, spool, archive=True, nest=nest)


async def _download(sbx: Any, path: str, destination: str) -> None:
    if destination == "-":
        await sbx.files.download(path, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with tempfile.TemporaryFile() as spool:
        got = await sbx.files.download(path, spool)
        name = os.path.basename(got.path.rstrip("/")) or "root"
        target = os.path.join(destination, name) if os.path.isdir(destination) else destination
        spool.seek(0)
        if got.kind == "file":
            with open(target, "wb") as f:
                shutil.copyfileobj(spool, f)
            if got.mode is not None:
                os.chmod(target, got.mode)
            if got.mtime is not None:
                os.utime(target, (got.mtime, got.mtime))
            return
        os.makedirs(target, exist_ok=True)
        with tarfile.open(fileobj=spool) as tar:
            tar.extractall(target, filter="data")  # the archive comes from the sandbox: untrusted


def _split(arg: str) -> tuple[str, str] | None:
    head, sep, tail = arg.partition(":")
    if sep and head and "/" not in head and head != "-":
        return head, tail
    return None

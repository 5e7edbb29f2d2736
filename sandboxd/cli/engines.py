"""``sandboxd engines`` and ``sandboxd images``: the Docker engines the daemon drives."""

from __future__ import annotations

from ._options import UrlOpt
from ._output import out
from ._run import run_async


def engines(url: UrlOpt = None) -> None:
    """List the daemon's Docker engines with their state and load."""

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            listed = await client.engines()
        if out.json_mode:
            out.table(listed, [])
            return
        rows = [{"name": e["name"], "state": e["state"], "sandboxes": e["sandboxes"],
                 "running": e["runningExecutions"], "max": e["maxSandboxes"] or "",
                 "labels": ",".join(f"{k}={v}" for k, v in sorted(e["labels"].items())), "url": e["url"]}
                for e in listed]
        out.table(rows, ["name", "state", "sandboxes", "running", "max", "labels", "url"])

    run_async(go)


def images(url: UrlOpt = None) -> None:
    """List the images on the daemon's engines, and which engines have each."""

    async def go() -> None:
        from ..sdk import AsyncClient

        async with AsyncClient(url) as client:
            listed = await client.images()
        if out.json_mode:
            out.table(listed, [])
            return
        out.table([{"image": i["image"], "engines": ",".join(i["engines"])} for i in listed], ["image", "engines"])

    run_async(go)

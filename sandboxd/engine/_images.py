"""What the daemon reads from an image before creating a sandbox from it.

Mixed into :class:`~sandboxd.engine.DockerEngine`. Reading an image's files needs a
container; it is created, never started, read through the archive API and removed, so
nothing in it ever ran (reading as root is safe there, unlike in a sandbox).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

import trio

from ..errors import NotFound
from ._labels import LABEL_INSTANCE, LABEL_MANAGED, LABEL_PROBE

if TYPE_CHECKING:
    import docker

    from ..config import DockerConfig



class ImageProbing:
    config: DockerConfig
    _client: docker.APIClient | None

    if TYPE_CHECKING:
        async def _call(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any: ...
        async def remove_container(self, container_id: str) -> None: ...

    async def inspect_image(self, image: str) -> dict[str, Any]:
        return await self._call("image inspect", "inspect_image", image)

    @asynccontextmanager
    async def open_image_probe(self, image: str) -> AsyncIterator[Callable[[str, int], Awaitable[bytes | None]]]:
        """A never-started container of ``image``; yield ``read(path, limit)``.

        ``read`` returns the first ``limit`` bytes of the engine's tar of ``path`` (None
        if missing). Reading as root is safe here: nothing in the container ever ran.
        The container carries :data:`LABEL_PROBE` and is removed on exit.
        """
        created = await self._call(
            "container create", "create_container", image, command=["true"], network_disabled=True,
            labels={LABEL_MANAGED: "true", LABEL_INSTANCE: self.config.instance, LABEL_PROBE: "true"},
        )
        cid = created["Id"]

        def read_tar(path: str, limit: int) -> bytes:
            assert self._client is not None
            stream, _ = self._client.get_archive(cid, path, chunk_size=min(limit, 65536))
            buf = bytearray()
            for chunk in stream:
                buf += chunk
                if len(buf) >= limit:
                    break
            return bytes(buf[:limit])

        async def read(path: str, limit: int) -> bytes | None:
            try:
                return await self._call("archive get", read_tar, path, limit)
            except NotFound:
                return None

        try:
            yield read
        finally:
            with trio.CancelScope(shield=True):
                await self.remove_container(cid)

"""Chunked file transfers of a session: ``upload-start``/``-chunk``/``-end`` and
``download-start``, over :meth:`Operations.upload_stream` and
:meth:`Operations.open_download` (one implementation under every front end).

Uploads: ``upload-start`` opens the sandbox and starts the upload as a task in the
session's nursery, fed through an unbuffered channel; each ``upload-chunk`` waits until
the sandbox took the previous one (backpressure: the session's next frame waits too);
``upload-end`` closes the channel and answers once everything is in place. An upload
with no chunk for :data:`IDLE_SECONDS`, or whose session closes, is abandoned and
writes nothing.

Downloads stream inline: ``download-started``, then ``download-chunk`` events (base64,
with ``offset``), then ``download-end``; the session's later frames wait until the
download is done.

Resource handling: at most :data:`MAX_UPLOADS` uploads in flight per session, each
holding one chunk at a time.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

import trio

from ..errors import BadRequest, LimitExceeded, NotFound, SandboxdError
from ..protocol import DownloadStart, UploadChunk, UploadEnd, UploadStart

if TYPE_CHECKING:
    from ..operations import Operations
    from ..plugin_types import Principal

MAX_UPLOADS = 4
IDLE_SECONDS = 60.0
_ids = itertools.count(1)


@dataclass
class _Upload:
    container_id: str
    send: trio.MemorySendChannel[bytes]
    done: trio.Event = field(default_factory=trio.Event)
    path: str | None = None
    error: SandboxdError | None = None
    #: Whether a chunk already got ``error`` (later chunks are dropped; ``upload-end`` repeats it).
    reported: bool = False


class TransferHandlers:
    """Mixed into :class:`~sandboxd.frontend.core.SessionCore`: the transfer handlers."""

    ops: Operations
    principal: Principal
    _nursery: trio.Nursery | None
    if TYPE_CHECKING:
        async def reply(self, name: str, data: dict[str, Any], ref: Any) -> None: ...

    def __init__(self) -> None:
        super().__init__()
        self._uploads: dict[str, _Upload] = {}

    async def on_upload_start(self, m: UploadStart) -> None:
        if len(self._uploads) >= MAX_UPLOADS:
            raise LimitExceeded(f"upload-start: at most {MAX_UPLOADS} uploads in flight per session")
        sandbox = await self.ops.open_sandbox(self.principal, m.container_id, "upload")
        assert self._nursery is not None
        send, receive = trio.open_memory_channel[bytes](0)
        upload_id = f"up-{next(_ids)}"
        upload = self._uploads[upload_id] = _Upload(sandbox.id, send)
        self._nursery.start_soon(self._run_upload, m, upload, receive)
        await self.reply("upload-ready", {"uploadId": upload_id, "containerId": sandbox.id}, m.ref)

    async def _run_upload(self, m: UploadStart, upload: _Upload, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        async def body() -> AsyncIterator[bytes]:
            while True:
                with trio.move_on_after(IDLE_SECONDS) as idle:
                    try:
                        chunk = await receive.receive()
                    except trio.EndOfChannel:
                        return
                if idle.cancelled_caught:
                    raise BadRequest(f"upload: no chunk for {IDLE_SECONDS:g} s; the upload was abandoned")
                yield chunk

        try:
            async with receive:
                _, upload.path = await self.ops.upload_stream(
                    self.principal, m.container_id, m.path, body(), workdir=m.workdir, archive=m.archive,
                    size=m.size, mode=m.mode, mtime=m.mtime, nest=m.nest)
        except SandboxdError as exc:
            upload.error = exc
        finally:
            upload.done.set()

    def _upload(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise NotFound(f"no such upload: {upload_id}")
        return upload

    async def on_upload_chunk(self, m: UploadChunk) -> None:
        upload = self._upload(m.upload_id)
        try:
            if not upload.done.is_set():
                await upload.send.send(m.data)
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await upload.done.wait()
        if not upload.reported:
            upload.reported = True
            raise upload.error or BadRequest(f"upload-chunk: upload {m.upload_id} has ended")

    async def on_upload_end(self, m: UploadEnd) -> None:
        upload = self._upload(m.upload_id)
        await upload.send.aclose()
        await upload.done.wait()
        self._uploads.pop(m.upload_id, None)
        if upload.error is not None:
            raise upload.error
        await self.reply("files-uploaded", {"uploadId": m.upload_id, "containerId": upload.container_id,
                                            "paths": [upload.path]}, m.ref)

    async def on_download_start(self, m: DownloadStart) -> None:
        async with self.ops.open_download(self.principal, m.container_id, m.path) as download:
            download_id = f"down-{next(_ids)}"
            await self.reply("download-started", {
                "downloadId": download_id, "containerId": download.container_id, "path": download.path,
                "kind": download.kind,
                "size": download.size, "mode": download.mode, "mtime": download.mtime}, m.ref)
            offset = 0
            async for chunk in download.chunks():
                await self.reply("download-chunk", {"downloadId": download_id, "offset": offset,
                                                    "data": base64.b64encode(chunk).decode("ascii")}, m.ref)
                offset += len(chunk)
            await self.reply("download-end", {"downloadId": download_id, "size": offset}, m.ref)

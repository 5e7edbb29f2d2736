"""Files in and out of a sandbox: :class:`Files` (sync) and :class:`AsyncFiles`.

Both run the same transfer plans. A plan is a generator over the core: it yields a
condition to wait for (a callable) or ``None`` for "send what is queued now", and the
flavour's driver does the I/O. Large files go in chunks (``upload-start``/``-chunk``/
``-end``, ``download-start``), one chunk in memory at a time; a daemon without chunked
transfers gets ``upload-files``/``download-file`` instead.
"""

from __future__ import annotations

import base64
import io
import os
from typing import IO, TYPE_CHECKING, Any, Callable, Generator, Union

from ..errors import UnknownEvent
from ._types import FileContent, FileInfo, file_entry

if TYPE_CHECKING:
    from ._async import AsyncSandbox
    from ._core import ClientCore
    from ._sync import Sandbox

#: Raw bytes per ``upload-chunk`` (base64 makes it ~1.4 MB, under the default 4 MiB cap).
CHUNK = 1024 * 1024
#: Up to this size ``write`` sends the file in one ``upload-files`` message.
SMALL = 1024 * 1024

Source = Union[str, "os.PathLike[str]", IO[bytes]]
Plan = Generator[Union[Callable[[], bool], None], None, Any]


def upload_plan(core: ClientCore, sandbox_id: str, path: str, source: IO[bytes], **start: Any) -> Plan:
    """``upload-start``, the chunks (each sent before the next is read), ``upload-end``."""
    begin = core.call("upload-start", {"containerId": sandbox_id, "path": path,
                                       **{k: v for k, v in start.items() if v is not None}})
    yield lambda: begin.done
    if isinstance(begin.error, UnknownEvent) and not start.get("archive"):
        return (yield from _upload_whole(core, sandbox_id, path, source.read(), start.get("mode")))
    upload_id = begin.result()["uploadId"]
    try:
        while data := source.read(CHUNK):
            if upload_id in core.transfer_errors:
                break
            core.send("upload-chunk", {"uploadId": upload_id, "data": base64.b64encode(data).decode("ascii")},
                      execution_id=upload_id)
            yield None
        end = core.call("upload-end", {"uploadId": upload_id})
        yield lambda: end.done
        if (refused := core.transfer_errors.get(upload_id)) is not None:
            raise refused
        return end.result()["paths"][0]
    finally:
        core.transfer_errors.pop(upload_id, None)


def _upload_whole(core: ClientCore, sandbox_id: str, path: str, data: bytes, mode: Any) -> Plan:
    done = core.call("upload-files", {"containerId": sandbox_id, "files": {path: file_entry(data, mode)}})
    yield lambda: done.done
    return done.result()["paths"][0]


def write_plan(core: ClientCore, sandbox_id: str, path: str, data: FileContent, mode: Any) -> Plan:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) <= SMALL:
        return (yield from _upload_whole(core, sandbox_id, path, raw, mode))
    return (yield from upload_plan(core, sandbox_id, path, io.BytesIO(raw), size=len(raw), mode=mode))


def download_plan(core: ClientCore, sandbox_id: str, path: str, sink: IO[bytes]) -> Plan:
    """``download-start``, then each chunk written to ``sink`` as it comes."""
    call = core.stream_call("download-start", {"containerId": sandbox_id, "path": path},
                            frozenset({"download-end"}))
    info: dict[str, Any] = {}
    while True:
        yield lambda: bool(call.stream) or call.done
        assert call.stream is not None
        while call.stream:
            event, data = call.stream.popleft()
            if event == "download-started":
                info = data
            elif event == "download-chunk":
                sink.write(base64.b64decode(data["data"]))
            elif event == "download-end":
                return FileInfo.from_wire({**info, "size": data.get("size", info.get("size"))})
        if call.error is not None:
            break
    if not isinstance(call.error, UnknownEvent):
        raise call.error
    return (yield from _download_whole(core, sandbox_id, path, sink))


def _download_whole(core: ClientCore, sandbox_id: str, path: str, sink: IO[bytes]) -> Plan:
    whole = core.call("download-file", {"containerId": sandbox_id, "path": path})
    yield lambda: whole.done
    reply = whole.result()
    sink.write(base64.b64decode(reply["content"]))
    return FileInfo.from_wire({"path": path, "kind": "file", "size": reply.get("size")})


def upload_start(source: Source, mode: int | None, mtime: float | None,
                 size: int | None) -> tuple[IO[bytes], bool, dict[str, Any]]:
    """The file object to read, whether to close it, and ``upload-start``'s size/mode/mtime."""
    if isinstance(source, (str, os.PathLike)):
        st = os.stat(source)
        f: IO[bytes] = open(source, "rb")
        return f, True, {"size": st.st_size, "mode": st.st_mode & 0o777 if mode is None else mode,
                         "mtime": int(st.st_mtime) if mtime is None else int(mtime)}
    if size is None:
        raise ValueError("give size= with a file object (the daemon wants the length up front)")
    return source, False, {"size": size, "mode": mode, "mtime": None if mtime is None else int(mtime)}


class Files:
    """A sandbox's files, relative to its working directory (or absolute inside it)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sbx = sandbox

    def _run(self, plan: Plan) -> Any:
        conn = self._sbx.client._conn
        try:
            step = next(plan)
            while True:
                if step is None:
                    conn.flush()
                else:
                    conn.wait(step)
                step = plan.send(None)
        except StopIteration as done:
            return done.value

    def write(self, path: str, data: FileContent, *, mode: int | str | None = None) -> str:
        """Write ``data`` (text as UTF-8, or bytes) to ``path``; return the path as written.
        More than 1 MiB goes in chunks."""
        return self._run(write_plan(self._sbx.client._conn.core, self._sbx.id, path, data, mode))

    def read(self, path: str) -> bytes:
        """The exact bytes of the file at ``path`` (streamed in chunks)."""
        sink = io.BytesIO()
        self.download(path, sink)
        return sink.getvalue()

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def upload(self, path: str, source: Source, *, mode: int | None = None, mtime: float | None = None,
               size: int | None = None, archive: bool = False, nest: str | None = None) -> str:
        """Stream a local file (a path, or a binary file object with ``size``) to ``path``.

        ``archive=True``: ``source`` is a tar stream unpacked into the directory ``path``.
        ``nest``: when ``path`` is an existing directory, write to ``path/nest`` (docker cp).
        """
        f, close, start = (source, False, {"archive": True}) if archive else upload_start(source, mode, mtime, size)
        try:
            return self._run(upload_plan(self._sbx.client._conn.core, self._sbx.id, path, f, nest=nest, **start))
        finally:
            if close:
                f.close()

    def download(self, path: str, sink: Source) -> FileInfo:
        """Stream the file at ``path`` (a directory: a tar of it) into ``sink``, a local
        path or a binary file object; return what it was (kind, size, mode, mtime)."""
        f = open(sink, "wb") if isinstance(sink, (str, os.PathLike)) else sink
        try:
            return self._run(download_plan(self._sbx.client._conn.core, self._sbx.id, path, f))
        finally:
            if f is not sink:
                f.close()


class AsyncFiles:
    """A sandbox's files; see :class:`Files` (local file reads and writes are blocking)."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sbx = sandbox

    async def _run(self, plan: Plan) -> Any:
        conn = self._sbx.client._conn
        try:
            step = next(plan)
            while True:
                if step is None:
                    await conn.flush()
                else:
                    await conn.flush()
                    await conn.wait(step)
                step = plan.send(None)
        except StopIteration as done:
            return done.value

    async def write(self, path: str, data: FileContent, *, mode: int | str | None = None) -> str:
        return await self._run(write_plan(self._sbx.client._conn.core, self._sbx.id, path, data, mode))

    async def read(self, path: str) -> bytes:
        sink = io.BytesIO()
        await self.download(path, sink)
        return sink.getvalue()

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def upload(self, path: str, source: Source, *, mode: int | None = None, mtime: float | None = None,
                     size: int | None = None, archive: bool = False, nest: str | None = None) -> str:
        f, close, start = (source, False, {"archive": True}) if archive else upload_start(source, mode, mtime, size)
        try:
            return await self._run(upload_plan(self._sbx.client._conn.core, self._sbx.id, path, f, nest=nest,
                                               **start))
        finally:
            if close:
                f.close()

    async def download(self, path: str, sink: Source) -> FileInfo:
        f = open(sink, "wb") if isinstance(sink, (str, os.PathLike)) else sink
        try:
            return await self._run(download_plan(self._sbx.client._conn.core, self._sbx.id, path, f))
        finally:
            if f is not sink:
                f.close()

"""Reading files and directories out of sandboxes, as the sandbox's user.

:func:`open_download` runs ``cat`` (a file) or ``tar -c`` (a directory) as the sandbox's
user through ``docker exec`` and yields a :class:`Download` whose chunks stream the
bytes with the engine connection's backpressure; re-exported by :mod:`sandboxd.files`.
"""

from __future__ import annotations

import posixpath
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import trio

from .engine import STDERR, STDOUT, DockerEngine, ExecStream, FrameParser
from .errors import BadRequest, Forbidden, LimitExceeded, NotFound
from .tarstream import check_name

_CHUNK = 256 * 1024

# Runs as the sandbox's user. $1 the path. Prints one header line, then the content:
# "F size mode mtime" and the file's bytes, or "D mode mtime" and a tar of the directory.
_DOWNLOAD_SCRIPT = r"""
p=$1
[ -e "$p" ] || { echo "no such file or directory" >&2; exit 2; }
[ -r "$p" ] || { echo "permission denied" >&2; exit 13; }
if [ -d "$p" ]; then
  cd -- "$p" 2>/dev/null || { echo "permission denied" >&2; exit 13; }
  printf 'D %s\n' "$(stat -L -c '%a %Y' -- .)"
  exec tar -c -f - .
elif [ -f "$p" ]; then
  printf 'F %s\n' "$(stat -L -c '%s %a %Y' -- "$p")"
  exec cat -- "$p"
fi
echo "not a regular file or directory" >&2; exit 2
"""


@dataclass
class Download:
    """One download in progress: what it is, then its bytes through :meth:`chunks`.

    ``kind`` is ``"file"`` (the chunks are its bytes; ``size`` is known) or
    ``"directory"`` (the chunks are a tar of its contents, names relative to it;
    ``size`` is None).
    """

    path: str
    kind: str
    mode: int
    mtime: int
    size: int | None
    _stream: ExecStream
    _exec_id: str
    _engine: DockerEngine
    _max_bytes: int
    _first: bytes
    _parser: FrameParser
    _stderr: bytearray = field(default_factory=bytearray)
    #: The sandbox's full id.
    container_id: str = ""

    async def chunks(self) -> AsyncIterator[bytes]:
        """The content, a chunk at a time (at most 256 KiB each); read it once.

        Raises:
            LimitExceeded: a directory's tar passed ``max_bytes``.
            BadRequest: reading failed part-way (the last chunks are missing).
        """
        total = 0
        pending: list[bytes] = [self._first] if self._first else []
        while True:
            for chunk in pending:
                total += len(chunk)
                if total > self._max_bytes:
                    raise LimitExceeded(f"download: {self.path} is larger than {self._max_bytes} bytes")
                yield chunk
            data = await self._stream.receive_some(_CHUNK)
            if not data:
                break
            pending = []
            for sid, payload in self._parser.feed(data):
                if sid == STDOUT:
                    pending.append(bytes(payload))
                elif sid == STDERR and len(self._stderr) < 65536:
                    self._stderr += payload
        code = await exit_code(self._engine, self._exec_id)
        if code != 0:
            detail = self._stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {code}"]
            raise BadRequest(f"download: reading {self.path} failed part-way: {detail[0]}")


@asynccontextmanager
async def open_download(
    engine: DockerEngine, sandbox: Any, path: str, *, user: str | None, max_bytes: int,
    workdir: str | None = None,
) -> AsyncIterator[Download]:
    """Start reading ``path`` as the sandbox's user; yield a :class:`Download`.

    ``path`` is relative to ``workdir`` (default: the sandbox's working directory) or
    absolute; a ``..`` component or a control character is refused.

    Raises (on entry, before any content):
        BadRequest: an invalid path.
        NotFound: no such file or directory, or not a regular file or directory.
        Forbidden: the sandbox user cannot read it.
        LimitExceeded: a file larger than ``max_bytes``.
        SandboxStopped: the sandbox is not running.
    """
    if not isinstance(path, str) or not path:
        raise BadRequest("download: invalid path")
    check_name(path.lstrip("/") or ".", "download")
    full = posixpath.normpath(path if path.startswith("/") else posixpath.join(workdir or await workdir_of(engine, sandbox), path))
    exec_id = await engine.exec_create(sandbox.id, ["/bin/sh", "-c", _DOWNLOAD_SCRIPT, "sandboxd-download", full], user=user)
    async with engine.open_exec_stream(exec_id) as stream:
        parser, head, stderr = FrameParser(), bytearray(), bytearray()
        with trio.fail_after(engine.config.call_timeout_seconds):
            while b"\n" not in head and len(head) < 4096:
                data = await stream.receive_some(_CHUNK)
                if not data:
                    break
                for sid, payload in parser.feed(data):
                    (head if sid == STDOUT else stderr).extend(payload)
        line, _, rest = bytes(head).partition(b"\n")
        fields = line.split()
        if not _ or len(fields) not in (3, 4) or fields[0] not in (b"F", b"D"):
            code = await exit_code(engine, exec_id)
            if code == 13:
                raise Forbidden(f"download: the sandbox user cannot read {path}")
            raise NotFound(f"no such file or directory in the sandbox: {path}")
        try:
            numbers = [int(fields[-2], 8), int(fields[-1])]
            size = int(fields[1]) if fields[0] == b"F" else None
        except ValueError:
            raise NotFound(f"no such file or directory in the sandbox: {path}") from None
        if size is not None and size > max_bytes:
            raise LimitExceeded(f"download: {path} is larger than {max_bytes} bytes")
        yield Download(full, "file" if size is not None else "directory", numbers[0], numbers[1], size,
                       stream, exec_id, engine, max_bytes, rest, parser, stderr, sandbox.id)


async def download(engine: DockerEngine, sandbox: Any, path: str, *, user: str | None, max_bytes: int) -> bytes:
    """The whole content of the file ``path`` (for ``download-file``)."""
    async with open_download(engine, sandbox, path, user=user, max_bytes=max_bytes) as got:
        if got.kind != "file":
            raise BadRequest(f"download-file: {path} is a directory (download-start can fetch it as a tar)")
        return b"".join([chunk async for chunk in got.chunks()])


async def workdir_of(engine: DockerEngine, sandbox: Any) -> str:
    """The sandbox's working directory (the image's WORKDIR, else /)."""
    if sandbox.workdir is None:
        info = await engine.inspect_container(sandbox.id)
        sandbox.workdir = (info.get("Config") or {}).get("WorkingDir") or "/"
    return sandbox.workdir


async def exit_code(engine: DockerEngine, exec_id: str) -> int | None:
    """A helper's exit code (recorded just after its output closes)."""
    for _ in range(50):
        info = await engine.exec_inspect(exec_id)
        if not info.get("Running"):
            return info.get("ExitCode")
        await trio.sleep(0.02)
    return None

"""Moving files into and out of sandboxes, as the sandbox's user and nobody else.

This module is the one implementation under every file front end (``upload-files`` and
``download-file``, the chunked ``upload-*``/``download-*`` messages, REST ``PUT``/``GET
…/files/{path}``, ``sandboxd cp``). Its streaming API:

- :func:`upload_stream` takes an async iterable of bytes (one file's content, or a tar
  archive) and places it at a path; :func:`upload_files` does the same for the small
  files of one ``upload-files`` request.
- :func:`open_download` yields a :class:`Download` whose :meth:`Download.chunks` are the
  bytes of a file, or a tar of a directory.

Both are bounded: memory is one chunk at a time (the sandbox's stdin or stdout pipe
gives backpressure), sizes and entry counts are capped by ``[limits]``.

Security: the daemon never has root follow a path the sandbox can change. Nothing is
written with the engine's archive API (which extracts as root). An upload is a tar
stream *the daemon writes* (:mod:`sandboxd.tarstream`: checked names, only files,
directories and symlinks), fed through ``docker exec`` stdin to a helper that runs *as
the sandbox's user*: it extracts into a fresh staging directory, checks every
destination (never through or over a symlink, never outside the working directory),
then moves everything into place. Whatever a sandbox process races, each step has only
the sandbox user's own permissions. Uploads are all-or-nothing: the helper moves
anything only after the daemon's final "commit" entry arrived, and the staging
directory is removed on every outcome. Downloads run ``cat``/``tar`` as the sandbox's
user, so they read only what the sandbox's own commands could.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, AsyncIterator

import trio

from .config import LimitsConfig
from .downloads import Download as Download
from .downloads import download as download
from .downloads import exit_code
from .downloads import open_download as open_download
from .downloads import workdir_of as workdir_of
from .engine import STDERR, STDOUT, DockerEngine, ExecStream, FrameParser
from .errors import BadRequest, DockerError, LimitExceeded, QuotaExceeded, SandboxdError
from .protocol.transfers import parse_mode as parse_mode
from .tarstream import END_OF_ARCHIVE, TarRewriter, check_name, header, padding

#: In the helper's staging directory: the upload itself, and the commit marker.
_STAGED, _COMMIT = "c", "ok"

# Runs as the sandbox's user. $1 root (the working directory), $2 destination relative to
# it, $3 a name to nest under when the destination is an existing directory (docker cp).
# stdin: a tar holding c (the upload) and, last, ok (the daemon's commit).
_UPLOAD_SCRIPT = r"""
root=$1 dest=$2 alt=$3
refuse() { echo "REFUSED $1 $2"; exit 4; }
mkdir -p -- "$root" 2>/dev/null; cd -- "$root" 2>/dev/null || { echo "NOROOT"; exit 3; }
top=$(pwd -P)
staging=$(mktemp -d "$top/.sandboxd-upload-XXXXXX" 2>/dev/null) ||
  staging=$(mktemp -d "${TMPDIR:-/tmp}/.sandboxd-upload-XXXXXX") || exit 3
trap 'rm -rf -- "$staging"' EXIT
trap 'exit 129' HUP INT TERM PIPE
tar -x -p -f - -C "$staging" || exit 5
[ -e "$staging/ok" ] || { echo "ABORTED"; exit 9; }
src=$staging/c
[ -e "$src" ] || [ -L "$src" ] || mkdir -- "$src"
d=$dest
if [ -n "$alt" ] && [ -d "$d" ] && [ ! -L "$d" ]; then d=$d/$alt; fi
a=$(dirname -- "$d")
while [ ! -e "$a" ] && [ ! -L "$a" ]; do a=$(dirname -- "$a"); done
real=$(cd -- "$a" 2>/dev/null && pwd -P) || refuse outside "$d"
if [ "$top" != / ]; then case "$real/" in "$top"/*) ;; *) refuse outside "$d" ;; esac; fi
check() {
  if [ -L "$2" ]; then refuse symlink "$2"; fi
  if [ -d "$1" ] && [ ! -L "$1" ]; then
    [ -e "$2" ] || return 0
    [ -d "$2" ] || refuse file "$2"
    for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
      if [ -e "$e" ] || [ -L "$e" ]; then check "$e" "$2/${e##*/}"; fi
    done
  elif [ -d "$2" ]; then refuse directory "$2"
  fi
  return 0
}
place() {
  if [ -d "$1" ] && [ ! -L "$1" ] && [ -d "$2" ]; then
    for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
      if [ -e "$e" ] || [ -L "$e" ]; then place "$e" "$2/${e##*/}" || return 1; fi
    done
  else
    mv -f -- "$1" "$2"
  fi
}
check "$src" "$d"
mkdir -p -- "$(dirname -- "$d")" && place "$src" "$d" || exit 5
echo "PLACED $d"
"""


_REFUSALS = {
    "outside": "would be written outside the working directory",
    "symlink": "is a symlink (uploads never write through or over a symlink, nor outside the working directory)",
    "file": "is a file, and the upload puts a directory there",
    "directory": "is a directory, and the upload puts a file there",
}
_NO_SPACE = re.compile(rb"No space left on device|Disk quota exceeded")


@dataclass(frozen=True)
class UploadFile:
    #: Path relative to the destination directory, normalised, no "..".
    relative: str
    content: bytes
    mode: int
    mtime: float | None = None


def parse_files(files: Any, workdir: str, limits: LimitsConfig, where: str = "upload-files") -> list[UploadFile]:
    """Check an upload request's ``files`` object, every name before anything is written.

    Raises:
        BadRequest: malformed, a control character in a name, or a path outside
            ``workdir`` (absolute elsewhere, "..").
        LimitExceeded: too many entries, or a file or the whole request over the caps.
    """
    if not isinstance(files, dict) or not files:
        raise BadRequest(f"{where}: files must be a non-empty object of path: content")
    if len(files) > limits.upload_max_entries:
        raise LimitExceeded(f"{where}: more than {limits.upload_max_entries} files in one request")
    out, total = [], 0
    for path, spec in files.items():
        relative = relative_path(path, workdir, where)
        mode = 0o644
        if isinstance(spec, str):
            content = spec.encode("utf-8")
        elif isinstance(spec, dict) and isinstance(spec.get("content"), str):
            content = _content(spec, path, where)
            mode = parse_mode(spec.get("mode", 0o644), f"{where}: {path}")
        else:
            raise BadRequest(f"{where}: {path}: expected text or {{content, encoding?, mode?}}")
        if len(content) > limits.upload_max_file_bytes:
            raise LimitExceeded(f"{where}: {path} is larger than {limits.upload_max_file_bytes} bytes")
        total += len(content)
        if total > limits.upload_max_request_bytes:
            raise LimitExceeded(f"{where}: files add up to more than {limits.upload_max_request_bytes} bytes")
        out.append(UploadFile(relative, content, mode))
    return out


def _content(spec: dict[str, Any], path: str, where: str) -> bytes:
    encoding = spec.get("encoding")
    if encoding == "base64":
        try:
            return base64.b64decode(spec["content"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: {path}: content is not valid base64") from None
    if encoding in (None, "utf-8"):
        return str(spec["content"]).encode("utf-8")
    raise BadRequest(f"{where}: {path}: encoding must be 'base64' or absent")


def relative_path(path: Any, workdir: str, where: str) -> str:
    """``path`` relative to ``workdir``; absolute paths must be inside it.

    Raises:
        BadRequest: not a string, a control character, a ``..`` component, absolute
            outside ``workdir``, or naming the working directory itself.
    """
    if not isinstance(path, str):
        raise BadRequest(f"{where}: invalid path {path!r}")
    check_name(path.lstrip("/") or ".", where)
    if path.startswith("/"):
        root = posixpath.normpath(workdir)
        norm = posixpath.normpath(path)
        if root != "/" and not norm.startswith(root.rstrip("/") + "/"):
            raise BadRequest(f"{where}: {path} is outside the working directory {workdir}")
        path = posixpath.relpath(norm, root)
    relative = posixpath.normpath(path)
    if relative in (".", "") or relative.startswith("../"):
        raise BadRequest(f"{where}: {path} does not name a file")
    return relative


# --- uploads ------------------------------------------------------------------------------


async def upload_files(
    engine: DockerEngine, sandbox: Any, files: list[UploadFile], *, workdir: str, user: str | None
) -> list[str]:
    """Write checked ``files`` (from :func:`parse_files`) into ``workdir``, all or nothing.

    Returns their absolute paths. Raises as :func:`upload_stream`.
    """
    async def archive() -> AsyncIterator[bytes]:
        dirs = sorted({"/".join(f.relative.split("/")[: i + 1])
                       for f in files for i in range(f.relative.count("/"))})
        yield header(_STAGED, kind=tarfile.DIRTYPE, mode=0o755, mtime=_now())
        for d in dirs:
            yield header(f"{_STAGED}/{d}", kind=tarfile.DIRTYPE, mode=0o755, mtime=_now())
        for f in files:
            yield header(f"{_STAGED}/{f.relative}", size=len(f.content), mode=f.mode, mtime=f.mtime or _now())
            yield f.content + padding(len(f.content))
        yield _commit()

    await _place(engine, sandbox, user, workdir, ".", "", archive(), "upload-files")
    return [posixpath.join(workdir, f.relative) for f in files]


async def upload_stream(
    engine: DockerEngine, sandbox: Any, path: str, body: AsyncIterable[bytes], *,
    user: str | None, limits: LimitsConfig, workdir: str | None = None, archive: bool = False,
    size: int | None = None, mode: int = 0o644, mtime: float | None = None, nest: str = "",
) -> str:
    """Stream ``body`` into the sandbox at ``path``; return the absolute path written.

    Args:
        path: relative to ``workdir`` (default: the sandbox's working directory), or
            absolute inside it.
        body: the bytes, in chunks of any size. Read once, one chunk at a time.
        archive: ``body`` is a tar; its entries are placed in the directory ``path``
            (merged into it if it exists). Otherwise ``body`` is one file's content,
            exactly ``size`` bytes, written with ``mode`` and ``mtime``.
        nest: docker cp manners: when ``path`` is an existing directory, place the
            upload at ``path/nest`` instead.

    Nothing is in place until the whole body arrived and was accepted; on any failure
    (including cancellation) nothing is written and the staging directory is removed.

    Raises:
        BadRequest: a bad name, a path outside the working directory or through a
            symlink, a malformed archive, ``size`` not matching the body, or a write
            the sandbox user may not make.
        LimitExceeded: over ``limits.transfer_max_bytes`` or ``upload_max_entries``.
        QuotaExceeded: the sandbox's disk is full.
        SandboxStopped: the sandbox is not running.
    """
    workdir = workdir or await workdir_of(engine, sandbox)
    if nest:
        check_name(nest, "upload")
        if "/" in nest:
            raise BadRequest(f"upload: {nest}: a nest name is a single path component")
    dest = relative_path(path, workdir, "upload") if path not in ("", ".", "./") else "."
    if archive:
        stream = _rewritten(body, limits)
    else:
        if size is None or size < 0:
            raise BadRequest("upload: the size of a file upload must be given")
        if size > limits.transfer_max_bytes:
            raise LimitExceeded(f"upload: larger than {limits.transfer_max_bytes} bytes")
        stream = _one_file(body, size, mode, mtime)
    placed = await _place(engine, sandbox, user, workdir, dest, nest, stream, "upload")
    return posixpath.normpath(posixpath.join(workdir, placed))


async def _one_file(body: AsyncIterable[bytes], size: int, mode: int, mtime: float | None) -> AsyncIterator[bytes]:
    yield header(_STAGED, size=size, mode=mode, mtime=_now() if mtime is None else mtime)
    got = 0
    async for chunk in body:
        got += len(chunk)
        if got > size:
            raise BadRequest(f"upload: more than the announced {size} bytes")
        yield chunk
    if got != size:
        raise BadRequest(f"upload: the body ended after {got} of the announced {size} bytes")
    yield padding(size) + _commit()


async def _rewritten(body: AsyncIterable[bytes], limits: LimitsConfig) -> AsyncIterator[bytes]:
    rewriter = TarRewriter(_STAGED, max_entries=limits.upload_max_entries, max_bytes=limits.transfer_max_bytes)
    yield header(_STAGED, kind=tarfile.DIRTYPE, mode=0o755, mtime=_now())
    async for chunk in body:
        if out := rewriter.feed(chunk):
            yield out
    rewriter.finish()
    yield _commit()


def _commit() -> bytes:
    return header(_COMMIT) + END_OF_ARCHIVE


def _now() -> float:
    return time.time()


@dataclass
class _Output:
    """What a helper wrote (bounded), and whether it ended."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    done: trio.Event = field(default_factory=trio.Event)

    async def collect(self, stream: ExecStream, writer: trio.CancelScope) -> None:
        parser = FrameParser()
        try:
            while data := await stream.receive_some():
                for sid, payload in parser.feed(data):
                    buf = self.stdout if sid == STDOUT else self.stderr if sid == STDERR else None
                    if buf is not None and len(buf) < 65536:
                        buf += payload
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.done.set()
            writer.cancel()  # the helper ended: anything still being written has no reader


async def _place(
    engine: DockerEngine, sandbox: Any, user: str | None, root: str, dest: str, nest: str,
    archive: AsyncIterator[bytes], where: str,
) -> str:
    """Feed ``archive`` to the upload helper; return where it placed the upload (relative)."""
    exec_id = await engine.exec_create(
        sandbox.id, ["/bin/sh", "-c", _UPLOAD_SCRIPT, "sandboxd-upload", root, dest, nest], user=user, stdin=True
    )
    out = _Output()
    timeout = engine.config.call_timeout_seconds
    failure: Exception | None = None
    async with engine.open_exec_stream(exec_id) as stream:
        async with trio.open_nursery() as nursery:
            writer = trio.CancelScope()
            nursery.start_soon(out.collect, stream, writer)
            try:
                with writer:
                    await _feed(stream, archive, timeout)
            except BaseException as exc:
                # Abort: stdin ends without the commit entry, so the helper writes nothing and
                # removes its staging directory. Wait for that, briefly, whatever happened.
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    try:
                        await stream.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        pass
                    await out.done.wait()
                if not isinstance(exc, Exception):
                    raise  # cancellation: nothing to report
                failure = exc  # raised below, outside the nursery (not as an exception group)
            with trio.move_on_after(timeout):
                await out.done.wait()
            nursery.cancel_scope.cancel()
    if isinstance(failure, trio.TooSlowError):
        raise DockerError(f"the sandbox stopped taking data for {timeout:g} s", op=where) from None
    if failure is not None:
        raise failure
    code = await exit_code(engine, exec_id)
    said = out.stdout.decode("utf-8", "replace").strip().splitlines()
    if code == 0 and said and said[-1].startswith("PLACED "):
        return said[-1][7:]
    raise _upload_error(code, said, bytes(out.stderr), where, root)


async def _feed(stream: ExecStream, archive: AsyncIterator[bytes], timeout: float) -> None:
    """Write ``archive`` to the helper's stdin, then close it; stop quietly if the helper
    ended early (what it said explains why). Errors of ``archive`` itself propagate."""
    async for chunk in archive:
        try:
            with trio.fail_after(timeout):
                await stream.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
    try:
        await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


def _upload_error(code: int | None, said: list[str], stderr: bytes, where: str, root: str) -> SandboxdError:
    if _NO_SPACE.search(stderr):
        return QuotaExceeded(f"{where}: the sandbox's disk is full (no space left for the upload)")
    last = said[-1] if said else ""
    if code == 4 and last.startswith("REFUSED "):
        _, reason, path = last.split(" ", 2)
        text = _REFUSALS.get(reason, "cannot be written").replace("the working directory", f"the working directory {root}")
        return BadRequest(f"{where}: {path.removeprefix('./')} {text}")
    if code == 3:
        return BadRequest(f"{where}: the working directory {root} is not usable by the sandbox user")
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    detail = lines[-1] if lines else last or f"exit {code}"
    return BadRequest(f"{where}: could not write the files as the sandbox user: {detail}")

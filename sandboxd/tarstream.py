"""Tar streams the daemon writes, and the checked rewrite of tar streams clients send.

I/O-free. Every upload reaches a sandbox as a tar stream that *the daemon* wrote: its
own headers, for names it checked, holding only regular files, directories and
symbolic links. A client's tar (``sandboxd cp DIR ID:PATH``) is never passed through:
:class:`TarRewriter` parses it block by block and writes a fresh stream from the
entries it accepts, so the sandbox's ``tar`` only ever sees what the daemon allowed.

Names are checked by :func:`check_name`: relative, no ``..``, no control characters
(``\\x00``-``\\x1f``, ``\\x7f``). A client archive may not reach through one of its own
symbolic links (``link -> /etc`` then ``link/passwd``), nor contain hard links, devices
or FIFOs.
"""

from __future__ import annotations

import posixpath
import re
import tarfile

from .errors import BadRequest, LimitExceeded

BLOCK = 512
#: Two zero blocks end an archive.
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Largest pax or GNU long-name record accepted from a client.
_MAX_META = 64 * 1024
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def check_name(name: str, where: str) -> str:
    """``name`` normalised (relative, ``/``-separated), or :class:`BadRequest` saying why."""
    if not name or _CONTROL.search(name):
        raise BadRequest(f"{where}: invalid path {name!r} (empty, or control characters)")
    if ".." in name.split("/"):
        raise BadRequest(f"{where}: {name}: '..' is not allowed")
    if name.startswith("/"):
        raise BadRequest(f"{where}: {name}: absolute names are not allowed in an archive")
    return posixpath.normpath(name)


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def header(name: str, *, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644,
           mtime: float = 0, linkname: str = "") -> bytes:
    """The header block(s) of one entry (pax records for long names)."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode & 0o777, int(mtime), linkname
    info.size = size if kind in _FILE_TYPES else 0
    return info.tobuf(tarfile.PAX_FORMAT)


class TarRewriter:
    """Parse a client's tar stream incrementally; emit a checked copy under ``prefix/``.

    ``feed(data)`` returns the bytes to pass on (possibly empty); ``finish()`` checks
    the stream ended where an archive may end. Neither adds the end-of-archive blocks:
    the caller decides when the stream is complete.

    Raises (from either):
        BadRequest: a malformed header, a name :func:`check_name` refuses, an entry
            under one of the archive's own symlinks, or a type other than file,
            directory or symlink.
        LimitExceeded: more than ``max_entries`` entries or ``max_bytes`` of content.
    """

    def __init__(self, prefix: str, *, max_entries: int, max_bytes: int, where: str = "upload") -> None:
        self.prefix, self.where = prefix, where
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries = 0
        self.content_bytes = 0
        self._buf = bytearray()
        self._size = 0
        self._data_left = 0       # bytes of the current entry's content still to pass on
        self._skip = 0            # padding (or ignored records) still to drop
        self._meta_left = 0       # bytes of a pax/GNU record still to collect
        self._meta_kind = b""
        self._meta = bytearray()
        self._pending: dict[str, str] = {}  # from a pax or GNU long-name record
        self._symlinks: set[str] = set()
        self._dirs: set[str] = set()
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view = memoryview(data)
        while view and not self._ended:
            if self._data_left:
                n = min(self._data_left, len(view))
                out += view[:n]
                self._data_left -= n
                view = view[n:]
                if not self._data_left:
                    out += padding(self._size)
                continue
            if self._meta_left:
                n = min(self._meta_left, len(view))
                self._meta += view[:n]
                self._meta_left -= n
                view = view[n:]
                if not self._meta_left:
                    self._end_meta()
                continue
            if self._skip:  # the client's padding after content or a record
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            n = min(BLOCK - len(self._buf), len(view))
            self._buf += view[:n]
            view = view[n:]
            if len(self._buf) == BLOCK:
                block, self._buf = bytes(self._buf), bytearray()
                out += self._header(block)
        return bytes(out)

    def finish(self) -> None:
        if self._data_left or self._meta_left or self._skip or self._buf or self._pending:
            raise BadRequest(f"{self.where}: the archive ends in the middle of an entry")

    # --- headers ---------------------------------------------------------------------

    def _header(self, block: bytes) -> bytes:
        if block == b"\0" * BLOCK:
            self._ended = True
            return b""
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise BadRequest(f"{self.where}: not a tar archive ({exc})") from None
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            if info.size > _MAX_META:
                raise BadRequest(f"{self.where}: an archive header record is too long")
            self._meta_kind, self._meta, self._meta_left = info.type, bytearray(), info.size
            self._skip = len(padding(info.size))
            if not info.size:
                self._end_meta()
            return b""
        name = self._pending.pop("path", info.name)
        linkname = self._pending.pop("linkpath", info.linkname)
        size = int(self._pending.pop("size", info.size))
        mtime = float(self._pending.pop("mtime", info.mtime))
        self._pending.clear()
        rel = "" if name.rstrip("/") in ("", ".") else check_name(name.removeprefix("./"), self.where)
        self.entries += 1
        if self.entries > self.max_entries:
            raise LimitExceeded(f"{self.where}: more than {self.max_entries} entries in one upload")
        parents = rel.split("/")[:-1]
        for i in range(len(parents)):
            if "/".join(parents[: i + 1]) in self._symlinks:
                raise BadRequest(f"{self.where}: {rel} is inside the archive's own symlink")
            self._dirs.add("/".join(parents[: i + 1]))
        target = posixpath.join(self.prefix, rel) if rel else self.prefix
        if info.type in _FILE_TYPES:
            if not rel:
                raise BadRequest(f"{self.where}: an archive entry names no file")
            self.content_bytes += size
            if self.content_bytes > self.max_bytes:
                raise LimitExceeded(f"{self.where}: more than {self.max_bytes} bytes in one upload")
            self._data_left, self._size, self._skip = size, size, -size % BLOCK
            return header(target, size=size, mode=info.mode, mtime=mtime)
        if info.type == tarfile.DIRTYPE:
            self._dirs.add(rel)
            return header(target, kind=tarfile.DIRTYPE, mode=info.mode, mtime=mtime)
        if info.type == tarfile.SYMTYPE:
            if not rel or rel in self._dirs or _CONTROL.search(linkname) or not linkname:
                raise BadRequest(f"{self.where}: {rel or name}: a symlink that cannot be placed")
            self._symlinks.add(rel)
            return header(target, kind=tarfile.SYMTYPE, mtime=mtime, linkname=linkname)
        what = {tarfile.LNKTYPE: "hard links"}.get(info.type, "devices, FIFOs and other special files")
        raise BadRequest(f"{self.where}: {rel}: {what} are not accepted; only files, directories and symlinks")

    def _end_meta(self) -> None:
        raw = bytes(self._meta)
        if self._meta_kind == tarfile.GNUTYPE_LONGNAME:
            self._pending["path"] = raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif self._meta_kind == tarfile.GNUTYPE_LONGLINK:
            self._pending["linkpath"] = raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif self._meta_kind == tarfile.XHDTYPE:
            self._pending.update(_pax_records(raw, self.where))
        # global pax headers (XGLTYPE) carry nothing we keep


def _pax_records(raw: bytes, where: str) -> dict[str, str]:
    """``LEN key=value\\n`` records; only the keys we use are kept."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        space = raw.find(b" ", pos)
        try:
            length = int(raw[pos:space])
        except ValueError:
            raise BadRequest(f"{where}: malformed pax header in the archive") from None
        if space < 0 or length <= 0 or pos + length > len(raw):
            raise BadRequest(f"{where}: malformed pax header in the archive")
        key, _, value = raw[space + 1 : pos + length - 1].partition(b"=")
        if key in (b"path", b"linkpath", b"size", b"mtime"):
            out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    try:
        if "size" in out:
            int(out["size"])
        if "mtime" in out:
            float(out["mtime"])
    except ValueError:
        raise BadRequest(f"{where}: malformed pax header in the archive") from None
    return out

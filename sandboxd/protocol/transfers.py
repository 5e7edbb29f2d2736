"""Client messages of chunked file transfers (``upload-start``/``-chunk``/``-end``,
``download-start``); :mod:`.client` registers their parsers.

I/O-free. Each parser takes a :class:`~._fields.Fields` and raises
:class:`~sandboxd.errors.BadRequest` naming the field at fault.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import BadRequest
from ._fields import Ref


@dataclass(frozen=True)
class UploadStart:
    container_id: str
    path: str
    workdir: str | None = None
    #: Bytes of a file upload (required unless ``archive``).
    size: int | None = None
    mode: int = 0o644
    mtime: float | None = None
    #: The chunks are a tar archive, placed in the directory ``path``.
    archive: bool = False
    #: docker cp manners: if ``path`` is an existing directory, place the upload in it under this name.
    nest: str = ""
    ref: Ref = None


@dataclass(frozen=True)
class UploadChunk:
    upload_id: str
    data: bytes
    ref: Ref = None


@dataclass(frozen=True)
class UploadEnd:
    upload_id: str
    ref: Ref = None


@dataclass(frozen=True)
class DownloadStart:
    container_id: str
    path: str
    ref: Ref = None


def parse_mode(raw: Any, where: str) -> int:
    """A permission mode given as an octal string (``"755"``) or a number."""
    if isinstance(raw, str):
        try:
            raw = int(raw, 8)
        except ValueError:
            raise BadRequest(f"{where}: mode must be octal like '755' or a number") from None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 0o777:
        raise BadRequest(f"{where}: mode must be between 0 and 0o777")
    return raw


def _mode(f: Any) -> int:
    return parse_mode(f.obj().get("mode", 0o644), f.event)


def _size(f: Any) -> int | None:
    raw = f.obj().get("size")
    if raw is not None and (not isinstance(raw, int) or isinstance(raw, bool) or raw < 0):
        raise BadRequest(f"{f.event}: field 'size' must be a non-negative integer")
    return raw


def _mtime(f: Any) -> float | None:
    raw = f.obj().get("mtime")
    if raw is not None and (not isinstance(raw, (int, float)) or isinstance(raw, bool)
                            or not math.isfinite(raw) or not 0 <= raw < 2**33):
        raise BadRequest(f"{f.event}: field 'mtime' must be seconds since the epoch")
    return raw


def _parse_start(f: Any) -> UploadStart:
    archive = f.bool("archive")
    size = _size(f)
    if not archive and size is None:
        raise BadRequest(f"{f.event}: field 'size' is required for a file (or set archive: true)")
    return UploadStart(f.id("containerId"), f.str("path", required=True), f.str("workdir"), size,
                       _mode(f), _mtime(f), archive, f.str("nest") or "", f.ref)


def _parse_chunk(f: Any) -> UploadChunk:
    data = f.str("data", required=True)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{f.event}: field 'data' must be base64") from None
    return UploadChunk(f.id("uploadId"), raw, f.ref)


PARSERS: dict[str, Callable[[Any], Any]] = {
    "upload-start": _parse_start,
    "upload-chunk": _parse_chunk,
    "upload-end": lambda f: UploadEnd(f.id("uploadId"), f.ref),
    "download-start": lambda f: DownloadStart(f.id("containerId"), f.str("path", required=True), f.ref),
}

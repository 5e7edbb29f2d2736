"""Moving files into and out of sandboxes, without ever writing outside their workdir.

Uploads go through the Engine's archive API, but never straight to their destination:
the engine extracts archives as root and would follow a symlink that the sandbox planted
(``work/link -> /etc``) to anywhere in the container. So the archive is extracted into a
fresh, randomly named staging directory under ``/tmp``, and a short script *running as
the sandbox's user* checks every destination (its resolved parent must be inside the
working directory, and it must not itself be a symlink) before moving the files into
place. A path that would leave the working directory is refused with ``BAD_REQUEST``
and nothing is written; whatever races the check, the final move has only the sandbox
user's own permissions.

Downloads run ``cat`` as the sandbox's user, so they can read only what the sandbox's
own commands could.
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
import secrets
import tarfile
from dataclasses import dataclass
from typing import Any

from .config import LimitsConfig
from .errors import BadRequest, LimitExceeded, NotFound

_STAGING_ROOT = "/tmp"

# $1 staging dir, $2 destination dir, then relative paths. Exit 4 with "REFUSED path" on
# a path that would leave the destination.
_PLACE_SCRIPT = r"""
staging=$1; dest=$2; shift 2
refuse() { echo "REFUSED $1"; rm -rf -- "$staging"; exit 4; }
mkdir -p -- "$dest" && cd -- "$dest" || { echo "NODEST"; rm -rf -- "$staging"; exit 3; }
root=$(pwd -P)
for rel in "$@"; do
  d=$(dirname -- "$rel")
  while [ ! -e "$d" ] && [ ! -L "$d" ] && [ "$d" != "." ]; do d=$(dirname -- "$d"); done
  real=$(cd -- "$d" 2>/dev/null && pwd -P) || refuse "$rel"
  if [ "$root" != / ]; then case "$real/" in "$root"/*) ;; *) refuse "$rel" ;; esac; fi
  [ -L "$rel" ] && refuse "$rel"
  [ -d "$rel" ] && refuse "$rel"
done
for rel in "$@"; do
  mkdir -p -- "$(dirname -- "$rel")" && mv -f -- "$staging/$rel" "$rel" || { echo "FAILED $rel"; rm -rf -- "$staging"; exit 5; }
done
rm -rf -- "$staging"
"""


@dataclass(frozen=True)
class UploadFile:
    #: Path relative to the destination directory, normalised, no "..".
    relative: str
    content: bytes
    mode: int


def parse_files(files: Any, workdir: str, limits: LimitsConfig, where: str = "upload-files") -> list[UploadFile]:
    """Check an upload request's ``files`` object.

    Raises:
        BadRequest: malformed, or a path outside ``workdir`` (absolute elsewhere, "..").
        LimitExceeded: a file or the whole request is over the configured caps.
    """
    if not isinstance(files, dict) or not files:
        raise BadRequest(f"{where}: files must be a non-empty object of path: content")
    out, total = [], 0
    for path, spec in files.items():
        relative = relative_path(path, workdir, where)
        mode = 0o644
        if isinstance(spec, str):
            content = spec.encode("utf-8")
        elif isinstance(spec, dict) and isinstance(spec.get("content"), str):
            encoding = spec.get("encoding")
            if encoding == "base64":
                try:
                    content = base64.b64decode(spec["content"], validate=True)
                except (binascii.Error, ValueError):
                    raise BadRequest(f"{where}: {path}: content is not valid base64") from None
            elif encoding in (None, "utf-8"):
                content = spec["content"].encode("utf-8")
            else:
                raise BadRequest(f"{where}: {path}: encoding must be 'base64' or absent")
            raw_mode = spec.get("mode", 0o644)
            if isinstance(raw_mode, str):
                try:
                    raw_mode = int(raw_mode, 8)
                except ValueError:
                    raise BadRequest(f"{where}: {path}: mode must be octal like '755' or a number") from None
            if not isinstance(raw_mode, int) or isinstance(raw_mode, bool) or not 0 <= raw_mode <= 0o777:
                raise BadRequest(f"{where}: {path}: mode must be between 0 and 0o777")
            mode = raw_mode
        else:
            raise BadRequest(f"{where}: {path}: expected text or {{content, encoding?, mode?}}")
        if len(content) > limits.upload_max_file_bytes:
            raise LimitExceeded(f"{where}: {path} is larger than {limits.upload_max_file_bytes} bytes")
        total += len(content)
        if total > limits.upload_max_request_bytes:
            raise LimitExceeded(f"{where}: files add up to more than {limits.upload_max_request_bytes} bytes")
        out.append(UploadFile(relative, content, mode))
    return out


def relative_path(path: Any, workdir: str, where: str) -> str:
    if not isinstance(path, str) or not path or "\x00" in path:
        raise BadRequest(f"{where}: invalid path {path!r}")
    if ".." in path.split("/"):
        raise BadRequest(f"{where}: {path}: '..' is not allowed")
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


def build_archive(staging: str, files: list[UploadFile], uid: int, gid: int) -> bytes:
    """An in-memory tar of ``files`` under ``staging/``, owned by the sandbox user."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {staging}
        for f in files:
            parts = f.relative.split("/")[:-1]
            for i in range(len(parts)):
                dirs.add(posixpath.join(staging, *parts[: i + 1]))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o700, uid, gid
            tar.addfile(info)
        for f in files:
            info = tarfile.TarInfo(posixpath.join(staging, f.relative))
            info.size, info.mode, info.uid, info.gid = len(f.content), f.mode, uid, gid
            tar.addfile(info, io.BytesIO(f.content))
    return buf.getvalue()


async def upload(hub: Any, sandbox: Any, files: list[UploadFile], workdir: str) -> list[str]:
    """Write ``files`` into ``workdir`` of ``sandbox``; return their absolute paths."""
    user = hub.config.sandbox.user or None
    uid, gid = await user_ids(hub, sandbox, user)
    staging = f".sandboxd-upload-{secrets.token_hex(8)}"
    await hub.engine.put_archive(sandbox.id, _STAGING_ROOT, build_archive(staging, files, uid, gid))
    result = await hub.run_quietly(
        sandbox.id,
        ["/bin/sh", "-c", _PLACE_SCRIPT, "sandboxd-upload", f"{_STAGING_ROOT}/{staging}", workdir,
         *(f.relative for f in files)],
        user=user,
    )
    said = result.stdout.decode("utf-8", "replace").strip()
    if result.exit_code == 4 and said.startswith("REFUSED "):
        raise BadRequest(f"upload-files: {said[8:]} would be written outside the working directory {workdir}")
    if result.exit_code != 0:
        detail = said or result.stderr.decode("utf-8", "replace").strip() or f"exit {result.exit_code}"
        raise BadRequest(f"upload-files: could not write the files: {detail}")
    return [posixpath.join(workdir, f.relative) for f in files]


async def user_ids(hub: Any, sandbox: Any, user: str | None) -> tuple[int, int]:
    if sandbox.user_ids is None:
        result = await hub.run_quietly(sandbox.id, ["/bin/sh", "-c", "id -u; id -g"], user=user)
        try:
            uid, gid = (int(x) for x in result.stdout.split())
        except ValueError:
            raise BadRequest("upload-files: cannot tell the sandbox user's id (no `id` in the image?)") from None
        sandbox.user_ids = (uid, gid)
    return sandbox.user_ids


async def workdir_of(hub: Any, sandbox: Any) -> str:
    """The sandbox's working directory (the image's WORKDIR, else /)."""
    if sandbox.workdir is None:
        info = await hub.engine.inspect_container(sandbox.id)
        sandbox.workdir = (info.get("Config") or {}).get("WorkingDir") or "/"
    return sandbox.workdir


async def download(hub: Any, sandbox: Any, path: str, limits: LimitsConfig) -> bytes:
    """The bytes of ``path`` (relative to the workdir, or absolute), read as the sandbox user."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise BadRequest("download-file: invalid path")
    workdir = await workdir_of(hub, sandbox)
    full = path if path.startswith("/") else posixpath.join(workdir, path)
    result = await hub.run_quietly(
        sandbox.id, ["/bin/sh", "-c", '[ -f "$1" ] || { echo "not a file" >&2; exit 2; }; exec cat -- "$1"', "sh", full],
        user=hub.config.sandbox.user or None, max_output=limits.download_max_bytes + 1,
    )
    if result.exit_code != 0:
        raise NotFound(f"no such file in the sandbox: {path}")
    if len(result.stdout) > limits.download_max_bytes:
        raise LimitExceeded(f"download-file: {path} is larger than {limits.download_max_bytes} bytes")
    return result.stdout

"""A client's tar is rewritten entry by entry; what the sandbox's tar sees is checked."""

from __future__ import annotations

import io
import tarfile

import pytest

from sandboxd.errors import BadRequest, LimitExceeded
from sandboxd.tarstream import END_OF_ARCHIVE, TarRewriter


def _tar(*entries: tarfile.TarInfo | tuple[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            if isinstance(e, tuple):
                info = tarfile.TarInfo(e[0])
                info.size, info.mode, info.mtime = len(e[1]), 0o751, 1_234_567_890
                tar.addfile(info, io.BytesIO(e[1]))
            else:
                tar.addfile(e)
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _rewrite(data: bytes, step: int = 7, **caps: int) -> dict[str, tarfile.TarInfo | bytes]:
    rw = TarRewriter("c", max_entries=caps.get("max_entries", 100), max_bytes=caps.get("max_bytes", 1 << 30))
    out = b"".join(rw.feed(data[i:i + step]) for i in range(0, len(data), step))
    rw.finish()
    with tarfile.open(fileobj=io.BytesIO(out + END_OF_ARCHIVE)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else m) for m in tar.getmembers()} | {
            "_members": {m.name: m for m in tar.getmembers()}}


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_content_names_modes_and_mtimes_pass_unchanged_under_the_prefix(fmt):
    long = "d/" + "n" * 150 + "/file" if fmt != tarfile.USTAR_FORMAT else "d/file"
    got = _rewrite(_tar(("a.txt", b"x" * 1000), (long, b"deep"), _link("l", "a.txt"), fmt=fmt))
    assert got["c/a.txt"] == b"x" * 1000 and got[f"c/{long}"] == b"deep"
    member = got["_members"]["c/a.txt"]
    assert (member.mode, member.mtime) == (0o751, 1_234_567_890)
    assert got["_members"]["c/l"].linkname == "a.txt"


@pytest.mark.parametrize("entries, fragment", [
    ((("../x", b""),), "'..'"),
    ((("/etc/x", b""),), "absolute"),
    ((("new\nline", b""),), "control characters"),
    ((_link("l", "/etc"), ("l/passwd", b"")), "own symlink"),
    ((_link("h", "a", tarfile.LNKTYPE),), "hard links"),
])
def test_dangerous_entries_are_refused(entries, fragment):
    with pytest.raises(BadRequest, match=fragment):
        _rewrite(_tar(*entries))


def test_caps_and_truncation():
    with pytest.raises(LimitExceeded):
        _rewrite(_tar(*[(f"f{i}", b"") for i in range(5)]), max_entries=4)
    with pytest.raises(LimitExceeded):
        _rewrite(_tar(("big", b"x" * 2000)), max_bytes=1000)
    with pytest.raises(BadRequest, match="middle of an entry"):
        _rewrite(_tar(("f", b"x" * 2000))[:1200])
    with pytest.raises(BadRequest, match="not a tar archive"):
        _rewrite(b"hello" * 200)

"""The streaming file API (sandboxd.files) that every file front end is built on."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from sandboxd import files
from sandboxd.config import DockerConfig, LimitsConfig
from sandboxd.engine import DockerEngine
from sandboxd.errors import SandboxdError

from .conftest import FAST_IMAGE

LIMITS = LimitsConfig()


@pytest.fixture
async def target(daemon, client):
    """(engine, sandbox) for calling sandboxd.files directly on a daemon-created sandbox."""
    created = await client.call("create-container", {"image": FAST_IMAGE})
    engine = DockerEngine(DockerConfig(instance=daemon.instance))
    yield engine, SimpleNamespace(id=created["containerId"], workdir=None)
    await engine.aclose()


async def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_a_file_streams_in_and_out_with_its_bytes_mode_and_mtime(target):
    engine, sandbox = target
    blob = os.urandom(3 * 1024 * 1024 + 17)
    path = await files.upload_stream(engine, sandbox, "deep/dir/blob.bin", _chunks(blob), user=None, limits=LIMITS,
                                     size=len(blob), mode=0o750, mtime=1_000_000_000)
    assert path == "/home/sandbox/deep/dir/blob.bin"
    async with files.open_download(engine, sandbox, "deep/dir/blob.bin", user=None, max_bytes=1 << 30) as got:
        assert (got.kind, got.size, got.mode, got.mtime) == ("file", len(blob), 0o750, 1_000_000_000)
        digest = hashlib.sha256()
        async for chunk in got.chunks():
            assert len(chunk) <= 256 * 1024
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(blob).digest()


async def test_a_directory_goes_both_ways_as_tar_and_nests_like_docker_cp(target):
    engine, sandbox = target
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in (("src/main.py", b"print(1)\n", 0o755), ("README", b"hello\n", 0o600)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_500_000_000
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("latest")
        link.type, link.linkname = tarfile.SYMTYPE, "src/main.py"
        tar.addfile(link)
    archive = buf.getvalue()
    first = await files.upload_stream(engine, sandbox, "proj", _chunks(archive, 1000), user=None, limits=LIMITS,
                                      archive=True, nest="proj")
    again = await files.upload_stream(engine, sandbox, "proj", _chunks(archive), user=None, limits=LIMITS,
                                      archive=True, nest="proj")
    assert (first, again) == ("/home/sandbox/proj", "/home/sandbox/proj/proj")  # docker cp: into an existing dir
    async with files.open_download(engine, sandbox, "proj", user=None, max_bytes=1 << 20) as got:
        assert got.kind == "directory"
        data = b"".join([c async for c in got.chunks()])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        assert tar.extractfile(members["src/main.py"]).read() == b"print(1)\n"
    assert (members["src/main.py"].mode, members["src/main.py"].mtime) == (0o755, 1_500_000_000)
    assert members["README"].mode == 0o600 and members["latest"].linkname == "src/main.py"
    assert "proj/README" in members


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../../x", "bad\x01name"])
async def test_paths_with_dot_dot_or_control_characters_are_refused_both_ways(target, name):
    engine, sandbox = target
    with pytest.raises(SandboxdError) as info:
        async with files.open_download(engine, sandbox, name, user=None, max_bytes=100):
            pass
    assert info.value.code == "BAD_REQUEST"
    with pytest.raises(SandboxdError) as info:
        await files.upload_stream(engine, sandbox, name, _chunks(b"x"), user=None, limits=LIMITS, size=1)
    assert info.value.code == "BAD_REQUEST"


async def test_a_short_body_or_a_bad_archive_fails_cleanly_and_writes_nothing(target):
    engine, sandbox = target
    with pytest.raises(SandboxdError) as info:  # a plain error, not an exception group
        await files.upload_stream(engine, sandbox, "short.bin", _chunks(b"12345"), user=None, limits=LIMITS, size=10)
    assert info.value.code == "BAD_REQUEST" and "after 5 of the announced 10 bytes" in info.value.message
    with pytest.raises(SandboxdError) as info:
        await files.upload_stream(engine, sandbox, "dir", _chunks(b"not a tar" * 100), user=None, limits=LIMITS,
                                  archive=True)
    assert info.value.code == "BAD_REQUEST" and "not a tar archive" in info.value.message
    async with files.open_download(engine, sandbox, ".", user=None, max_bytes=1 << 20) as got:
        listing = b"".join([c async for c in got.chunks()])
    with tarfile.open(fileobj=io.BytesIO(listing)) as tar:
        assert [m.name for m in tar.getmembers()] == ["."]  # nothing placed, no staging left

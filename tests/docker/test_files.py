"""Files in and out of sandboxes: exact bytes, modes, and no way out of the workdir."""

from __future__ import annotations

import base64
import os

import pytest
import trio

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .conftest import BASE_IMAGE, FAST_IMAGE
from .helpers import follow, run


async def test_upload_then_run_then_download_round_trip(client, sandbox):
    blob = os.urandom(100_000)
    done = await client.call("upload-files", {"containerId": sandbox, "files": {
        "main.sh": "echo from main.sh\n",
        "bin/tool": {"content": "#!/bin/sh\necho tool\n", "mode": "755"},
        "data/blob.bin": {"content": base64.b64encode(blob).decode(), "encoding": "base64"},
    }})
    assert done["paths"] == ["/home/sandbox/main.sh", "/home/sandbox/bin/tool", "/home/sandbox/data/blob.bin"]
    seen = await run(client, sandbox, ["sh", "-c", "sh main.sh; ./bin/tool; stat -c '%a %u' bin/tool data/blob.bin"])
    assert bytes(seen.stdout) == b"from main.sh\ntool\n755 1000\n644 1000\n"
    got = await client.call("download-file", {"containerId": sandbox, "path": "data/blob.bin"})
    assert base64.b64decode(got["content"]) == blob and got["size"] == len(blob)


async def test_execute_command_can_bring_its_files(client, sandbox):
    accepted = await client.call("execute-command", {
        "containerId": sandbox, "command": ["python3", "-c", "print(open('in.txt').read().upper())"],
        "files": {"in.txt": "shout"}})
    # busybox has no python3; the point is that the file landed before the command ran
    await follow(client, accepted["executionId"])
    seen = await run(client, sandbox, ["cat", "in.txt"])
    assert bytes(seen.stdout) == b"shout"


@pytest.mark.parametrize("path, fragment", [
    ("/etc/evil", "outside the working directory"),
    ("../escape", "'..' is not allowed"),
    ("a/../../escape", "'..' is not allowed"),
    ("/home/sandbox/../../etc/evil", "'..' is not allowed"),
])
async def test_paths_outside_the_workdir_are_refused(client, sandbox, path, fragment):
    with pytest.raises(SandboxdError) as info:
        await client.call("upload-files", {"containerId": sandbox, "files": {path: "x"}})
    assert info.value.code == "BAD_REQUEST" and fragment in info.value.message


async def test_writes_through_symlinks_leading_out_are_refused_and_write_nothing(client, sandbox, docker_client):
    await run(client, sandbox, ["sh", "-c", "ln -s /etc etclink && ln -s /tmp/target direct && mkdir -p ok"])
    container = docker_client.containers.get(sandbox)
    for path in ("etclink/passwd", "etclink/new-file", "direct"):
        with pytest.raises(SandboxdError) as info:
            await client.call("upload-files", {"containerId": sandbox, "files": {"ok/fine": "x", path: "pwned\n"}})
        assert info.value.code == "BAD_REQUEST" and "outside the working directory" in info.value.message
    listing = container.exec_run(["sh", "-c", "cat /etc/passwd; ls /etc; ls /tmp; ls ok"], user="root").output
    assert b"pwned" not in listing and b"new-file" not in listing and b"target" not in listing
    assert b"fine" not in listing  # nothing at all was written
    assert b".sandboxd-upload" not in container.exec_run(["ls", "-a", "/home/sandbox"]).output  # staging removed


async def test_oversized_uploads_are_refused(make_daemon):
    daemon = make_daemon("[limits]\nupload_max_file_bytes = 1000\nupload_max_request_bytes = 1500\n")
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        with pytest.raises(SandboxdError) as info:
            await client.call("upload-files", {"containerId": sandbox, "files": {"big": "x" * 1001}})
        assert info.value.code == "LIMIT_EXCEEDED"
        with pytest.raises(SandboxdError) as info:
            await client.call("upload-files", {"containerId": sandbox, "files": {"a": "x" * 800, "b": "y" * 800}})
        assert info.value.code == "LIMIT_EXCEEDED"
        seen = await run(client, sandbox, ["ls"])
    assert bytes(seen.stdout) == b""


async def test_download_of_a_missing_file_is_not_found(client, sandbox):
    with pytest.raises(SandboxdError) as info:
        await client.call("download-file", {"containerId": sandbox, "path": "nope.txt"})
    assert info.value.code == "NOT_FOUND"


def test_cp_copies_big_files_and_directories_both_ways_keeping_modes_and_mtimes(daemon, tmp_path):
    sandbox = daemon.cli("sandbox", "create", "--image", FAST_IMAGE).stdout.decode().strip()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 3))  # larger than one WebSocket message
    big.chmod(0o750)
    os.utime(big, (1_000_000_000, 1_000_000_000))
    tree = tmp_path / "proj"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "run.sh").write_bytes(b"#!/bin/sh\necho run\n")
    (tree / "src" / "run.sh").chmod(0o755)
    (tree / "notes.txt").write_bytes(b"notes\n")
    os.utime(tree / "notes.txt", (1_500_000_000, 1_500_000_000))

    up = daemon.cli("cp", str(big), f"{sandbox}:data/")
    assert up.returncode == 0, up.stderr
    assert up.stdout.decode().strip() == "/home/sandbox/data/big.bin"
    for expected in ("/home/sandbox/proj", "/home/sandbox/proj/proj"):  # the second lands inside the first
        up = daemon.cli("cp", str(tree), f"{sandbox}:proj")
        assert (up.returncode, up.stdout.decode().strip()) == (0, expected), up.stderr

    back = tmp_path / "back"
    assert daemon.cli("cp", f"{sandbox}:data/big.bin", str(tmp_path / "big.copy")).returncode == 0
    assert daemon.cli("cp", f"{sandbox}:proj", str(back)).returncode == 0
    copy = tmp_path / "big.copy"
    assert copy.read_bytes() == big.read_bytes()
    assert (copy.stat().st_mode & 0o777, copy.stat().st_mtime) == (0o750, 1_000_000_000)
    assert (back / "src" / "run.sh").read_bytes() == b"#!/bin/sh\necho run\n"
    assert (back / "src" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (back / "notes.txt").stat().st_mtime == 1_500_000_000
    assert (back / "proj" / "notes.txt").read_bytes() == b"notes\n"

    refused = daemon.cli("cp", f"{sandbox}:../../etc/passwd", "-")
    assert refused.returncode == 2 and refused.stdout == b""
    assert b"'..' is not allowed" in refused.stderr


# As the sandbox user: once the daemon has begun placing an upload's files, atomically
# exchange the staged directory "d" for a symlink to /etc (renameat2 RENAME_EXCHANGE).
_SWAP_STAGING_FOR_ETC = r"""
import ctypes, glob, os
libc = ctypes.CDLL(None, use_errno=True)
while True:
    for d in glob.glob("/tmp/.sandboxd-upload-*/d") + glob.glob("/home/sandbox/.sandboxd-upload-*/c/d"):
        if os.path.exists(d + "/f05") and not os.path.islink(d):
            link = d + ".link"
            try:
                os.symlink("/etc", link)
            except OSError:
                continue
            libc.renameat2(-100, link.encode(), -100, d.encode(), 2)
"""


async def test_a_sandbox_racing_an_upload_cannot_make_it_write_into_root_owned_dirs(client, docker_client):
    sandbox = (await client.call("create-container", {"image": BASE_IMAGE}))["containerId"]
    attacker = await client.call("execute-command", {
        "containerId": sandbox, "command": ["python3", "-c", _SWAP_STAGING_FOR_ETC], "timeout": 120})
    files = {f"d/f{i:02}": "pwned\n" * 1000 for i in range(100)}
    outcomes = []
    for _ in range(5):
        try:
            with trio.fail_after(60):
                await client.call("upload-files", {"containerId": sandbox, "files": files})
            outcomes.append("ok")
        except SandboxdError as exc:
            outcomes.append(exc.code)
    await client.call("kill", {"executionId": attacker["executionId"], "signal": "KILL"})
    container = docker_client.containers.get(sandbox)
    planted = container.exec_run(["sh", "-c", "ls /etc | grep -c '^f[0-9][0-9]$'"], user="root").output
    assert planted.strip() == b"0", f"files written into /etc (uploads: {outcomes})"
    assert set(outcomes) <= {"ok", "BAD_REQUEST"}, outcomes


async def test_uploads_are_all_or_nothing_and_name_checks_come_first(client, sandbox, docker_client):
    for bad in ("ok/new\nline", "tab\there", "del\x7f"):
        with pytest.raises(SandboxdError) as info:
            await client.call("upload-files", {"containerId": sandbox, "files": {"fine.txt": "x", bad: "y"}})
        assert info.value.code == "BAD_REQUEST" and "control characters" in info.value.message
    await run(client, sandbox, ["sh", "-c", "mkdir -p taken/dir"])
    with pytest.raises(SandboxdError) as info:  # the second file cannot be placed: the first is not either
        await client.call("upload-files", {"containerId": sandbox, "files": {"first.txt": "x", "taken/dir": "y"}})
    assert info.value.code == "BAD_REQUEST" and "is a directory" in info.value.message
    listing = await run(client, sandbox, ["ls", "-a", "/home/sandbox", "/tmp"])
    assert b"fine.txt" not in listing.stdout and b"first.txt" not in listing.stdout
    assert b".sandboxd-upload" not in listing.stdout  # staging removed on every failure
    docker_client.containers.get(sandbox).stop(timeout=0)
    with pytest.raises(SandboxdError) as info:
        await client.call("upload-files", {"containerId": sandbox, "files": {"late.txt": "x"}})
    assert info.value.code == "SANDBOX_STOPPED"

"""What every sandbox gets by default: a read-only root, bounded disk, a numeric user, ulimits."""

from __future__ import annotations

import base64
import os

import pytest

from sandboxd.client import open_client
from sandboxd.errors import SandboxdError

from .conftest import BASE_IMAGE, FAST_IMAGE
from .helpers import run


async def test_the_root_is_read_only_and_disk_is_bounded_by_small_tmpfs(make_daemon, docker_client):
    daemon = make_daemon("[sandbox]\nworkdir_bytes = 2097152\ntmp_bytes = 1048576\n")
    async with open_client(daemon.url) as client:
        sandbox = (await client.call("create-container", {"image": FAST_IMAGE}))["containerId"]
        attrs = docker_client.containers.get(sandbox).attrs
        host = attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True and attrs["Config"]["User"] == "1000:1000"
        assert sorted(host["Tmpfs"]) == ["/home/sandbox", "/tmp"]
        assert {"Name": "nofile", "Soft": 1024, "Hard": 1024} in host["Ulimits"]

        writes = await run(client, sandbox, ["sh", "-c", "dd if=/dev/zero of=big bs=1M count=3; rm -f big; "
                                             "dd if=/dev/zero of=/tmp/big bs=1M count=2; touch /etc/x /home/x"])
        assert writes.stderr.count(b"No space left on device") == 2
        assert writes.stderr.count(b"Read-only file system") == 2

        blob = base64.b64encode(os.urandom(2_500_000)).decode()
        with pytest.raises(SandboxdError) as info:
            await client.call("upload-files", {"containerId": sandbox, "files": {
                "small.txt": "x", "big.bin": {"content": blob, "encoding": "base64"}}})
        assert info.value.code == "QUOTA_EXCEEDED"
        left = await run(client, sandbox, ["ls", "-a", "/home/sandbox"])
        assert left.stdout.split() == [b".", b".."]  # no partial file, no staging directory


async def test_an_images_home_files_are_kept_and_the_shell_git_and_uploads_work(client, docker_client):
    sandbox = (await client.call("create-container", {"image": BASE_IMAGE}))["containerId"]
    await client.call("upload-files", {"containerId": sandbox, "files": {"hello.py": "print('hi')\n"}})
    seen = await run(client, sandbox, ["bash", "-lc", "ls -a ~ | grep -c bashrc; python3 hello.py; "
                                       "git init -q && git add -A && git -c user.name=a -c user.email=a@b "
                                       "commit -qm m && git log --format=%s"])
    assert seen.stdout == b"1\nhi\nm\n", seen.stderr
    assert docker_client.containers.get(sandbox).attrs["HostConfig"]["ReadonlyRootfs"] is True

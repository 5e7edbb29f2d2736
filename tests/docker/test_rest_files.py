"""REST file transfer against a real daemon and engine: streamed both ways with bounded
daemon memory, modes, path rules, ownership, and the upload's error statuses."""

from __future__ import annotations

import hashlib

import pytest
import trio

from .http_client import HTTP, body_of
from .test_rest import TOKENS, new_sandbox, rest_daemon  # noqa: F401 (the fixture)

MIB = 1024 * 1024


@pytest.fixture
def alice(rest_daemon) -> HTTP:  # noqa: F811
    return HTTP(rest_daemon.http, TOKENS["alice"])


def pattern(i: int) -> bytes:
    """Chunk ``i`` of a test file: 1 MiB that differs from every other chunk."""
    return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)


async def test_a_100_mib_file_goes_in_and_out_whole_with_daemon_memory_bounded(rest_daemon, alice):  # noqa: F811
    cid = await new_sandbox(alice)
    files = f"/api/sandbox/containers/{cid}/files"
    # Warm up the code paths, then measure.
    assert (await alice.request("PUT", f"{files}/warm.bin", body=b"w" * MIB)).status == 201
    assert (await alice.get(f"{files}/warm.bin")).body == b"w" * MIB
    baseline = peak = rest_daemon.rss_kib()

    async def sample(cancel: trio.CancelScope) -> None:
        nonlocal peak
        with cancel:
            while True:
                peak = max(peak, rest_daemon.rss_kib())
                await trio.sleep(0.02)

    sent, received = hashlib.sha256(), hashlib.sha256()

    def chunks():
        for i in range(100):
            sent.update(pattern(i))
            yield pattern(i)

    async with trio.open_nursery() as nursery:
        sampling = trio.CancelScope()
        nursery.start_soon(sample, sampling)
        put = await alice.request("PUT", f"{files}/data/big.bin?mode=640", chunks=chunks(), timeout=240,
                                  headers={"Content-Length": str(100 * MIB)})
        assert put.status == 201, put.body
        assert put.json()["size"] == 100 * MIB and put.json()["path"].endswith("/data/big.bin")
        with trio.fail_after(240):
            stream, conn, head = await alice.open("GET", f"{files}/data/big.bin")
            assert head.status_code == 200
            assert dict(head.headers)[b"content-length"] == str(100 * MIB).encode()
            total = 0
            async for chunk in body_of(stream, conn):
                received.update(chunk)
                total += len(chunk)
            await stream.aclose()
        sampling.cancel()
    assert total == 100 * MIB and received.hexdigest() == sent.hexdigest()
    grew = (peak - baseline) / 1024
    print(f"daemon RSS: {baseline / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB (+{grew:.1f} MiB)")
    assert grew < 16, f"the daemon's RSS grew {grew:.1f} MiB moving 100 MiB"
    r = await alice.post("/api/sandbox/exec", {"containerId": cid, "command": ["stat", "-c", "%a %s", "data/big.bin"]})
    assert r.json()["stdout"] == f"640 {100 * MIB}\n"


async def test_file_paths_errors_and_ownership(rest_daemon, alice):  # noqa: F811
    cid = await new_sandbox(alice)
    files = f"/api/sandbox/containers/{cid}/files"
    put = await alice.request("PUT", f"{files}/bin/run.sh?mode=755", body=b"#!/bin/sh\necho ran\n")
    assert put.status == 201
    r = await alice.post("/api/sandbox/exec", {"containerId": cid, "command": ["./bin/run.sh"]})
    assert (r.json()["exitCode"], r.json()["stdout"]) == (0, "ran\n")
    got = await alice.get(f"{files}/bin/run.sh")
    assert (got.status, got.body, got.headers["content-type"]) == (200, b"#!/bin/sh\necho ran\n",
                                                                   "application/octet-stream")
    bob = HTTP(rest_daemon.http, TOKENS["bob"])
    for r in (await bob.get(f"{files}/bin/run.sh"), await bob.request("PUT", f"{files}/x", body=b"x")):
        assert (r.status, r.code) == (404, "NOT_FOUND")
    cases = [
        (alice.get(f"{files}/no-such-file"), 404, "NOT_FOUND"),
        (alice.request("PUT", f"{files}/a/../../etc/x", body=b"x"), 400, "BAD_REQUEST"),
        (alice.request("PUT", f"{files}/x?mode=999", body=b"x"), 400, "BAD_REQUEST"),
        (alice.request("PUT", f"{files}/x", chunks=[b"no", b"length"]), 411, "BAD_REQUEST"),
        (alice.raw("PUT", f"{files}/x", {"Content-Length": str(1 << 40)}, b"only this"), 413, "LIMIT_EXCEEDED"),
    ]
    for call, status, code in cases:
        r = await call
        assert (r.status, r.code) == (status, code), r.body

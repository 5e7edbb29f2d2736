"""The Python SDK against a real daemon and engine: one behaviour suite, run for each
flavour (sync ``Sandbox``, ``AsyncSandbox`` under asyncio, and under trio)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest

import sandboxd.sdk as sdk
from sandboxd.errors import NotFound

from .conftest import Daemon
from .sdk_helpers import FLAVOURS, CuttingProxy, Flavour
from .test_plugins import TOKENS, token_table

ALICE, BOB = TOKENS["alice"], TOKENS["bob"]


@pytest.fixture(scope="module")
def sdk_daemon(tmp_path_factory):
    """Authentication and ownership on (alice and bob each see only their own sandboxes),
    and room for 64 executions in one sandbox."""
    d = Daemon(tmp_path_factory.mktemp("sdk"), f"""
[plugins]
enabled = ["token_auth", "ownership"]
[plugins.token_auth]
{token_table()}
[limits]
max_executions_per_sandbox = 64
""")
    # http:// is accepted: the SDK derives ws://.../sandbox/ws from it.
    d.sdk_url = d.http
    yield d
    d.cleanup()


@pytest.fixture(params=FLAVOURS)
def flavour(request) -> Flavour:
    return Flavour(request.param)


def test_exit_codes_and_output_are_exact_bytes(sdk_daemon, flavour):
    blob = bytes(range(256)) * 64 + "é中\n".encode()

    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            r = await sbx.run(["sh", "-c", r"printf 'a\000b\377'; printf 'ünï\n' >&2; exit 7"])
            assert (r.status, r.exit_code) == ("failed", 7)
            assert r.stdout_bytes == b"a\x00b\xff" and r.stderr_bytes == "ünï\n".encode()
            ok = await sbx.run("echo hi")  # a string runs under /bin/sh -c
            assert (ok.status, ok.exit_code, ok.stdout, ok.ok) == ("success", 0, "hi\n", True)
            echoed = await sbx.run(["cat"], stdin=blob)
            assert echoed.stdout_bytes == blob
            big = await sbx.run(["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/o && sha256sum /tmp/o >&2 && cat /tmp/o"])
            assert hashlib.sha256(big.stdout_bytes).hexdigest() == big.stderr.split()[0]
            missing = await sbx.run(["/no/such/program"])
            assert missing.exit_code in (126, 127) and missing.status == "failed"

    flavour.run(body)


def test_timeout_kill_and_signals(sdk_daemon, flavour):
    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            r = await sbx.run(["sleep", "30"], timeout=1)
            assert r.status == "timeout" and r.reason
            h = await sbx.start(["sleep", "30"])
            await h.kill()
            assert (await h.wait()).status == "killed"
            trap = await sbx.start(["sh", "-c", "trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.1; done"])
            async for chunk in trap.output():
                if b"ready" in chunk.data:
                    break
            await trap.kill("INT")
            r = await trap.wait()
            assert r.exit_code == 5 and r.stdout.startswith("ready\ngot INT\n")

    flavour.run(body)


def test_stdin_callbacks_env_workdir_files(sdk_daemon, flavour):
    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            seen: list[str] = []
            h = await sbx.start(["sh", "-c", "cat; echo \"$GREETING from $(pwd)\" >&2"], stdin=True,
                                env={"GREETING": "hello"}, workdir="/tmp", on_stdout=seen.append)
            await h.send_stdin("line 1\n")
            await h.send_stdin(b"\xc3")  # half a character...
            await h.send_stdin(b"\xa9 done\n")  # ...and the rest: the callback gets it whole
            await h.close_stdin()
            r = await h.wait()
            assert "".join(seen) == "line 1\n\u00e9 done\n" == r.stdout
            assert r.stderr == "hello from /tmp\n"
            r = await sbx.run(["sh", "w/main.sh"], files={"w/main.sh": "echo from a file", "w/x.bin": b"\x00\x01"},
                              workdir="/tmp")
            assert r.stdout == "from a file\n"

    flavour.run(body)


def test_files_round_trip(sdk_daemon, flavour):
    payload = hashlib.sha256(b"seed").digest() * (2 * 1024 * 1024 // 32)  # 2 MiB, not text

    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            await sbx.files.write("dir/blob.bin", payload)
            await sbx.files.write("run.sh", "#!/bin/sh\necho ok\n", mode=0o755)
            assert await sbx.files.read("dir/blob.bin") == payload
            assert (await sbx.run(["./run.sh"])).stdout == "ok\n"
            assert (await sbx.run(["sha256sum", "dir/blob.bin"])).stdout.split()[0] == hashlib.sha256(payload).hexdigest()
            with pytest.raises(NotFound):
                await sbx.files.read("no-such-file")

    flavour.run(body)


def test_another_users_sandbox_is_not_found_and_bad_tokens_are_refused(sdk_daemon, flavour):
    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as mine:
            with pytest.raises(NotFound):
                await f.connect(mine.id, url=sdk_daemon.sdk_url, token=BOB)
            bob = f.client(sdk_daemon.sdk_url, token=BOB)
            try:
                assert mine.id not in [s.id for s in await bob.sandboxes()]
                with pytest.raises(NotFound):
                    await bob.attach((await mine.start(["true"])).id)
            finally:
                await f.close(bob)
        with pytest.raises(sdk.AuthenticationFailed):
            await f.create(url=sdk_daemon.sdk_url, token="not-a-token")

    flavour.run(body)


def test_attach_replays_from_an_offset_snapshots_one_offs_and_listing(sdk_daemon, flavour):
    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            done = await sbx.run(["sh", "-c", "printf 0123456789; printf ab >&2"])
            replay = await sbx.attach(done.execution_id, since={"stdout": 4})
            r = await replay.wait()
            assert (r.stdout, r.stderr, r.status) == ("456789", "ab", "success")
            listed = await sbx.executions()
            assert listed[0].id == done.execution_id and listed[0].bytes == {"stdout": 10, "stderr": 2}
            running = await sbx.start(["sh", "-c", "echo first; exec sleep 30"])
            async for _ in running.output():
                break
            other = f.client(sdk_daemon.sdk_url, token=ALICE)
            try:
                snapshot = await (await other.attach(running.id, follow=False)).wait()
                assert (snapshot.status, snapshot.exit_code, snapshot.stdout) == ("running", None, "first\n")
                one_off = await (await other.start(["echo", "one-off"], image="sandboxd/busybox")).wait()
                assert one_off.stdout == "one-off\n" and one_off.sandbox_id not in [s.id for s in await other.sandboxes()]
            finally:
                await f.close(other)
            await running.kill("KILL")

    flavour.run(body)


def test_reconnects_through_a_connection_cutting_proxy_without_losing_a_byte(sdk_daemon, flavour):
    proxy = CuttingProxy(sdk_daemon.port, cut_after=1024 * 1024)

    async def body(f: Flavour):
        async with await f.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            through = await f.connect(sbx.id, url=f"ws://127.0.0.1:{proxy.port}/sandbox/ws", token=ALICE)
            try:
                r = await through.run(["sh", "-c", "head -c 6000000 /dev/urandom > /tmp/o; sha256sum /tmp/o >&2;"
                                       " cat /tmp/o; echo end >&2"])
            finally:
                await f.close(through)
            assert r.status == "success"
            assert len(r.stdout_bytes) == 6_000_000
            assert hashlib.sha256(r.stdout_bytes).hexdigest() == r.stderr.split()[0]
            assert r.stderr.endswith("end\n")

    try:
        flavour.run(body)
    finally:
        proxy.close()
    assert proxy.cuts >= 3 and proxy.connections >= 4


def test_fifty_concurrent_runs_from_one_event_loop_without_threads(sdk_daemon):
    """What a FastAPI service does: many requests, one loop, one client, no thread each."""

    async def main():
        async with sdk.AsyncClient(sdk_daemon.sdk_url, token=ALICE) as client:
            sbx = await client.create_sandbox()
            threads_before = set(threading.enumerate())
            try:
                results = await asyncio.gather(*[
                    sbx.run(["sh", "-c", f"echo out {i}; echo err {i} >&2; exit {i % 4}"]) for i in range(50)
                ])
                new_threads = set(threading.enumerate()) - threads_before
            finally:
                await sbx.remove()
        for i, r in enumerate(results):
            assert (r.stdout, r.stderr, r.exit_code) == (f"out {i}\n", f"err {i}\n", i % 4)
        assert new_threads == set()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_sync_client_leaves_no_threads_behind(sdk_daemon):
    before = set(threading.enumerate())
    for _ in range(3):
        with sdk.Sandbox.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            sbx.run(["true"])
            h = sbx.start(["echo", "x"])
            assert h.wait().stdout == "x\n"
    assert set(threading.enumerate()) - before == set()  # (threads of earlier tests may end meanwhile)


def test_a_50_mib_file_streams_in_and_out_in_bounded_client_memory(sdk_daemon, tmp_path):
    """Chunked transfers: a 50 MiB local file goes in and comes back byte-exact, with at
    most a few chunks in the client's memory at any time (asyncio; the same plans run in
    the sync and trio flavours, which the round trip above covers)."""
    import tracemalloc

    src, back = tmp_path / "in.bin", tmp_path / "out.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for _ in range(50):
            block = os.urandom(1 << 20)
            digest.update(block)
            f.write(block)

    async def main():
        async with await sdk.AsyncSandbox.create(url=sdk_daemon.sdk_url, token=ALICE) as sbx:
            tracemalloc.start()
            try:
                written = await sbx.files.upload("big.bin", src)
                in_sandbox = (await sbx.run(["sha256sum", "big.bin"])).stdout.split()[0]
                info = await sbx.files.download("big.bin", back)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        return written, in_sandbox, info, peak

    written, in_sandbox, info, peak = asyncio.run(asyncio.wait_for(main(), 120))
    assert written.endswith("/big.bin") and in_sandbox == digest.hexdigest()
    assert (info.kind, info.size) == ("file", 50 * 1024 * 1024)
    with open(back, "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()
    assert peak < 24 * 1024 * 1024, f"the client held {peak / 2**20:.1f} MiB at once"

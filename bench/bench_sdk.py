"""The Python SDK's overhead: latency of ``run(["echo", "hi"])`` and streaming throughput,
each flavour (sync, asyncio, trio) beside the raw Engine API and ``sandboxd exec``.

- latency: p50/p95 of a whole ``run`` (execute-command → execution-complete, output
  gathered) on an open connection; the raw API does exec create + start + inspect with
  docker-py; ``sandboxd exec --follow`` is a whole CLI process (interpreter start included);
- throughput: ``cat`` of a file of random bytes (default 256 MiB) through ``run`` with
  ``capture=False`` and an ``on_output`` callback that hashes every chunk, against the
  Engine API's hijacked exec stream read directly, as a ratio (bytes are checked equal);
- the raw protocol client (``sandboxd/client.py``, binary frames) runs the same, so the
  SDK's own cost shows apart from the daemon's.

Usage: .venv/bin/python bench/bench_sdk.py [--mib 256] [--runs 30] [--cli-runs 5] [--url ws://...]
Without --url it starts its own daemon on 127.0.0.1 (port 0). Needs scripts/setup.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import docker
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_exec import direct, pct, start_daemon, via_daemon  # noqa: E402

from sandboxd.client import open_client  # noqa: E402
from sandboxd.sdk import AsyncClient, Client  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure_sync(url: str, cid: str, runs: int, cmd: list[str]) -> tuple[list[float], tuple[int, float, float, str]]:
    with Client(url) as client:
        sbx = client.sandbox(cid)
        lat = []
        for _ in range(runs):
            start = time.perf_counter()
            assert sbx.run(["echo", "hi"]).stdout == "hi\n"
            lat.append((time.perf_counter() - start) * 1000)
        h, n = hashlib.sha256(), [0]

        def take(chunk: Any) -> None:
            h.update(chunk.data)
            n[0] += len(chunk.data)

        c0, start = cpu(), time.perf_counter()
        sbx.run(cmd, capture=False, on_output=take)
        return lat, (n[0], time.perf_counter() - start, cpu() - c0, h.hexdigest())


async def measure_async(url: str, cid: str, runs: int, cmd: list[str]) -> tuple[list[float], tuple[int, float, float, str]]:
    async with AsyncClient(url) as client:
        sbx = await client.sandbox(cid)
        lat = []
        for _ in range(runs):
            start = time.perf_counter()
            assert (await sbx.run(["echo", "hi"])).stdout == "hi\n"
            lat.append((time.perf_counter() - start) * 1000)
        h, n = hashlib.sha256(), [0]

        def take(chunk: Any) -> None:
            h.update(chunk.data)
            n[0] += len(chunk.data)

        c0, start = cpu(), time.perf_counter()
        await sbx.run(cmd, capture=False, on_output=take)
        return lat, (n[0], time.perf_counter() - start, cpu() - c0, h.hexdigest())


async def measure_raw_protocol(url: str, cid: str, runs: int, cmd: list[str]) -> tuple[list[float], tuple[int, float, float, str]]:
    """The same through the raw protocol client (sandboxd/client.py, binary output frames)."""
    async with open_client(url) as client:
        await client.use_binary_output()
        lat = []
        for _ in range(runs):
            start = time.perf_counter()
            await client.run(["echo", "hi"], container_id=cid)
            lat.append((time.perf_counter() - start) * 1000)
        c0 = cpu()
        n, t, h = await via_daemon(client, cid, cmd)
        return lat, (n, t, cpu() - c0, h)


def raw_latency(api: docker.APIClient, cid: str, runs: int) -> list[float]:
    lat = []
    for _ in range(runs):
        start = time.perf_counter()
        e = api.exec_create(cid, ["echo", "hi"])["Id"]
        assert api.exec_start(e) == b"hi\n"
        api.exec_inspect(e)
        lat.append((time.perf_counter() - start) * 1000)
    return lat


def cli_latency(url: str, cid: str, runs: int) -> list[float]:
    lat = []
    env = {**os.environ, "SANDBOXD_URL": url}
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "sandboxd", "exec", "--sandbox", cid, "--follow", "--",
                              "echo", "hi"], capture_output=True, env=env, check=True).stdout
        assert out == b"hi\n"
        lat.append((time.perf_counter() - start) * 1000)
    return lat


def main(args: argparse.Namespace) -> None:
    proc, url = (None, args.url) if args.url else start_daemon()
    api = docker.APIClient(version="auto")
    try:
        with Client(url) as setup:
            sbx = setup.create_sandbox("sandboxd/base")
            size = args.mib * 1024 * 1024
            assert sbx.run(["sh", "-c", f"head -c {size} /dev/urandom > /tmp/random"], timeout=600).ok
            cmd = ["cat", "/tmp/random"]
            print(f"sandboxd SDK bench: echo hi x {args.runs}, {args.mib} MiB stream, load {os.getloadavg()[0]:.1f}")
            c0 = cpu()
            n, t, h = trio.run(direct, api, sbx.id, cmd)
            raw = (n, t, cpu() - c0, h)
            rows: list[tuple[str, list[float], tuple[int, float, float, str] | None]] = []
            flavours: list[tuple[str, Callable[[], Any]]] = [
                ("SDK sync", lambda: measure_sync(url, sbx.id, args.runs, cmd)),
                ("SDK asyncio", lambda: asyncio.run(measure_async(url, sbx.id, args.runs, cmd))),
                ("SDK trio", lambda: trio.run(measure_async, url, sbx.id, args.runs, cmd)),
                ("raw protocol client", lambda: trio.run(measure_raw_protocol, url, sbx.id, args.runs, cmd)),
            ]
            for name, fn in flavours:
                lat, thr = fn()
                assert thr[0] == raw[0] == size and thr[3] == raw[3], f"{name}: bytes differ"
                rows.append((name, lat, thr))
            rows.append(("raw Engine API", raw_latency(api, sbx.id, args.runs), raw))
            rows.append(("sandboxd exec (process)", cli_latency(url, sbx.id, args.cli_runs), None))
            print(f"{'client':<26}{'p50 ms':>9}{'p95 ms':>9}{'MB/s':>9}{'ratio':>7}{'client CPU s':>14}")
            raw_rate = raw[0] / raw[1] / 1e6
            for name, lat, thr in rows:
                rate = f"{thr[0] / thr[1] / 1e6:>9.1f}{thr[0] / thr[1] / 1e6 / raw_rate:>7.2f}{thr[2]:>14.2f}" if thr else ""
                print(f"{name:<26}{pct(lat, 0.5):>9.1f}{pct(lat, 0.95):>9.1f}{rate}")
            sbx.remove()
    finally:
        api.close()
        if proc is not None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--url", default=None)
    main(parser.parse_args())

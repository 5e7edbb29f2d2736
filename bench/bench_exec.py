"""End-to-end throughput and latency of sandboxd against the Docker Engine API directly.

In one run, against one sandbox:

- throughput: a 256 MiB file is `cat`-ed in the container (1) through sandboxd
  (container → daemon → WebSocket → this client, which decodes every chunk back to bytes)
  and (2) straight from the Engine API's hijacked exec connection, demultiplexed; both as
  text (`x` repeated) and as random bytes (sent base64 by sandboxd);
- latency: `true`, (1) execute-command → execution-complete through sandboxd and (2) exec
  create + start + inspect done directly with docker-py, p50/p95 over N runs.

Usage: .venv/bin/python bench/bench_exec.py [--mib 256] [--runs 50] [--url ws://...]
Without --url it starts its own daemon on 127.0.0.1 (port 0). Needs scripts/setup.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandboxd.client import open_client, output_bytes  # noqa: E402
from sandboxd.engine import FrameParser  # noqa: E402
from sandboxd.engine._stream import default_engine_url, open_exec_stream  # noqa: E402


def start_daemon() -> tuple[subprocess.Popen, str]:
    cfg = Path(tempfile.mkdtemp()) / "bench.toml"
    cfg.write_text('[docker]\ninstance = "bench"\n[sandbox]\ndefault_image = "sandboxd/base"\n'
                   "[limits]\nmax_output_bytes = 8589934592\n")
    proc = subprocess.Popen([sys.executable, "-m", "sandboxd", "serve", "-c", str(cfg), "--port", "0",
                             "--log-level", "warning"], stderr=subprocess.PIPE, text=True)
    # The daemon logs its port at INFO only; ask it at warning level, so read /proc instead.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if f"pid={proc.pid}," in line and (m := re.search(r"127\.0\.0\.1:(\d+)", line)):
                return proc, f"ws://127.0.0.1:{m.group(1)}/sandbox/ws"
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("daemon did not start")


async def via_daemon(client, container_id: str, command: list[str]) -> tuple[int, float, str]:
    h = hashlib.sha256()
    n = 0
    start = time.perf_counter()
    accepted = await client.call("execute-command", {"containerId": container_id, "command": command})
    while True:
        ev = await client.next_event()
        if ev.name == "execution-output" and ev.data["type"] == "stdout":
            data = output_bytes(ev.data)
            n += len(data)
            h.update(data)
        elif ev.name == "execution-complete" and ev.data["executionId"] == accepted["executionId"]:
            break
    return n, time.perf_counter() - start, h.hexdigest()


async def direct(api: docker.APIClient, container_id: str, command: list[str]) -> tuple[int, float, str]:
    h = hashlib.sha256()
    n = 0
    start = time.perf_counter()
    exec_id = (await trio.to_thread.run_sync(lambda: api.exec_create(container_id, command)))["Id"]
    parser = FrameParser()
    async with open_exec_stream(default_engine_url(), api.api_version, exec_id) as stream:
        while data := await stream.receive_some(256 * 1024):
            for sid, payload in parser.feed(data):
                if sid == 1:
                    n += len(payload)
                    h.update(payload)
    return n, time.perf_counter() - start, h.hexdigest()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(args: argparse.Namespace) -> None:
    proc = None
    url = args.url
    if url is None:
        proc, url = start_daemon()
    api = docker.APIClient(version="auto")
    try:
        async with open_client(url) as client, open_client(url) as binary_client:
            await binary_client.use_binary_output()
            cid = (await client.call("create-container", {"image": "sandboxd/base"}))["containerId"]
            size = args.mib * 1024 * 1024
            prep = (f"head -c {size} /dev/zero | tr '\\0' x > /tmp/text && "
                    f"head -c {size} /dev/urandom > /tmp/random")
            await client.run(["sh", "-c", prep], container_id=cid, timeout=600)
            print(f"sandboxd bench: {args.mib} MiB per stream, {args.runs} latency runs, engine API {api.api_version}")
            print(f"{'case':<28}{'sandboxd':>14}{'direct':>14}{'ratio':>8}")
            for mode, c in (("json", client), ("binary", binary_client)):
                for kind in ("text", "random"):
                    cmd = ["cat", f"/tmp/{kind}"]
                    best_d = best_s = 0.0
                    for _ in range(args.repeat):
                        n1, t1, h1 = await via_daemon(c, cid, cmd)
                        n2, t2, h2 = await direct(api, cid, cmd)
                        assert (n1, h1) == (n2, h2) == (size, h2), "bytes differ"
                        best_s = max(best_s, n1 / t1 / 1e6)
                        best_d = max(best_d, n2 / t2 / 1e6)
                    label = f"{mode} {kind} (MB/s)"
                    print(f"{label:<28}{best_s:>14.1f}{best_d:>14.1f}{best_s / best_d:>8.2f}")
            lat_s, lat_d = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                await client.run(["true"], container_id=cid)
                lat_s.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                def direct_true() -> None:
                    e = api.exec_create(cid, ["true"])["Id"]
                    api.exec_start(e)
                    api.exec_inspect(e)
                await trio.to_thread.run_sync(direct_true)
                lat_d.append((time.perf_counter() - start) * 1000)
            for q, name in ((0.5, "p50"), (0.95, "p95")):
                s, d = pct(lat_s, q), pct(lat_d, q)
                print(f"{'latency true ' + name + ' (ms)':<28}{s:>14.2f}{d:>14.2f}{s / d:>8.2f}   overhead {s - d:+.2f} ms")
            await client.call("remove-container", {"containerId": cid})
    finally:
        api.close()
        if proc is not None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per case (best is kept)")
    parser.add_argument("--url", default=None)
    trio.run(main, parser.parse_args())

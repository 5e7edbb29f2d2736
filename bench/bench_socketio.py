"""Throughput of a Socket.IO client against a native WebSocket client and the Engine API.

One sandbox, one file `cat`-ed three ways in each round: (1) through sandboxd to a Node
socket.io-client (websocket transport, JSON events as the seed's clients get them);
(2) through sandboxd to a Node client on the native protocol (`ws`, JSON frames); (3)
straight from the Engine API's hijacked exec connection (as in bench_exec.py). Every
client turns each chunk back into bytes and hashes it; the hashes must match.

Usage: .venv/bin/python bench/bench_socketio.py [--mib 64] [--repeat 3] [--binary]
Needs scripts/setup.sh (Node and tests/js/node_modules).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import docker
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_exec import direct, start_daemon  # noqa: E402

from sandboxd.client import open_client  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "bench_socketio.js"


async def node_client(mode: str, http: str, cid: str, path: str, binary: bool) -> tuple[int, float, str]:
    proc = await trio.run_process(["node", str(SCRIPT), mode, http, cid, path, *(["binary"] if binary else [])],
                                  capture_stdout=True)
    r = json.loads(proc.stdout)
    return r["bytes"], r["seconds"], r["sha256"]


async def main(args: argparse.Namespace) -> None:
    proc, url = start_daemon()
    http = url.replace("ws://", "http://").removesuffix("/sandbox/ws")
    api = docker.APIClient(version="auto")
    try:
        async with open_client(url) as client:
            cid = (await client.call("create-container", {"image": "sandboxd/base"}))["containerId"]
            size = args.mib * 1024 * 1024
            await client.run(["sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x > /tmp/text"],
                             container_id=cid, timeout=600)
            best = {"socketio": 0.0, "native": 0.0, "direct": 0.0}
            for _ in range(args.repeat):
                for mode in ("socketio", "native"):
                    n, t, h = await node_client(mode, http, cid, "/tmp/text", args.binary and mode == "socketio")
                    assert n == size, f"{mode}: {n} bytes"
                    best[mode] = max(best[mode], n / t / 1e6)
                n, t, h2 = await direct(api, cid, ["cat", "/tmp/text"])
                assert (n, h2) == (size, h), "bytes differ"
                best["direct"] = max(best["direct"], n / t / 1e6)
            print(f"sandboxd Socket.IO bench: {args.mib} MiB of text, best of {args.repeat}"
                  f"{' (Socket.IO binary output)' if args.binary else ''}")
            print(f"{'client':<34}{'MB/s':>10}{'ratio to direct':>18}")
            for name, label in (("socketio", "socket.io-client, websocket"), ("native", "native WebSocket (Node ws)"),
                                ("direct", "Engine API directly")):
                print(f"{label:<34}{best[name]:>10.1f}{best[name] / best['direct']:>18.2f}")
            print(f"Socket.IO / native: {best['socketio'] / best['native']:.2f}")
            await client.call("remove-container", {"containerId": cid})
    finally:
        api.close()
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--binary", action="store_true", help="Socket.IO client asks for binary output")
    trio.run(main, parser.parse_args())

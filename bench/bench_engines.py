"""Many executions over several engines vs one, and the daemon's cost per stream.

In one run (issue #14):

- one daemon drives three extra engines (``scripts/start-engines.sh``); N sandboxes are
  placed by the daemon (so they spread over the three), and N concurrent executions of
  ``seq 1 LINES`` run in them, all through one session; wall time and the daemon's CPU
  (utime+stime from /proc) are measured;
- a second daemon drives only engine 1 and does the same with all N sandboxes there;
- the same N executions straight against the Engine API (engine 1, no daemon) give the
  baseline the ratios are read against.

All engines share this machine's cores, so the spread cannot make anything faster here;
what it shows is that the pool adds no cost per stream. Figures go to bench/README.md.

Usage: .venv/bin/python bench/bench_engines.py [--n 20] [--lines 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandboxd.client import open_client, output_bytes  # noqa: E402
from sandboxd.engine import FrameParser  # noqa: E402
from sandboxd.engine._stream import open_exec_stream  # noqa: E402

ENGINES = {f"e{k}": f"unix:///run/sandboxd-engines/{k}/docker.sock" for k in (1, 2, 3)}
IMAGE = "sandboxd/busybox"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_daemon(names: list[str]) -> tuple[subprocess.Popen, str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    engines = "".join(f'[[engines]]\nname = "{n}"\nhost = "{ENGINES[n]}"\n' for n in names)
    (tmp / "c.toml").write_text(
        f'[docker]\ninstance = "bench-engines-{len(names)}"\n[store]\ndir = "{tmp}/state"\n'
        f'[sandbox]\ndefault_image = "{IMAGE}"\nmax_sandboxes_per_user = 200\n{engines}')
    proc = subprocess.Popen([sys.executable, "-m", "sandboxd", "serve", "-c", str(tmp / "c.toml"), "--port", "0",
                             "--log-level", "info"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    for line in proc.stderr:
        if "listening on" in line:
            port = line.rsplit(":", 1)[1].split()[0]
            return proc, f"ws://127.0.0.1:{port}/sandbox/ws"
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("daemon did not start")


async def through_daemon(url: str, n: int, lines: int, expected: int) -> float:
    async with open_client(url) as c:
        boxes = [(await c.call("create-container", {"image": IMAGE}))["containerId"] for _ in range(n)]
        got: dict[str, int] = {}
        start = time.perf_counter()
        ids = [(await c.call("execute-command", {"containerId": b, "command": ["seq", "1", str(lines)]}))[
            "executionId"] for b in boxes]
        done = 0
        while done < n:
            ev = await c.next_event()
            if ev.name == "execution-output":
                got[ev.data["executionId"]] = got.get(ev.data["executionId"], 0) + len(output_bytes(ev.data))
            elif ev.name == "execution-complete":
                done += 1
        wall = time.perf_counter() - start
        assert all(got.get(i) == expected for i in ids), "lost output"
        for b in boxes:
            await c.call("remove-container", {"containerId": b})
    return wall


async def direct(n: int, lines: int, expected: int) -> float:
    api = docker.APIClient(base_url=ENGINES["e1"])
    boxes = [api.create_container(IMAGE, ["sleep", "600"], host_config=api.create_host_config(
        network_mode="none", init=True))["Id"] for _ in range(n)]
    for b in boxes:
        api.start(b)
    try:
        async def one(cid: str) -> None:
            exec_id = api.exec_create(cid, ["seq", "1", str(lines)])["Id"]
            parser, total = FrameParser(), 0
            async with open_exec_stream(ENGINES["e1"], api.api_version, exec_id) as stream:
                while data := await stream.receive_some(256 * 1024):
                    total += sum(len(p) for _, p in parser.feed(data))
            assert total == expected

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for b in boxes:
                nursery.start_soon(one, b)
        return time.perf_counter() - start
    finally:
        for b in boxes:
            api.remove_container(b, force=True)
        api.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts/start-engines.sh"), "3"], check=True)
    expected = len("".join(f"{i}\n" for i in range(1, args.lines + 1)))
    three, t3 = start_daemon(["e1", "e2", "e3"])
    one, t1 = start_daemon(["e1"])
    rows: dict[str, list[float]] = {"raw": [], "three": [], "one": [], "cpu3": [], "cpu1": []}
    try:
        for _ in range(args.rounds):  # interleaved, so load from elsewhere hits all alike
            rows["raw"].append(trio.run(direct, args.n, args.lines, expected))
            for key, proc, url in (("three", three, t3), ("one", one, t1)):
                before = cpu_seconds(proc.pid)
                rows[key].append(trio.run(through_daemon, url, args.n, args.lines, expected))
                rows["cpu" + ("3" if key == "three" else "1")].append(cpu_seconds(proc.pid) - before)
    finally:
        three.terminate()
        one.terminate()
    med = {k: statistics.median(v) for k, v in rows.items()}
    span = {k: f"[{min(v):.2f}-{max(v):.2f}]" for k, v in rows.items()}
    mib = args.n * expected / 2**20
    print(f"{args.n} concurrent `seq 1 {args.lines}` ({mib:.1f} MiB in all), median of {args.rounds} rounds")
    print(f"raw Engine API, engine 1:   {med['raw']:.2f} s {span['raw']}")
    print(f"daemon, three engines:      {med['three']:.2f} s {span['three']}  ratio to raw x{med['three'] / med['raw']:.2f}")
    print(f"daemon, one engine:         {med['one']:.2f} s {span['one']}  ratio to raw x{med['one'] / med['raw']:.2f}")
    print(f"three engines vs one (wall): x{med['three'] / med['one']:.2f}")
    for key, label in (("cpu3", "three engines"), ("cpu1", "one engine")):
        print(f"daemon CPU, {label}: {med[key]:.2f} s {span[key]} = {1000 * med[key] / args.n:.1f} ms per stream, "
              f"{1000 * med[key] / mib:.1f} ms per MiB")


if __name__ == "__main__":
    main()

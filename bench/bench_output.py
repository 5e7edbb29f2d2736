"""The output path's cost, side by side with the raw Engine API in one run (issue #11).

For each daemon (this tree, and optionally an older tree with --before DIR, e.g. a
`git worktree` of an older main commit) and the raw Engine API, in interleaved rounds:

- daemon CPU-seconds per 256 MiB streamed (utime+stime of the daemon from
  /proc/PID/stat around each run, scaled from --mib), for binary frames of text, JSON
  frames of text and JSON frames of NUL bytes; the stream's throughput ratio to the raw
  Engine API measured in the same round;
- the daemon's peak RSS (VmHWM) after streaming; on freshly started daemons (one per
  round), the RSS after start-up and the RSS growth per idle WebSocket client (--idle
  clients connected, nothing sent);
- `sandboxd exec` (the Python CLI, binary frames) against `docker exec` piped to
  /dev/null, as a wall-time ratio.

CPU-seconds and RSS are the steady figures on a shared machine; throughput swings with
the load. Prints medians with [min–max] over --rounds.

Usage: .venv/bin/python bench/bench_output.py [--mib 64] [--rounds 3] [--idle 300] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_exec import direct, via_daemon  # noqa: E402

from sandboxd.client import open_client  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CASES = (("binary text", "binary", "text"), ("JSON text", "json", "text"), ("JSON NUL", "json", "nul"))


class Daemon:
    def __init__(self, label: str, tree: Path) -> None:
        self.label = label
        store = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
        cfg = store / "bench.toml"
        cfg.write_text(f'[docker]\ninstance = "bench-{label}"\n[store]\ndir = "{store / "store"}"\n'
                       '[sandbox]\ndefault_image = "sandboxd/base"\n[limits]\nmax_output_bytes = 8589934592\n')
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen([sys.executable, "-m", "sandboxd", "serve", "-c", str(cfg), "--port", "0",
                                      "--log-level", "warning"], cwd=tree, env=env)
        self.url = self._find_url()
        self.fresh_rss = self.status("VmRSS")

    def _find_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
            for line in out.splitlines():
                if f"pid={self.proc.pid}," in line and (m := re.search(r"127\.0\.0\.1:(\d+)", line)):
                    time.sleep(1)  # let start-up settle before the fresh RSS reading
                    return f"ws://127.0.0.1:{m.group(1)}/sandbox/ws"
            time.sleep(0.1)
        self.proc.kill()
        raise SystemExit(f"{self.label} daemon did not start")

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def status(self, key: str) -> float:
        """A /proc/PID/status figure in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
        raise KeyError(key)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


async def idle_rss_per_client(daemon: Daemon, n: int) -> float:
    """RSS growth per idle WebSocket client, in KiB."""
    before = daemon.status("VmRSS")
    async with trio.open_nursery() as nursery:
        connected = 0
        done = trio.Event()
        release = trio.Event()

        async def one() -> None:
            nonlocal connected
            async with trio_websocket.open_websocket_url(daemon.url):
                connected += 1
                if connected == n:
                    done.set()
                await release.wait()

        for _ in range(n):
            nursery.start_soon(one)
        await done.wait()
        await trio.sleep(2)
        after = daemon.status("VmRSS")
        release.set()
    return (after - before) / n


async def main(args: argparse.Namespace) -> None:
    trees = [("after", Path(__file__).resolve().parents[1])]
    if args.before:
        trees.insert(0, ("before", Path(args.before).resolve()))
    fresh: dict[str, list[float]] = {}
    idle: dict[str, list[float]] = {}
    for r in range(args.rounds):  # on fresh daemons: a heap grown by streaming would hide idle clients
        for label, tree in trees if r % 2 == 0 else trees[::-1]:
            d = Daemon(label, tree)
            try:
                fresh.setdefault(label, []).append(d.fresh_rss / 1024)
                idle.setdefault(label, []).append(await idle_rss_per_client(d, args.idle))
            finally:
                d.stop()
    daemons = [Daemon(label, tree) for label, tree in trees]
    api = docker.APIClient(version="auto")
    size = args.mib * 1024 * 1024
    scale = 256 / args.mib
    cpu: dict[tuple[str, str], list[float]] = {}
    ratio: dict[tuple[str, str], list[float]] = {}
    peak: dict[tuple[str, str], list[float]] = {}
    try:
        async with open_client(daemons[-1].url) as admin:
            cid = (await admin.call("create-container", {"image": "sandboxd/base"}))["containerId"]
            prep = (f"head -c {size} /dev/zero | tr '\\0' x > /tmp/text && head -c {size} /dev/zero > /tmp/nul")
            await admin.run(["sh", "-c", prep], container_id=cid, timeout=600)
            other_cids = {}
            for d in daemons[:-1]:  # each daemon streams from a sandbox it created itself
                async with open_client(d.url) as c:
                    other_cids[d.label] = (await c.call("create-container", {"image": "sandboxd/base"}))["containerId"]
                    await c.run(["sh", "-c", prep], container_id=other_cids[d.label], timeout=600)
            print(f"bench_output: {args.mib} MiB per stream (CPU scaled to 256 MiB), {args.rounds} rounds")
            for r in range(args.rounds):
                order = daemons if r % 2 == 0 else daemons[::-1]
                for name, mode, kind in CASES:
                    cmd = ["cat", f"/tmp/{kind}"]
                    n0, t_raw, h0 = await direct(api, cid, cmd)
                    for d in order:
                        box = other_cids.get(d.label, cid)
                        async with open_client(d.url) as c:
                            if mode == "binary":
                                await c.use_binary_output()
                            c0 = d.cpu()
                            n1, t1, h1 = await via_daemon(c, box, cmd)
                            used = d.cpu() - c0
                        assert (n1, h1) == (n0, h0) == (size, h0), "bytes differ"
                        cpu.setdefault((d.label, name), []).append(used * scale)
                        ratio.setdefault((d.label, name), []).append(t_raw / t1)
                        peak.setdefault((d.label, mode), []).append(d.status("VmHWM") / 1024)
                print(f"  round {r + 1} done", file=sys.stderr)
            cli = await exec_ratio(daemons[-1], cid, api, args.rounds)
            for d in daemons[:-1]:
                async with open_client(d.url) as c:
                    await c.call("remove-container", {"containerId": other_cids[d.label]})
            await admin.call("remove-container", {"containerId": cid})
    finally:
        api.close()
        for d in daemons:
            d.stop()
    labels = [d.label for d in daemons]
    print(f"\n| figure | {' | '.join(labels)} |")
    print(f"|---|{'---|' * len(labels)}")
    for name, _, _ in CASES:
        print(f"| daemon CPU-s / 256 MiB, {name} | {' | '.join(spread(cpu[(lb, name)]) for lb in labels)} |")
    for name, _, _ in CASES:
        print(f"| {name}, throughput ratio to raw | {' | '.join('×' + spread(ratio[(lb, name)]) for lb in labels)} |")
    for mode in ("binary", "json"):
        print(f"| peak RSS streaming, {mode} (MiB) | {' | '.join(spread(peak[(lb, mode)], '{:.1f}') for lb in labels)} |")
    print(f"| fresh `serve` RSS (MiB) | {' | '.join(spread(fresh[lb], '{:.1f}') for lb in labels)} |")
    print(f"| RSS per idle WebSocket client, {args.idle} clients (KiB) | "
          f"{' | '.join(spread(idle[lb], '{:.1f}') for lb in labels)} |")
    print(f"| `sandboxd exec` vs `docker exec > /dev/null`, {args.mib} MiB text, wall ratio | "
          f"{' | '.join('–' for _ in labels[:-1])}{' | ' if len(labels) > 1 else ''}×{spread(cli)} |")


async def exec_ratio(daemon: Daemon, cid: str, api: docker.APIClient, rounds: int) -> list[float]:
    """docker exec's wall time over `sandboxd exec --follow`'s, both writing to /dev/null."""
    ratios = []
    env = dict(os.environ, SANDBOXD_URL=daemon.url)
    for _ in range(rounds):
        def timed(argv: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env)
            return time.perf_counter() - start
        t_docker = await trio.to_thread.run_sync(timed, ["docker", "exec", cid, "cat", "/tmp/text"])
        t_ours = await trio.to_thread.run_sync(
            timed, [sys.executable, "-m", "sandboxd", "exec", "--sandbox", cid, "--follow", "--",
                    "cat", "/tmp/text"])
        ratios.append(t_docker / t_ours)
    return ratios


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--before", default=None, help="an older tree to run side by side (git worktree)")
    trio.run(main, parser.parse_args())

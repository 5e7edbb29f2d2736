"""Protocol helpers for tests: run a command and gather exactly what a client saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from sandboxd.client import Client, output_bytes

OUTPUT = ("execution-output", "exec-output")
COMPLETE = ("execution-complete", "exec-finished")


@dataclass
class Seen:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    complete: dict[str, Any] | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, {k: v for k, v in data.items() if k != "ref"}))
        if name in OUTPUT:
            stream = self.stdout if data["type"] == "stdout" else self.stderr
            assert data["seq"] == len(stream), f"gap or duplicate at {data['seq']} (have {len(stream)})"
            stream += output_bytes(data)
        elif name in COMPLETE:
            self.complete = data


async def follow(client: Client, execution_id: str, timeout: float = 60, *, seen: Seen | None = None,
                 until: Any = None) -> Seen:
    """Read events until ``execution_id`` completes (or ``until(seen)`` holds).

    Other executions' events are ignored.
    """
    seen = seen or Seen()
    with trio.fail_after(timeout):
        while seen.complete is None and not (until and until(seen)):
            ev = await client.next_event()
            if isinstance(ev.data, dict) and ev.data.get("executionId") == execution_id:
                seen.add(ev.name, ev.data)
    return seen


async def run(client: Client, container_id: str, command: list[str], timeout: float = 60, **extra: Any) -> Seen:
    accepted = await client.call("execute-command", {"containerId": container_id, "command": command, **extra})
    return await follow(client, accepted["executionId"], timeout)


async def expect_event(client: Client, name: str, timeout: float = 10) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            ev = await client.next_event()
            if ev.name == name:
                return ev.data

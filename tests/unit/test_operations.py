"""The operations layer and the session core, in-process, on a fake engine.

These pin what the Docker tests cannot make happen on demand: a start that fails
half-way leaves nothing behind, clients that joined a sandbox are told about an
execution before its output, and each dialect gets its own event names.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
import trio

from sandboxd import protocol as p
from sandboxd.config import parse_config
from sandboxd.errors import DockerError
from sandboxd.hub import Hub, open_hub
from sandboxd.operations import Announcement, LiveFeed, Watcher
from sandboxd.plugin_types import ANONYMOUS
from sandboxd.plugins import load_plugins
from sandboxd.session import Session, SessionClosed

from .fake_engine import FakeEngine


@asynccontextmanager
async def daemon(tmp_path) -> AsyncIterator[tuple[Hub, FakeEngine]]:
    config = parse_config({"store": {"dir": str(tmp_path)}})
    engine = FakeEngine()
    async with open_hub(config, load_plugins(config), engine=engine) as hub:
        yield hub, engine


async def nothing(*_: Any) -> None:
    pass


def watcher(name: str) -> Watcher:
    return Watcher(name, ANONYMOUS, nothing)


async def test_a_one_off_execution_whose_create_fails_after_the_upload_leaves_nothing(tmp_path):
    async with daemon(tmp_path) as (hub, engine):
        engine.fail["exec_create"] = DockerError("engine said no", op="exec create")
        request = p.ExecuteCommand(("echo", "hi"), files={"a.txt": "x"})
        with pytest.raises(DockerError):
            await hub.ops.start_execution(ANONYMOUS, request)
        uploads = [e for e in engine.execs.values() if "sandboxd-upload" in e["command"]]
        assert len(uploads) == 1 and uploads[0]["started"]  # the files went in first
        assert engine.containers == {}  # the one-off sandbox is gone
        assert hub.sandboxes.list() == [] and list(hub.executions.running()) == []
        assert hub.records.list() == []


async def test_an_execution_whose_starter_left_before_it_started_is_recorded_and_cleaned_up(tmp_path):
    async with daemon(tmp_path) as (hub, engine):
        async def starter_gone(started: Any) -> None:
            raise SessionClosed

        with pytest.raises(SessionClosed):
            await hub.ops.start_execution(ANONYMOUS, p.ExecuteCommand(("echo", "hi")), accept=starter_gone)
        assert engine.containers == {}
        assert list(hub.executions.running()) == []
        [record] = hub.records.list()
        assert record["status"] == "error" and record["reason"] == "the execution could not be started"
        assert not any(e["started"] for e in engine.execs.values())  # the command never ran


async def test_an_execution_whose_stream_fails_to_open_ends_as_error_and_removes_its_sandbox(tmp_path):
    async with daemon(tmp_path) as (hub, engine):
        engine.fail["open_exec_stream"] = DockerError("cannot attach", op="exec start")
        started = await hub.ops.start_execution(ANONYMOUS, p.ExecuteCommand(("echo", "hi")))
        assert started.feed is not None
        events = [event async for event in started.feed.receive_channel]
        assert [e.name for e in events] == ["execution-complete"]
        assert events[0].data["status"] == "error"
        with trio.fail_after(10):
            while engine.containers:
                await trio.sleep(0.01)
        assert hub.records.get(started.execution.id)["status"] == "error"


async def test_joined_watchers_are_announced_to_before_the_command_starts_and_the_starter_is_not(tmp_path):
    async with daemon(tmp_path) as (hub, engine):
        sandbox = await hub.ops.create_sandbox(ANONYMOUS, None)
        starter, joined, elsewhere = watcher("s1"), watcher("s2"), watcher("s3")
        for w in (starter, joined, elsewhere):
            hub.watchers.add(w)
        starter.joined.add(sandbox.id)
        await hub.ops.join_sandbox(joined, sandbox.id)
        seen_at_accept: list[Any] = []

        async def accept(started: Any) -> None:
            seen_at_accept.append(joined.inbox.statistics().current_buffer_used)

        started = await hub.ops.start_execution(
            ANONYMOUS, p.ExecuteCommand(("echo", "hi"), container_id=sandbox.id), starter=starter, accept=accept)
        assert seen_at_accept == [0]  # the starter was answered first
        assert joined.inbox.receive_nowait() == Announcement(started.execution.id, {1: 0, 2: 0})
        for w in (starter, elsewhere):
            with pytest.raises(trio.WouldBlock):
                w.inbox.receive_nowait()
        started.execution.unsubscribe_live()


async def test_a_starter_without_accept_gets_the_live_feed_through_its_inbox(tmp_path):
    async with daemon(tmp_path) as (hub, engine):
        target = watcher("s9")
        hub.watchers.add(target)
        started = await hub.ops.start_execution(ANONYMOUS, p.ExecuteCommand(("echo", "hi")), starter=hub.watchers.get("s9"))
        delivery = target.inbox.receive_nowait()
        assert isinstance(delivery, LiveFeed) and delivery.execution is started.execution
        with trio.fail_after(10):
            events = [e.name async for e in delivery.feed.receive_channel]
        assert events == ["execution-output", "execution-complete"]


class Client:
    """A session driven through in-memory frames."""

    def __init__(self, hub: Hub, nursery: trio.Nursery) -> None:
        self.to_session, self._incoming = trio.open_memory_channel[str](10)
        self._outgoing, self.from_session = trio.open_memory_channel[str | bytes](100)
        self.session = Session(hub, self._send, self._receive)
        nursery.start_soon(self.session.run)

    async def _send(self, frame: str | bytes) -> None:
        await self._outgoing.send(frame)

    async def _receive(self) -> str:
        try:
            return await self._incoming.receive()
        except trio.EndOfChannel:
            raise SessionClosed from None

    async def call(self, event: str, data: dict[str, Any]) -> None:
        await self.to_session.send(json.dumps({"event": event, "data": data}))

    async def next(self) -> tuple[str, dict[str, Any]]:
        with trio.fail_after(10):
            frame = json.loads(await self.from_session.receive())
        return frame["event"], frame["data"]


async def test_a_session_speaks_the_dialect_it_joined_with(tmp_path):
    async with daemon(tmp_path) as (hub, engine), trio.open_nursery() as nursery:
        sandbox = await hub.ops.create_sandbox(ANONYMOUS, None)
        seed, native = Client(hub, nursery), Client(hub, nursery)
        await seed.call("join-session", {"containerId": sandbox.id})
        await native.call("join-container", {"containerId": sandbox.id, "ref": 1})
        assert await seed.next() == ("session-joined", {"containerId": sandbox.id})
        assert await native.next() == ("container-joined", {"containerId": sandbox.id, "success": True, "ref": 1})
        await seed.call("execute-command", {"containerId": sandbox.id, "command": ["echo", "hi"]})
        names = [(await seed.next())[0] for _ in range(3)]
        assert names == ["command-accepted", "exec-output", "exec-finished"]
        names = [(await native.next())[0] for _ in range(3)]
        assert names == ["execution-started", "execution-output", "execution-complete"]
        await seed.call("no-such-event", {"ref": "r"})
        name, data = await seed.next()
        assert name == "error" and data["code"] == "UNKNOWN_EVENT" and data["ref"] == "r"
        seed.to_session.close()
        native.to_session.close()

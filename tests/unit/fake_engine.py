"""An in-memory stand-in for the Docker engine, for in-process tests of the daemon's logic.

It implements the methods the daemon calls on :class:`sandboxd.engine.DockerEngine`.
Commands do not run: ``echo ARGS`` prints its arguments, ``cat`` copies stdin to stdout,
helper shell scripts succeed, and anything else exits 0 with no output. Failures are
injected with ``fail``: operation name -> exception to raise.
"""

from __future__ import annotations

import itertools
import struct
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Sequence

import trio

from sandboxd.config import DockerConfig
from sandboxd.engine import LABEL_INSTANCE, LABEL_MANAGED, STDOUT
from sandboxd.errors import NotFound
from sandboxd.plugin_types import RunResult

_ids = itertools.count(1)


def frame(sid: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", sid, len(payload)) + payload


class FakeStream:
    """``data`` then EOF; or, with ``stdin`` set to "echo", stdin copied to stdout until
    its EOF; with "swallow", stdin read and dropped, then ``data`` after its EOF."""

    def __init__(self, data: bytes, stdin: str | None = None) -> None:
        self._out_send, self._out_recv = trio.open_memory_channel[bytes](100)
        self._stdin = stdin
        self._at_eof = data if stdin == "swallow" else b""
        if data and stdin != "swallow":
            self._out_send.send_nowait(data)
        if stdin is None:
            self._out_send.close()

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._out_recv.receive()
        except trio.EndOfChannel:
            return b""

    async def send_all(self, data: bytes) -> None:
        if self._stdin == "echo":
            await self._out_send.send(frame(STDOUT, data))

    async def send_eof(self) -> None:
        if self._at_eof:
            await self._out_send.send(self._at_eof)
            self._at_eof = b""
        self._out_send.close()


class FakeEngine:
    def __init__(self, instance: str = "test") -> None:
        self.instance = instance
        self.config = DockerConfig(instance=instance)
        self.available = True
        self.on_error: Any = None
        self.containers: dict[str, dict[str, Any]] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        #: operation -> exception to raise there ("exec_create" of a command,
        #: "helper_exec_create" of the daemon's own helpers, "open_exec_stream", ...).
        self.fail: dict[str, BaseException] = {}
        self.calls: list[str] = []

    def _call(self, op: str) -> None:
        self.calls.append(op)
        if op in self.fail:
            raise self.fail[op]

    def check_available(self, op: str) -> None:
        pass

    async def ping(self, timeout: float) -> bool:
        return True

    async def version(self) -> dict[str, Any]:
        return {"Version": "fake", "ApiVersion": "1.41"}

    async def aclose(self) -> None:
        pass

    async def create_sandbox(self, options: Any, *, command: Sequence[str], user: str | None,
                             labels: Mapping[str, str], **container_spec: Any) -> str:
        self._call("create_sandbox")
        cid = f"{next(_ids):064x}"
        self.containers[cid] = {
            "Id": cid, "Image": options.image, "Created": 0,
            "Labels": {**options.labels, **labels, LABEL_MANAGED: "true", LABEL_INSTANCE: self.instance},
        }
        return cid

    async def inspect_image(self, image: str) -> dict[str, Any]:
        return {"Id": f"sha256:{image}", "Config": {"User": "1000:1000", "WorkingDir": "/work"}}

    @asynccontextmanager
    async def open_image_probe(self, image: str) -> AsyncIterator[Any]:
        async def read(path: str, limit: int) -> bytes | None:
            return None  # no /etc/passwd; the workdir is missing, so it gets an (empty) tmpfs

        yield read

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        c = self.containers.get(container_id)
        if c is None:
            raise NotFound(f"no such container: {container_id}")
        return {"Id": c["Id"], "State": {"Running": True},
                "Config": {"Labels": c["Labels"], "Image": c["Image"], "WorkingDir": "/work"}}

    async def list_sandboxes(self) -> list[dict[str, Any]]:
        return list(self.containers.values())

    async def remove_container(self, container_id: str) -> None:
        self._call("remove_container")
        self.containers.pop(container_id, None)

    def is_ours(self, container: Mapping[str, Any]) -> bool:
        labels = (container.get("Config") or {}).get("Labels") or container.get("Labels") or {}
        return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_INSTANCE) == self.instance

    async def exec_create(self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
                          workdir: str | None = None, user: str | None = None, stdin: bool = False,
                          tty: bool = False) -> str:
        helper = any(str(arg).startswith("sandboxd-") for arg in command[3:4])
        self._call("helper_exec_create" if helper else "exec_create")
        if container_id not in self.containers:
            raise NotFound(f"no such container: {container_id}")
        exec_id = f"x{next(_ids)}"
        self.execs[exec_id] = {"command": list(command), "stdin": stdin, "tty": tty, "started": False}
        return exec_id

    @asynccontextmanager
    async def open_exec_stream(self, exec_id: str, *, tty: bool = False) -> AsyncIterator[FakeStream]:
        self._call("open_exec_stream")
        ex = self.execs[exec_id]
        ex["started"] = True
        command = ex["command"]
        if command[3:4] == ["sandboxd-upload"]:  # the file helper: takes a tar, says where it went
            yield FakeStream(frame(STDOUT, b"PLACED .\n"), stdin="swallow")
            return
        out = (" ".join(command[1:]) + "\n").encode() if command[:1] == ["echo"] else b""
        data = out if tty else (frame(STDOUT, out) if out else b"")
        yield FakeStream(data, stdin="echo" if command[:1] == ["cat"] and ex["stdin"] else None)

    async def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"Running": False, "ExitCode": 0}

    async def exec_resize(self, exec_id: str, cols: int, rows: int) -> None:
        pass

    async def run_to_end(self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
                         workdir: str | None = None, user: str | None = None, max_output: int = 1 << 20) -> RunResult:
        self._call("run_to_end")
        script = " ".join(command)
        if "id -u" in script:
            return RunResult(0, b"1000\n1000\n", b"")
        return RunResult(0, b"", b"")

    async def signal_execution(self, container_id: str, marker: str, signal: str, *, user: str | None = None) -> int:
        self._call("signal_execution")
        return 0

    async def oom_kills(self, container_id: str) -> int | None:
        return None

"""What the SDK hands back: typed, immutable results built from the daemon's replies."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence, Union

Stream = Literal["stdout", "stderr"]
#: A file's content for ``files=`` and ``files.write``: text (written as UTF-8) or bytes.
FileContent = Union[str, bytes]


@dataclass(frozen=True)
class OutputChunk:
    """A piece of an execution's output, exactly as the command wrote it."""

    stream: Stream
    data: bytes
    #: Byte offset of ``data`` in its stream (stdout and stderr count separately).
    seq: int

    @property
    def text(self) -> str:
        """``data`` as text. A character cut at a chunk boundary comes out as U+FFFD; use the
        ``on_stdout``/``on_stderr`` callbacks for text that is decoded across chunks."""
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class ExecutionResult:
    """How an execution ended, with the output this client consumed."""

    execution_id: str
    sandbox_id: str
    #: ``success``, ``failed``, ``timeout``, ``killed``, ``error`` or ``interrupted``.
    status: str
    #: The process's exit code (143 after SIGTERM, 137 after SIGKILL), or None if unknown.
    exit_code: int | None
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    #: Seconds from start to the end of output.
    duration: float = 0.0
    #: The output reached the daemon's ``limits.max_output_bytes`` and was cut.
    truncated: bool = False
    #: Why it ended, for ``timeout``, ``killed`` and ``error``.
    reason: str | None = None
    #: With status ``error``: ``ENGINE_UNAVAILABLE`` or ``SANDBOX_STOPPED``.
    error_code: str | None = None
    #: ``execution-complete``'s data as the daemon sent it.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @classmethod
    def from_complete(cls, data: Mapping[str, Any], stdout: bytes = b"", stderr: bytes = b"") -> ExecutionResult:
        return cls(
            execution_id=data["executionId"], sandbox_id=data.get("containerId", ""), status=data["status"],
            exit_code=data.get("exitCode"), stdout_bytes=stdout, stderr_bytes=stderr,
            duration=(data.get("durationMs") or 0) / 1000, truncated=bool(data.get("truncated")),
            reason=data.get("reason"), error_code=data.get("errorCode"),
            raw={k: v for k, v in data.items() if k != "ref"},
        )


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as ``list-containers`` / ``inspect-container`` describe it."""

    id: str
    image: str
    created_at: Any = None
    owner: str | None = None
    ephemeral: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds: float | None = None
    #: Only from :meth:`Sandbox.info`: the sandbox's limits and running executions.
    limits: Mapping[str, Any] | None = None
    running_executions: Sequence[str] = ()
    #: The description as the daemon sent it.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> SandboxInfo:
        return cls(
            id=d["containerId"], image=d.get("image", ""), created_at=d.get("createdAt"), owner=d.get("owner"),
            ephemeral=bool(d.get("ephemeral")), labels=dict(d.get("labels") or {}), ttl_seconds=d.get("ttlSeconds"),
            limits=d.get("limits"), running_executions=tuple(d.get("runningExecutions") or ()),
            raw={k: v for k, v in d.items() if k != "ref"},
        )


@dataclass(frozen=True)
class ExecutionInfo:
    """An execution's record (``list-executions``), running or finished."""

    id: str
    sandbox_id: str
    command: Sequence[str]
    status: str
    exit_code: int | None
    owner: str | None = None
    image: str | None = None
    workdir: str | None = None
    reason: str | None = None
    started_at: Any = None
    finished_at: Any = None
    duration: float | None = None
    #: Bytes of output per stream (``{"stdout": n, "stderr": m}``).
    bytes: Mapping[str, int] = field(default_factory=dict)
    truncated: bool = False
    #: The record as the daemon sent it.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExecutionInfo:
        ms = d.get("durationMs")
        return cls(
            id=d["executionId"], sandbox_id=d.get("containerId", ""), command=tuple(d.get("command") or ()),
            status=d.get("status", ""), exit_code=d.get("exitCode"), owner=d.get("owner"), image=d.get("image"),
            workdir=d.get("workdir"), reason=d.get("reason"), started_at=d.get("startedAt"),
            finished_at=d.get("finishedAt"), duration=None if ms is None else ms / 1000,
            bytes=dict(d.get("bytes") or {}), truncated=bool(d.get("truncated")), raw=dict(d),
        )


@dataclass(frozen=True)
class FileInfo:
    """What :meth:`Files.download` fetched."""

    path: str
    #: ``"file"``, or ``"directory"`` (the bytes were a tar of it).
    kind: str
    size: int | None = None
    mode: int | None = None
    #: Modification time, seconds since the epoch.
    mtime: float | None = None

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> FileInfo:
        return cls(path=d.get("path", ""), kind=d.get("kind", "file"), size=d.get("size"), mode=d.get("mode"),
                   mtime=d.get("mtime"))


def file_entry(content: FileContent, mode: int | str | None = None) -> dict[str, Any]:
    """One ``files`` entry of ``upload-files``/``execute-command``, always as base64."""
    raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    entry: dict[str, Any] = {"content": base64.b64encode(raw).decode("ascii"), "encoding": "base64"}
    if mode is not None:
        entry["mode"] = mode
    return entry


def files_spec(files: Mapping[str, FileContent] | None) -> dict[str, Any] | None:
    return None if not files else {path: file_entry(content) for path, content in files.items()}

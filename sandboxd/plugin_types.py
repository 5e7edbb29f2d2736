"""The values plugins receive and return. Part of the public plugin API.

Everything here is plain data (frozen where plugins must not change it), so a plugin
never holds a reference into the daemon's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Mapping


@dataclass(frozen=True)
class Principal:
    """Who is asking: returned by ``sandboxd_authenticate``."""

    user: str
    roles: frozenset[str] = frozenset()

    def has_role(self, role: str) -> bool:
        return role in self.roles


#: The principal of every session when no authentication plugin is enabled.
ANONYMOUS = Principal("anonymous", frozenset({"anonymous"}))


@dataclass(frozen=True)
class HTTPRequest:
    """A WebSocket handshake or plain HTTP request, before any upgrade."""

    method: str
    path: str
    #: Query parameters, each with its first value.
    query: Mapping[str, str]
    #: Header names are lower-case.
    headers: Mapping[str, str]
    #: "host:port" of the client.
    peer: str


@dataclass(frozen=True)
class Deny:
    """A refusal from ``sandboxd_authorize``.

    ``hide=True`` answers as if the sandbox did not exist (``NOT_FOUND``), so that
    a user cannot learn which ids belong to others; otherwise the client gets
    ``FORBIDDEN`` with ``reason``.
    """

    reason: str = "not allowed"
    hide: bool = False


@dataclass(frozen=True)
class Refusal:
    """A refusal of an HTTP request or handshake (``sandboxd_check_request``)."""

    status: int
    reason: str


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as plugins see it."""

    id: str
    image: str
    #: The ``user`` of the principal that created it (None for sandboxes from before
    #: ownership was recorded).
    owner: str | None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxOptions:
    """What a new sandbox will get. ``sandboxd_sandbox_options`` may return a tighter copy."""

    image: str
    memory_bytes: int
    cpus: float
    pids_limit: int
    read_only_root: bool
    #: Extra labels (keys under ``org.sandboxd.`` are reserved).
    labels: Mapping[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> SandboxOptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class Placement:
    """Where a client asked a new sandbox to go (``create-container``'s ``placement``)."""

    #: This engine, by name.
    engine: str | None = None
    #: An engine whose ``labels`` include all of these.
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineLoad:
    """One engine as placement sees it: what it holds now and what room it has left."""

    name: str
    labels: Mapping[str, str]
    #: Sandboxes on it (those being created included) and executions running there.
    sandboxes: int
    running: int
    #: Its ``max_sandboxes`` (0: no cap).
    max_sandboxes: int = 0
    #: Memory (bytes) and CPUs not yet promised to its sandboxes' limits, after the
    #: configured overcommit; None when the engine did not report its size.
    memory_free: int | None = None
    cpus_free: float | None = None

    @property
    def load(self) -> int:
        """What "least loaded" compares: sandboxes plus running executions."""
        return self.sandboxes + self.running


@dataclass(frozen=True)
class ExecutionLimits:
    """Limits of one execution. ``sandboxd_execution_limits`` may return a tighter copy."""

    timeout_seconds: float
    max_output_bytes: int
    #: Executions this principal may have running at once, daemon-wide.
    max_concurrent: int

    def replace(self, **changes: Any) -> ExecutionLimits:
        return replace(self, **changes)


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    stdout: bytes
    stderr: bytes


@dataclass
class ExecutionInfo:
    """An execution as plugins see it (``sandboxd_execution_started``/``_finished``)."""

    id: str
    sandbox: SandboxInfo
    principal: Principal
    command: tuple[str, ...]
    workdir: str | None
    #: Set once finished: ``success``, ``failed``, ``timeout``, ``killed`` or ``error``.
    status: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    truncated: bool = False
    bytes_out: Mapping[str, int] = field(default_factory=dict)
    #: Paths uploaded for this execution (``files`` of ``execute-command``).
    uploaded: tuple[str, ...] = ()
    #: Run a command in the same sandbox as the same user; bounded by the daemon's
    #: engine timeout. For follow-up work such as committing the result.
    run_in_sandbox: Callable[..., Awaitable[RunResult]] | None = None
    #: Send an event to the sessions watching this execution.
    send_event: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

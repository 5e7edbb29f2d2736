"""Every REST request and response body, as msgspec types.

The handlers decode and encode with these, and :mod:`sandboxd.rest.openapi` derives the
OpenAPI document from them (``msgspec.json.schema_components``), so the schema cannot
drift from the code. Field names are camelCase on the wire, as in the WebSocket
protocol; request bodies refuse unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .. import protocol as p
from ..errors import BadRequest

Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
Positive = Annotated[float, Meta(gt=0)]
PositiveInt = Annotated[int, Meta(gt=0)]


class _Request(Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    pass


class _Response(Struct, kw_only=True, rename="camel"):
    pass


# --- errors ---------------------------------------------------------------------------


class ErrorDetail(_Response):
    #: A stable code, the same as the WebSocket protocol's (``NOT_FOUND``, ...).
    code: str
    message: str


class ErrorBody(_Response):
    """Every error response: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


# --- sandboxes ------------------------------------------------------------------------


class CreateContainerRequest(_Request):
    """Create a sandbox; limits are capped by the config and by policy."""

    image: str | None = None
    labels: dict[str, str] = {}
    memory_bytes: PositiveInt | None = None
    cpus: Positive | None = None
    pids_limit: PositiveInt | None = None
    ttl_seconds: Positive | None = None


class Container(_Response):
    container_id: str
    image: str
    created_at: float | None = None
    ephemeral: bool = False
    owner: str | None = None
    labels: dict[str, str] = {}
    ttl_seconds: float | None = None


class ContainerInfo(Container):
    #: The limits it was created with (memoryBytes, cpus, pidsLimit, ...).
    limits: dict[str, Any] = {}
    running_executions: list[str] = []
    idle_seconds: float = 0.0


class ContainerList(_Response):
    containers: list[Container]


class ContainerRemoved(_Response):
    container_id: str
    removed: bool = True


# --- executions -----------------------------------------------------------------------


class FileSpec(_Request):
    content: str
    encoding: Literal["base64", "utf-8"] | None = None
    #: Octal string ("755") or number.
    mode: int | str | None = None


class ExecRequest(_Request):
    """Run a command: in ``containerId``, or in a one-off sandbox from ``image``."""

    #: An argv list, or a shell command line (run with ``/bin/sh -c``).
    command: Union[list[str], str]
    container_id: Id | None = None
    image: str | None = None
    env: dict[str, str] = {}
    workdir: str | None = None
    timeout: Positive | None = None
    #: Files to write before the command starts, as in ``upload-files``.
    files: dict[str, Union[str, FileSpec]] | None = None
    #: Text given to the command's stdin up front (then stdin is closed) ...
    stdin: str | None = None
    #: ... unless this is true: then more can be sent with ``POST .../stdin``.
    keep_stdin_open: bool = False
    #: Stream output to this Socket.IO socket or WebSocket session; answer 202 at once.
    socket_session_id: Id | None = None


class ExecAccepted(_Response):
    """202: the execution started; its output goes to the named session."""

    execution_id: str
    container_id: str


class ExecResult(_Response):
    """200: the execution ran to its end."""

    execution_id: str
    container_id: str
    status: Literal["success", "failed", "timeout", "killed", "error"]
    exit_code: int | None
    #: Text, or base64 when ``stdoutEncoding`` is ``"base64"`` (not valid UTF-8).
    stdout: str
    stderr: str
    duration_ms: int
    #: The output was cut: at the execution's output limit, or at ``api.max_exec_output_bytes``.
    truncated: bool
    stdout_encoding: Union[Literal["base64"], UnsetType] = UNSET
    stderr_encoding: Union[Literal["base64"], UnsetType] = UNSET
    reason: Union[str, UnsetType] = UNSET
    error_code: Union[str, UnsetType] = UNSET


class ByteCounts(_Response):
    stdout: int = 0
    stderr: int = 0


class Execution(_Response):
    """An execution's record (running or finished)."""

    execution_id: str
    container_id: str
    image: str | None = None
    owner: str | None = None
    command: list[str] = []
    workdir: str | None = None
    status: str = "running"
    exit_code: int | None = None
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int = 0
    bytes: ByteCounts = msgspec.field(default_factory=ByteCounts)
    truncated: bool = False
    error_code: str | None = None


class ExecutionList(_Response):
    executions: list[Execution]


class KillRequest(_Request):
    #: A name ("TERM", "SIGINT") or number; absent: TERM, then KILL after the grace period.
    signal: Union[str, int, None] = None


class KillSent(_Response):
    execution_id: str
    signal: str


class StdinRequest(_Request):
    data: str = ""
    encoding: Literal["base64", "utf-8"] | None = None
    #: Close stdin after ``data`` (EOF for the command).
    close: bool = False


class StdinWritten(_Response):
    execution_id: str
    bytes: int
    closed: bool


# --- files ----------------------------------------------------------------------------


class FileWritten(_Response):
    container_id: str
    path: str
    size: int


def decode(body: bytes, type_: type[Struct]) -> Struct:
    """Decode a request body; every failure is a ``BadRequest`` naming the field."""
    if not body.strip():
        body = b"{}"
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


_encoder = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def to_message(event: str, data: Any) -> p.ClientMessage:
    """The WebSocket protocol's message for the same request, through its one parser, so
    REST and WebSocket requests are checked by exactly the same rules."""
    return p.parse_client_message(_encoder.encode({"event": event, "data": data}).decode())

"""Server messages: every event the daemon sends, declared once, as a frozen type.

Each message type names its event (``EVENT``) and its fields (snake_case here, camelCase
on the wire). :func:`message_parts` is the one encoder: it turns a message into the
event name and data object a transport frames, in the client's dialect (the seed's
dialect leaves out the fields in ``SEED_OMITS``; its event names are applied by the
framing, :func:`sandboxd.protocol.encode`). Output chunks (``execution-output``), the
hot path, are built once per chunk by :func:`sandboxd.events.output_event`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Union

import msgspec
from msgspec import UNSET, UnsetType

from ._fields import Ref


class Message(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    EVENT: ClassVar[str]
    #: Fields a client speaking the seed's dialect is not sent.
    SEED_OMITS: ClassVar[tuple[str, ...]] = ()
    #: The request's ``ref``, echoed.
    ref: Union[Ref, UnsetType] = UNSET


class Offsets(msgspec.Struct, frozen=True):
    stdout: int = 0
    stderr: int = 0

    @classmethod
    def of(cls, by_stream: Mapping[int, int]) -> Offsets:
        """From stream id (1 stdout, 2 stderr) -> byte offset."""
        return cls(by_stream.get(1, 0), by_stream.get(2, 0))


class Error(Message, frozen=True):
    EVENT = "error"
    message: str
    code: str


class Pong(Message, frozen=True):
    EVENT = "pong"


class SessionConfigured(Message, frozen=True):
    EVENT = "session-configured"
    binary_output: bool
    user: str
    roles: list[str]
    #: This session's id (REST's ``socketSessionId`` names it).
    session_id: str


class ContainerCreated(Message, frozen=True):
    EVENT = "container-created"
    container_id: str
    image: str


class ContainerJoined(Message, frozen=True):
    EVENT = "container-joined"
    SEED_OMITS = ("success",)
    container_id: str
    success: bool = True


class ContainerLeft(Message, frozen=True):
    EVENT = "container-left"
    container_id: str


class ContainerRemoved(Message, frozen=True):
    EVENT = "container-removed"
    container_id: str


class ContainerInfo(Message, frozen=True):
    EVENT = "container-info"
    #: The sandbox's description (:meth:`sandboxd.sandboxes.Sandbox.describe`), then:
    container_id: str
    image: str
    created_at: float
    ephemeral: bool
    owner: Union[str, None]
    labels: dict[str, str]
    ttl_seconds: float
    limits: dict[str, Any]
    running_executions: list[str]
    idle_seconds: float


class Containers(Message, frozen=True):
    EVENT = "containers"
    #: Sandbox descriptions (:meth:`sandboxd.sandboxes.Sandbox.describe`).
    containers: list[dict[str, Any]]


class Engines(Message, frozen=True):
    EVENT = "engines"
    #: Engine descriptions (:meth:`sandboxd.operations.engines.EngineState.describe`).
    engines: list[dict[str, Any]]


class ImageEngines(msgspec.Struct, frozen=True):
    image: str
    engines: list[str]


class Images(Message, frozen=True):
    EVENT = "images"
    images: list[ImageEngines]


class FilesUploaded(Message, frozen=True):
    EVENT = "files-uploaded"
    container_id: str
    paths: list[str]


class FileDownloaded(Message, frozen=True):
    EVENT = "file-downloaded"
    container_id: str
    path: str
    size: int
    content: str
    encoding: str = "base64"


class CommandAccepted(Message, frozen=True):
    EVENT = "command-accepted"
    execution_id: str
    container_id: str


class KillSent(Message, frozen=True):
    EVENT = "kill-sent"
    execution_id: str
    signal: str


class ExecutionStarted(Message, frozen=True):
    """To clients that joined the sandbox: what they are about to watch."""

    EVENT = "execution-started"
    execution_id: str
    container_id: str
    command: list[str]
    owner: Union[str, None]
    since: Offsets


class ExecutionAttached(Message, frozen=True):
    EVENT = "execution-attached"
    execution_id: str
    container_id: str
    status: str
    since: Offsets


class ExecutionDetached(Message, frozen=True):
    """A non-following attach reached the end of what was written so far."""

    EVENT = "execution-detached"
    execution_id: str
    container_id: str
    offsets: Offsets


class ExecutionComplete(Message, frozen=True):
    EVENT = "execution-complete"
    execution_id: str
    container_id: str
    status: str
    exit_code: Union[int, None]
    duration_ms: int
    timestamp: Union[float, None]
    truncated: Union[bool, UnsetType] = UNSET
    reason: Union[str, UnsetType] = UNSET
    error_code: Union[str, UnsetType] = UNSET

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> ExecutionComplete:
        """From an execution record (live or stored: :mod:`sandboxd.protocol.records`)."""
        return cls(
            execution_id=record["executionId"], container_id=record["containerId"], status=record["status"],
            exit_code=record["exitCode"], duration_ms=record["durationMs"], timestamp=record["finishedAt"],
            truncated=True if record.get("truncated") else UNSET, reason=record.get("reason") or UNSET,
            error_code=record.get("errorCode") or UNSET,
        )


class Executions(Message, frozen=True):
    EVENT = "executions"
    #: Execution records (:mod:`sandboxd.protocol.records`), newest first.
    executions: list[dict[str, Any]]


class ExecutionWarning(Message, frozen=True):
    EVENT = "warning"
    execution_id: str
    container_id: str
    code: str
    message: str


def ref(value: Ref) -> Union[Ref, UnsetType]:
    """A request's ``ref`` as a message field (absent when the request had none)."""
    return UNSET if value is None else value


def message_parts(message: Message, *, alias: bool = False) -> tuple[str, dict[str, Any]]:
    """The event name (primary) and data object of ``message``, for ``alias`` (the
    seed's dialect) or not."""
    data: dict[str, Any] = msgspec.to_builtins(message)
    if alias:
        for key in message.SEED_OMITS:
            data.pop(key, None)
    return message.EVENT, data

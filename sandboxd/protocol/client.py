"""Client messages: each event a client may send, as a frozen type, and its parser.

:func:`parse_client_message` raises :class:`~sandboxd.errors.BadRequest` (or
:class:`~sandboxd.errors.UnknownEvent`) with a message naming the field at fault; the
session turns that into an ``error`` event and carries on.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

import msgspec

from ..errors import BadRequest, UnknownEvent
from ..placement import parse_placement
from ..plugin_types import Placement
from ._fields import DuplicateKey, Fields, Ref, no_nul, strict_decode, valid_id
from .transfers import PARSERS as FILE_PARSERS

_decode = msgspec.json.decode

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12,
    "TERM": 15, "CONT": 18, "STOP": 19, "WINCH": 28,
}

_MAX_ARGS = 4096
_MAX_ENV = 1024



# --- client messages -----------------------------------------------------------


@dataclass(frozen=True)
class CreateContainer:
    image: str | None = None
    #: User labels (keys under "org.sandboxd." are reserved).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Asked-for limits; each is capped by config and policy.
    memory_bytes: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    #: Remove the sandbox after this long without executions (capped by config).
    ttl_seconds: float | None = None
    #: Which engine, when several are configured: ``{"engine": NAME, "labels": {...}}``.
    placement: Placement = field(default_factory=Placement)
    ref: Ref = None


@dataclass(frozen=True)
class InspectContainer:
    container_id: str
    ref: Ref = None


@dataclass(frozen=True)
class JoinContainer:
    container_id: str
    #: True when the client used the seed's ``join-session`` name.
    alias: bool = False
    ref: Ref = None


@dataclass(frozen=True)
class LeaveContainer:
    container_id: str
    ref: Ref = None


@dataclass(frozen=True)
class ListContainers:
    ref: Ref = None


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    ref: Ref = None


@dataclass(frozen=True)
class UploadFiles:
    container_id: str
    #: path -> text | {content, encoding?, mode?}; checked by sandboxd.files.
    files: Mapping[str, Any]
    workdir: str | None = None
    ref: Ref = None


@dataclass(frozen=True)
class DownloadFile:
    container_id: str
    path: str
    ref: Ref = None


@dataclass(frozen=True)
class ExecuteCommand:
    command: tuple[str, ...]
    #: Run in this sandbox...
    container_id: str | None = None
    #: ...or, when no sandbox is named, in a new one from this image, removed afterwards.
    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    stdin: bool = False
    timeout: float | None = None
    #: Files to write before the command starts (as in ``upload-files``).
    files: Mapping[str, Any] | None = None
    #: Run with a pseudo-terminal: one output stream, keystrokes on stdin.
    tty: bool = False
    #: Initial terminal size (cols, rows).
    size: tuple[int, int] | None = None
    #: Run as this user (``docker exec -u``); only users in ``sandbox.allowed_users``.
    user: str | None = None
    ref: Ref = None


@dataclass(frozen=True)
class StdinData:
    execution_id: str
    data: bytes
    ref: Ref = None


@dataclass(frozen=True)
class Resize:
    execution_id: str
    cols: int
    rows: int
    ref: Ref = None


@dataclass(frozen=True)
class StdinClose:
    execution_id: str
    ref: Ref = None


@dataclass(frozen=True)
class Kill:
    execution_id: str
    #: Signal name without "SIG"; None means stop: TERM, then KILL after a grace period.
    signal: str | None = None
    ref: Ref = None


@dataclass(frozen=True)
class Ping:
    ref: Ref = None


@dataclass(frozen=True)
class AttachExecution:
    execution_id: str
    #: Byte offset per stream (1 stdout, 2 stderr) to replay from.
    since: Mapping[int, int] = field(default_factory=dict)
    #: Keep streaming live output after the replay (else stop at the current end).
    follow: bool = True
    ref: Ref = None


@dataclass(frozen=True)
class ListExecutions:
    container_id: str | None = None
    ref: Ref = None


@dataclass(frozen=True)
class ListEngines:  # the engines, their state and load
    ref: Ref = None


@dataclass(frozen=True)
class ListImages:  # which engines have which images
    ref: Ref = None


@dataclass(frozen=True)
class ConfigureSession:
    #: Send output as binary frames (raw bytes) instead of JSON ``execution-output``.
    binary_output: bool = False
    ref: Ref = None


ClientMessage = Union[
    CreateContainer, InspectContainer, JoinContainer, LeaveContainer, ListContainers, RemoveContainer,
    ExecuteCommand, StdinData, StdinClose, Kill, Ping, ConfigureSession, AttachExecution, ListExecutions,
    UploadFiles, DownloadFile, Resize, ListEngines, ListImages,
]


def peek_ref(text: str | bytes) -> Ref:
    """Best-effort ``data.ref`` of a frame, so even a rejected frame's error can echo it."""
    try:
        data = _decode(text).get("data")
        ref = data.get("ref") if isinstance(data, dict) else None
    except (msgspec.DecodeError, AttributeError, RecursionError):
        return None
    return ref if isinstance(ref, (str, int)) and not isinstance(ref, bool) else None


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one frame from a client.

    Raises:
        BadRequest: not a JSON object with a string ``event``, or a field is missing or
            of the wrong type.
        UnknownEvent: the event name is not one the daemon knows.
    """
    if isinstance(text, (bytes, bytearray)):
        raise BadRequest("binary frames are not accepted; send JSON text frames")
    try:
        frame = strict_decode(text)
    except DuplicateKey as exc:
        raise BadRequest(f"frame has the key {str(exc)!r} twice in one object") from None
    except (ValueError, RecursionError):
        raise BadRequest("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise BadRequest('frame must be a JSON object {"event": ..., "data": ...}')
    event = frame.get("event")
    if not isinstance(event, str):
        raise BadRequest('frame has no string "event"')
    parser = _PARSERS.get(event)
    if parser is None:
        raise UnknownEvent(f"unknown event {event!r}")
    data = frame.get("data", {})
    if data is None:
        data = {}
    return parser(Fields(event, data))


def _container_id(f: Fields) -> str:
    # The seed sent the bare id string as data; accept it.
    if isinstance(f.data, str):
        if not valid_id(f.data):
            raise BadRequest(f"{f.event}: not a valid container id")
        return f.data
    return f.id("containerId")  # type: ignore[return-value]


def _parse_execute(f: Fields) -> ExecuteCommand:
    data = f.obj()
    command = data.get("command")
    if isinstance(command, str):
        # The seed sent a shell command line; run it the way a shell would.
        if not command.strip():
            raise BadRequest("execute-command: command must not be empty")
        argv: tuple[str, ...] = ("/bin/sh", "-c", no_nul(command, "command", f.event))
    elif isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        if len(command) > _MAX_ARGS:
            raise BadRequest(f"execute-command: more than {_MAX_ARGS} arguments")
        argv = tuple(no_nul(a, "command arguments", f.event) for a in command)
    elif command is None:
        raise BadRequest("execute-command: missing field 'command'")
    else:
        raise BadRequest("execute-command: command must be a non-empty list of strings")
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise BadRequest("execute-command: env must be an object of string values")
    if len(env) > _MAX_ENV:
        raise BadRequest(f"execute-command: more than {_MAX_ENV} env entries")
    for key in env:
        if not key or "=" in key or "\x00" in key or "\x00" in env[key]:
            raise BadRequest(f"execute-command: invalid env name {key!r}")
    container_id = f.id("containerId", required=False)
    image = f.str("image")
    if container_id is None and image is None:
        raise BadRequest("execute-command: missing field 'containerId' (or 'image' for a one-off sandbox)")
    tty = f.bool("tty")
    cols, rows = f.number("cols"), f.number("rows")
    if (cols is None) != (rows is None) or (cols and (cols > 10000 or rows > 10000)):  # type: ignore[operator]
        raise BadRequest("execute-command: give both cols and rows (at most 10000), or neither")
    workdir = f.str("workdir")
    user = f.str("user")
    return ExecuteCommand(
        command=argv,
        container_id=container_id,
        image=None if container_id else image,
        env=dict(env),
        workdir=no_nul(workdir, "workdir", f.event) if workdir else None,
        stdin=f.bool("stdin"),
        timeout=f.number("timeout"),
        files=_files(f) if data.get("files") is not None else None,
        tty=tty,
        size=(int(cols), int(rows)) if cols and rows else None,
        user=no_nul(user, "user", f.event) if user else None,
        ref=f.ref,
    )


def _files(f: Fields) -> dict[str, Any]:
    files = f.obj().get("files")
    if not isinstance(files, dict) or not files:
        raise BadRequest(f"{f.event}: files must be a non-empty object of path: content")
    return files


def _parse_stdin(f: Fields) -> StdinData:
    data = f.obj()
    payload = data.get("data")
    if not isinstance(payload, str):
        raise BadRequest("stdin-data: field 'data' must be a string")
    encoding = data.get("encoding")
    if encoding == "base64":
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("stdin-data: data is not valid base64") from None
    elif encoding in (None, "utf-8"):
        raw = payload.encode("utf-8", "surrogatepass")
    else:
        raise BadRequest("stdin-data: encoding must be 'base64' or absent")
    return StdinData(f.id("executionId"), raw, f.ref)  # type: ignore[arg-type]


def _parse_resize(f: Fields) -> Resize:
    cols, rows = f.number("cols"), f.number("rows")
    if cols is None or rows is None or cols > 10000 or rows > 10000:
        raise BadRequest("resize: cols and rows must be positive numbers (at most 10000)")
    return Resize(f.id("executionId"), int(cols), int(rows), f.ref)  # type: ignore[arg-type]


def _parse_create(f: Fields) -> CreateContainer:
    labels = f.obj().get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise BadRequest("create-container: labels must be an object of strings")
    for key in labels:
        if not key or key.startswith("org.sandboxd.") or len(key) > 128 or len(labels[key]) > 1024:
            raise BadRequest(f"create-container: label {key!r} is not allowed (org.sandboxd.* is reserved)")
    number = f.number
    memory, pids = number("memoryBytes"), number("pidsLimit")
    return CreateContainer(
        f.str("image"), dict(labels),
        memory_bytes=int(memory) if memory else None, cpus=number("cpus"),
        pids_limit=int(pids) if pids else None, ttl_seconds=number("ttlSeconds"),
        placement=parse_placement(f.event, f.obj().get("placement")), ref=f.ref,
    )


def _parse_attach(f: Fields) -> AttachExecution:
    since = f.obj().get("since", 0)
    if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
        offsets = {1: since, 2: since}
    elif isinstance(since, dict) and set(since) <= {"stdout", "stderr"} and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in since.values()
    ):
        offsets = {1: since.get("stdout", 0), 2: since.get("stderr", 0)}
    else:
        raise BadRequest("attach-execution: since must be a byte offset or {stdout, stderr} offsets")
    follow = f.obj().get("follow", True)
    if not isinstance(follow, bool):
        raise BadRequest("attach-execution: field 'follow' must be true or false")
    return AttachExecution(f.id("executionId"), offsets, follow, f.ref)  # type: ignore[arg-type]


def _parse_kill(f: Fields) -> Kill:
    sig = f.obj().get("signal")
    if isinstance(sig, int) and not isinstance(sig, bool):
        names = {v: k for k, v in SIGNALS.items()}
        if sig not in names:
            raise BadRequest(f"kill: unsupported signal {sig}")
        sig = names[sig]
    elif isinstance(sig, str):
        sig = sig.upper().removeprefix("SIG")
        if sig not in SIGNALS:
            raise BadRequest(f"kill: unsupported signal {sig!r}")
    elif sig is not None:
        raise BadRequest("kill: signal must be a name like 'TERM' or a number")
    return Kill(f.id("executionId"), sig, f.ref)  # type: ignore[arg-type]


_PARSERS: dict[str, Callable[[Fields], ClientMessage]] = {
    "create-container": lambda f: _parse_create(f),
    "inspect-container": lambda f: InspectContainer(_container_id(f), f.ref),
    "join-container": lambda f: JoinContainer(_container_id(f), False, f.ref),
    "join-session": lambda f: JoinContainer(_container_id(f), True, f.ref),
    "leave-container": lambda f: LeaveContainer(_container_id(f), f.ref),
    "list-containers": lambda f: ListContainers(f.ref),
    "list-engines": lambda f: ListEngines(f.ref),
    "list-images": lambda f: ListImages(f.ref),
    "remove-container": lambda f: RemoveContainer(_container_id(f), f.ref),
    "execute-command": _parse_execute,
    "stdin-data": _parse_stdin,
    "stdin-close": lambda f: StdinClose(f.id("executionId"), f.ref),  # type: ignore[arg-type]
    "kill": _parse_kill,
    "ping": lambda f: Ping(f.ref),
    "configure-session": lambda f: ConfigureSession(f.bool("binaryOutput"), f.ref),
    "attach-execution": _parse_attach,
    "resize": _parse_resize,
    "list-executions": lambda f: ListExecutions(f.id("containerId", required=False), f.ref),
    "upload-files": lambda f: UploadFiles(_container_id(f), _files(f), f.str("workdir"), f.ref),
    "download-file": lambda f: DownloadFile(_container_id(f), f.str("path", required=True), f.ref),  # type: ignore[arg-type]
}

_PARSERS.update(FILE_PARSERS)  # upload-start/-chunk/-end, download-start

#: Every event a client may send.
CLIENT_EVENTS = tuple(_PARSERS)


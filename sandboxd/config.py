"""Daemon configuration: typed, frozen, loaded from TOML with every key checked.

The file format is documented key by key in ``config/sandboxd.toml``, which is also
the built-in default: a key missing from a user's file takes the value declared here.
Unknown keys and wrongly typed values are errors that name the key and the file, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as _toml


class ConfigError(Exception):
    """The configuration file is missing, unreadable, or says something invalid."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    #: Largest WebSocket message a client may send; larger ones close the connection (1009).
    max_message_bytes: int = 4 * 1024 * 1024
    #: How long a client has to finish its HTTP request head / WebSocket handshake.
    handshake_timeout_seconds: float = 10.0
    #: On SIGINT/SIGTERM, how long running executions may keep going before they are killed.
    shutdown_grace_seconds: float = 5.0
    #: Most WebSocket sessions at once; further handshakes get HTTP 503.
    max_sessions: int = 1000
    #: Every session is pinged this often (keeping proxies from dropping quiet
    #: connections); one that does not answer within the timeout is closed (0: off).
    ping_interval_seconds: float = 30.0
    ping_timeout_seconds: float = 30.0
    #: Browser origins (besides the daemon's own) whose pages may connect, e.g.
    #: "https://notebooks.example.com"; "*" allows any (not recommended).
    allowed_origins: tuple[str, ...] = ()
    #: Host names (besides IP addresses, localhost and ``host``) requests may be addressed
    #: to; others are refused against DNS rebinding. "*" allows any.
    allowed_hosts: tuple[str, ...] = ()
    #: Most header lines in a request head (more: HTTP 431).
    max_request_headers: int = 100
    #: Sessions (native WebSocket and Socket.IO) at once from one address (loopback not
    #: counted; 0: no cap) and for one authenticated user (0: no cap); more get HTTP 429
    #: at the handshake (Socket.IO: a ``RATE_LIMITED`` CONNECT error).
    max_sessions_per_ip: int = 64
    max_sessions_per_user: int = 32
    #: Requests one session may make per second, and in a burst (``RATE_LIMITED``
    #: beyond); stdin, resize and ping are not counted. 0: no limit.
    requests_per_second: float = 50.0
    request_burst: int = 200
    #: Failed authentications one address may make per minute; then it waits (HTTP 429
    #: with Retry-After) until the oldest is a minute old. 0: no limit.
    auth_failures_per_minute: int = 10
    #: A session that sends nothing for this long while following no execution is
    #: closed (1000, "idle timeout"). 0: never.
    idle_session_timeout_seconds: float = 600.0


@dataclass(frozen=True)
class DockerConfig:
    #: Engine address: "unix:///path" or "tcp://host:port". Empty: $DOCKER_HOST, else the
    #: local socket.
    url: str = ""
    #: Engine API version to speak, or "auto" to negotiate at start.
    api_version: str = "auto"
    #: Upper bound for every control-plane call (create, inspect, remove, exec create/inspect).
    call_timeout_seconds: float = 30.0
    #: Control-plane calls in flight at once (each holds a worker thread while it runs).
    max_concurrent_calls: int = 8
    #: How often the engine is pinged, and how long a ping may take. After two failed
    #: pings in a row running executions end (ENGINE_UNAVAILABLE) and requests fail fast
    #: until a ping succeeds again.
    health_check_interval_seconds: float = 1.0
    health_check_timeout_seconds: float = 2.0
    #: Label value that marks containers as this daemon's own; two daemons sharing an
    #: engine must use different values.
    instance: str = "default"


@dataclass(frozen=True)
class EngineConfig:
    """One Docker engine of several (``[[engines]]``); the ``[docker]`` section's timeouts,
    health checks and ``instance`` apply to every engine."""

    #: How the engine is named in placement, ``/healthz``, metrics and ``sandboxd engines``.
    name: str = ""
    #: Engine address: "unix:///path" or "tcp://host:port" (with TLS when tls_* are set).
    host: str = ""
    #: TLS for tcp:// engines (dockerd --tlsverify): CA bundle, client certificate and key.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    #: Most sandboxes placed on this engine (0: no cap besides its capacity).
    max_sandboxes: int = 0
    #: Labels placement constraints match (``placement: {labels: {...}}``).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: How far the limits of the sandboxes on this engine may exceed the memory and CPUs
    #: its ``/info`` reports (memory: 1.0 = never more than the host has; 0: no check).
    #: CPU limits are ceilings, not reservations, so they may be promised many times over.
    memory_overcommit: float = 1.0
    cpu_overcommit: float = 32.0

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_key)


@dataclass(frozen=True)
class SandboxConfig:
    default_image: str = "sandboxd/base"
    #: Images a sandbox may be created from; empty allows any local image.
    allowed_images: tuple[str, ...] = ()
    memory_bytes: int = 512 * 1024 * 1024
    cpus: float = 1.0
    pids_limit: int = 256
    #: Where an execution's ``workdir`` may be (symlinks resolved), besides the sandbox's
    #: work tree (the image's WORKDIR); ["/"] allows anywhere.
    allowed_workdirs: tuple[str, ...] = ("/tmp",)
    #: User to run as; empty means the image's own USER (sandboxd/base: "sandbox").
    user: str = ""
    #: Other users an execution may ask to run as (``exec -u``); empty: only ``user``.
    allowed_users: tuple[str, ...] = ()
    #: Mount the root filesystem read-only (writes go to the tmpfs mounts below).
    read_only_root: bool = True
    #: Size-limited tmpfs for /tmp, the working directory and the user's home (0: none).
    #: Their pages count against ``memory_bytes``. The workdir and home are covered only
    #: when empty in the image (a tmpfs would hide the image's files there).
    tmp_bytes: int = 64 * 1024 * 1024
    workdir_bytes: int = 256 * 1024 * 1024
    home_bytes: int = 64 * 1024 * 1024
    #: ``--storage-opt size=`` for the container's writable layer (0: not set). Only some
    #: storage drivers support it (overlay2 on xfs with pquota, btrfs, zfs).
    storage_bytes: int = 0
    #: Open files per process (RLIMIT_NOFILE, soft = hard; 0: the engine's default).
    nofile: int = 1024
    #: RLIMIT_NPROC (0: not set). It counts a uid's processes across every sandbox
    #: (they share uids), so ``pids_limit`` is the per-sandbox bound.
    nproc: int = 0
    #: PID 1 of every sandbox (under docker-init, which reaps orphans).
    keepalive_command: tuple[str, ...] = ("sleep", "2147483647")
    #: Most sandboxes this daemon keeps at once, and per user.
    max_sandboxes: int = 100
    max_sandboxes_per_user: int = 20
    #: A sandbox with no execution for this long is removed (0: never). A create request
    #: may ask for less.
    idle_ttl_seconds: float = 86400.0
    #: How often idle sandboxes are looked for.
    reap_interval_seconds: float = 10.0


@dataclass(frozen=True)
class LimitsConfig:
    #: Timeout for an execution that asks for none.
    exec_timeout_seconds: float = 600.0
    #: Longest timeout a request may ask for.
    max_exec_timeout_seconds: float = 3600.0
    #: Output (stdout + stderr) after which an execution is stopped and marked truncated.
    max_output_bytes: int = 1024 * 1024 * 1024
    #: Executions running at once in one sandbox.
    max_executions_per_sandbox: int = 16
    #: Executions running at once in the whole daemon.
    max_executions: int = 256
    #: After SIGTERM, how long a command has before SIGKILL.
    kill_grace_seconds: float = 2.0
    #: A terminal (``tty``) execution that nobody follows (its starter gone, no session
    #: joined to its sandbox or attached to it) is stopped after this long (0: never).
    detached_tty_grace_seconds: float = 60.0
    #: Largest file ``upload-files`` accepts, and largest total per request (a request must
    #: also fit in ``server.max_message_bytes``, base64 and JSON included).
    upload_max_file_bytes: int = 16 * 1024 * 1024
    upload_max_request_bytes: int = 16 * 1024 * 1024
    #: Largest file ``download-file`` returns.
    download_max_bytes: int = 16 * 1024 * 1024
    #: When a non-TTY execution's main process exits, end (SIGKILL) the processes it left
    #: behind that still carry its marker (``nohup cmd &``). TTY executions are left alone.
    kill_leftovers_on_exit: bool = True
    #: Most files (archive entries) in one upload.
    upload_max_entries: int = 4096
    #: Largest streamed upload or download (chunked messages, REST, ``sandboxd cp``).
    transfer_max_bytes: int = 1024 * 1024 * 1024
    #: Finished executions remembered for status queries.
    finished_executions_kept: int = 1000
    #: Bytes of an execution's command line and environment together; larger requests
    #: are refused (BAD_REQUEST) before anything runs. Each argument or env entry is also
    #: capped at 128 KiB, as the kernel does.
    max_command_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class StoreConfig:
    #: Where execution records and output logs are kept. Empty: /var/lib/sandboxd when
    #: running as root, else ~/.local/state/sandboxd.
    dir: str = ""
    #: Finished executions (records and logs) older than this are deleted.
    retention_seconds: float = 7 * 86400.0
    #: Past this many bytes of logs, the oldest finished executions are deleted.
    max_total_bytes: int = 10 * 1024 * 1024 * 1024

    def path(self) -> Path:
        if self.dir:
            return Path(self.dir).expanduser()
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            return Path("/var/lib/sandboxd")
        return Path.home() / ".local" / "state" / "sandboxd"


@dataclass(frozen=True)
class ApiConfig:
    """The REST API (``/api/sandbox/...``); JSON bodies are capped by ``server.max_message_bytes``."""

    #: A JSON request body must arrive within this; a streamed file body may take longer
    #: but never this long without a byte.
    body_timeout_seconds: float = 30.0
    #: ``POST /api/sandbox/exec`` (waiting) returns at most this much of each stream.
    max_exec_output_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class PluginsConfig:
    #: Plugins to enable, by entry-point name; "*" enables every installed plugin.
    enabled: tuple[str, ...] = ()
    #: Plugins to keep off even if ``enabled`` names them (or "*").
    disabled: tuple[str, ...] = ()
    #: Deadline of each (async) hook call; one that misses it fails closed (PLUGIN_ERROR).
    hook_timeout_seconds: float = 5.0
    #: The same for ``execution_finished``, which does follow-up work (a git commit).
    finished_hook_timeout_seconds: float = 60.0
    #: How often plugins re-read outside state such as token_auth's ``tokens_file``
    #: (``sandboxd_reload``); SIGHUP does it at once. 0: only on SIGHUP.
    reload_interval_seconds: float = 2.0
    #: ``[plugins.NAME]`` tables, given to each plugin as it loads; checked by the plugin.
    settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class SocketIOConfig:
    """Engine.IO settings of the Socket.IO endpoint (``/socket.io/``, ``/sandbox/ws/``)."""

    #: The server pings every client this often; one that does not answer within the
    #: timeout is disconnected (the reference server's defaults).
    ping_interval_seconds: float = 25.0
    ping_timeout_seconds: float = 20.0
    #: Largest message (or polling request body) a client may send.
    max_payload_bytes: int = 1_000_000


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    socketio: SocketIOConfig = field(default_factory=SocketIOConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    #: Several engines (``[[engines]]``); empty: the one ``[docker]`` names.
    engines: tuple[EngineConfig, ...] = ()
    #: Where the configuration came from, for messages; None for built-in defaults.
    source: str | None = None

    def replace(self, section: str, **changes: object) -> Config:
        """A copy with some keys of one section changed (for CLI flags and tests)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)}
        )


#: Where a config is looked for when none is named, first match wins.
def search_path() -> list[Path]:
    paths = []
    if env := os.environ.get("SANDBOXD_CONFIG"):
        paths.append(Path(env))
    paths += [
        Path("sandboxd.toml"),
        Path.home() / ".config" / "sandboxd" / "config.toml",
        Path("/etc/sandboxd/config.toml"),
    ]
    return paths


def find_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Load ``explicit``, else the first file on :func:`search_path`, else defaults."""
    if explicit is not None:
        return load_config(explicit)
    env = os.environ.get("SANDBOXD_CONFIG")
    for path in search_path():
        if path.is_file() or (env and str(path) == env):
            return load_config(path)
    return Config()


def load_config(path: str | os.PathLike[str]) -> Config:
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = _toml.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, object], *, source: str = "<config>") -> Config:
    """Build a :class:`Config` from parsed TOML, checking every key and type."""
    sections: dict[str, object] = {}
    hints = typing.get_type_hints(Config)
    for name, value in raw.items():
        if name not in hints or name == "source":
            raise ConfigError(f"{source}: unknown section [{name}]")
        if name == "engines":
            sections[name] = _build_engines(value, f"{source}: [[engines]]")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        if name == "plugins":
            sections[name] = _build_plugins(value, f"{source}: [plugins]")
        else:
            sections[name] = _build(hints[name], value, f"{source}: [{name}]")
    return Config(**sections, source=source)  # type: ignore[arg-type]


def _build_engines(values: object, where: str) -> tuple[EngineConfig, ...]:
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise ConfigError(f"{where}: expected an array of tables ([[engines]])")
    engines = []
    for i, table in enumerate(values):
        labels = table.pop("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ConfigError(f"{where} #{i + 1} labels: expected a table of strings")
        engine = _build(EngineConfig, table, f"{where} #{i + 1}")
        engine = dataclasses.replace(engine, labels=dict(labels))  # type: ignore[type-var]
        if not engine.name or not engine.host:
            raise ConfigError(f"{where} #{i + 1}: every engine needs a name and a host")
        if engine.tls and not (engine.tls_ca and engine.tls_cert and engine.tls_key):
            raise ConfigError(f"{where} {engine.name}: TLS needs tls_ca, tls_cert and tls_key")
        engines.append(engine)
    names = [e.name for e in engines]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: engine names must be unique")
    return tuple(engines)


def _build_plugins(values: dict[str, object], where: str) -> PluginsConfig:
    own = ("enabled", "disabled", "hook_timeout_seconds", "finished_hook_timeout_seconds", "reload_interval_seconds")
    lists = {k: v for k, v in values.items() if k in own}
    settings = {k: v for k, v in values.items() if k not in lists}
    for name, table in settings.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where} {name}: expected a [plugins.{name}] table of plugin settings")
    built = _build(PluginsConfig, lists, where)
    return dataclasses.replace(built, settings=settings)  # type: ignore[type-var]


def _build(cls: type, values: dict[str, object], where: str) -> object:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {key!r}")
        kwargs[key] = _coerce(hints[key], value, f"{where} {key}")
    return cls(**kwargs)


def _coerce(hint: object, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(item, v, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):  # type: ignore[arg-type]
        raise ConfigError(
            f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: must not be negative")
    return value

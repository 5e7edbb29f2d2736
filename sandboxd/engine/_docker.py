"""The control plane: docker-py calls in worker threads, bounded and timed.

Every call runs in a worker thread under one :class:`trio.CapacityLimiter` (so a slow
engine cannot take every thread) and under a deadline (so a hung engine cannot hang a
session). docker-py and requests exceptions are translated here, at the boundary, into
:mod:`sandboxd.errors`.

Cancellation: a cancelled call abandons its worker thread, which finishes (or times
out, requests' own ``timeout``) on its own; the caller is never kept waiting.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence, TypeVar

import docker
import docker.errors
import requests.exceptions
import trio

from ..config import DockerConfig, EngineConfig
from ..errors import DockerError, EngineUnavailable, NotFound, SandboxdError, SandboxStopped
from ..plugin_types import RunResult, SandboxOptions
from ._cgroup import SandboxCgroup
from ._demux import STDERR, STDOUT, FrameParser
from ._images import ImageProbing
from ._labels import LABEL_INSTANCE as LABEL_INSTANCE
from ._labels import LABEL_MANAGED as LABEL_MANAGED
from ._labels import LABEL_PROBE as LABEL_PROBE
from ._stream import client_ssl_context, connect_engine, default_engine_url, open_exec_stream

log = logging.getLogger(__name__)

T = TypeVar("T")


#: Environment variable set on every execution so its process tree can be found again:
#: Docker has no API to signal an exec (moby #35703).
EXEC_MARKER = "SANDBOXD_EXECUTION"

# POSIX sh, run inside the sandbox as the execution's user: signal every process that
# carries the execution's marker, and the process group each leads (docker exec makes
# the command a session and group leader, so children that clear their environment
# are still reached).
_KILL_SCRIPT = r"""
sig=$1; mark=$2; n=0
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  if tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qxF "$mark"; then
    kill -s "$sig" -- "-$p" 2>/dev/null; kill -s "$sig" "$p" 2>/dev/null && n=$((n+1))
  fi
done
echo "$n"
"""


class DockerEngine(ImageProbing):
    """What sandboxd needs of the Docker Engine API, as trio-friendly methods."""

    def __init__(
        self, config: DockerConfig, *, on_error: Callable[[str], None] | None = None, url: str | None = None,
        name: str = "local", tls: EngineConfig | None = None,
    ) -> None:
        self.config = config
        #: How placement, ``/healthz`` and metrics name this engine.
        self.name = name
        self.url = url or config.url or default_engine_url()
        #: TLS settings of a ``tcp://`` engine (``tls_ca``/``tls_cert``/``tls_key``), or None.
        self.tls = tls
        self._ssl = client_ssl_context(tls.tls_ca, tls.tls_cert, tls.tls_key) if tls is not None else None
        self._limiter = trio.CapacityLimiter(config.max_concurrent_calls)
        self._client: docker.APIClient | None = None
        self._client_lock = trio.Lock()
        self.api_version = config.api_version if config.api_version != "auto" else "1.41"
        #: False while health checks fail: calls then fail fast instead of hanging.
        self.available = True
        #: Called with the operation's name whenever a call fails (for metrics).
        self.on_error: Callable[[str], None] = on_error or (lambda op: None)
        #: Sandboxes' cgroups as the host sees them (None: not reachable from here).
        self._cgroups: OrderedDict[str, SandboxCgroup | None] = OrderedDict()

    def check_available(self, op: str) -> None:
        if not self.available:
            raise EngineUnavailable(f"{op}: the Docker engine is not answering")

    async def ping(self, timeout: float) -> bool:
        """Whether the engine answers ``GET /_ping`` within ``timeout`` (no thread used)."""
        with trio.move_on_after(timeout):
            try:
                stream = await connect_engine(self.url, self._ssl)
                async with stream:
                    await stream.send_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                    head = await stream.receive_some(1024)
                return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
            except (SandboxdError, OSError, trio.BrokenResourceError):
                return False
        return False

    # --- plumbing ---------------------------------------------------------------

    async def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.check_available(op)
        timeout = self.config.call_timeout_seconds
        client = await self._get_client()
        call = functools.partial(getattr(client, fn) if isinstance(fn, str) else fn, *args, **kwargs)
        with trio.move_on_after(timeout) as scope:
            try:
                return await trio.to_thread.run_sync(call, limiter=self._limiter, abandon_on_cancel=True)
            except docker.errors.NotFound as exc:  # an answer, not a failure
                raise NotFound(_explain(exc)) from None
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                self.on_error(op)
                raise _translate(op, exc) from None
        self.on_error(op)
        assert scope.cancelled_caught
        raise EngineUnavailable(f"{op}: no answer from the Docker engine within {timeout:g} s")

    async def _get_client(self) -> docker.APIClient:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            return await self._make_client()

    async def _make_client(self) -> docker.APIClient:
        if self._client is None:
            version = None if self.config.api_version == "auto" else self.config.api_version
            tls = None
            if self.tls is not None:
                tls = docker.tls.TLSConfig(client_cert=(self.tls.tls_cert, self.tls.tls_key),
                                           ca_cert=self.tls.tls_ca, verify=True)
            make = functools.partial(
                docker.APIClient,
                base_url=self.url,
                tls=tls or False,
                version=version or "1.41",
                timeout=self.config.call_timeout_seconds,
                max_pool_size=self.config.max_concurrent_calls + 2,
            )
            client = await trio.to_thread.run_sync(make)
            if tls is not None:
                # requests would otherwise verify against $REQUESTS_CA_BUNDLE instead of the
                # engine's CA (psf/requests#3829); an engine is never reached through a proxy.
                client.trust_env = False
            if version is None:
                # Negotiate the newest API both sides speak; fall back to the minimum we
                # need if the engine is down now (it may come up later).
                try:
                    with trio.fail_after(self.config.call_timeout_seconds):
                        info = await trio.to_thread.run_sync(
                            client.version, False, abandon_on_cancel=True
                        )
                    client._version = self.api_version = _min_version(
                        info.get("ApiVersion", "1.41"), docker.constants.DEFAULT_DOCKER_API_VERSION
                    )
                except (trio.TooSlowError, requests.exceptions.RequestException, docker.errors.DockerException):
                    log.warning("Docker engine at %s not reachable yet; assuming API 1.41", self.url)
                    self._client = client
                    return client
            self._client = client
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- engine -------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        return await self._call("version", "version", False)

    async def info(self) -> dict[str, Any]:
        """``GET /info``: the engine's size (``MemTotal``, ``NCPU``) among much else."""
        return await self._call("info", "info")

    async def list_images(self) -> list[str]:
        """The tags of the images this engine has."""
        images = await self._call("image list", "images")
        return sorted({tag for image in images for tag in (image.get("RepoTags") or []) if tag != "<none>:<none>"})

    # --- containers ---------------------------------------------------------

    async def create_sandbox(
        self, options: SandboxOptions, *, command: Sequence[str], user: str | None, labels: Mapping[str, str],
        tmpfs: Mapping[str, str] | None = None, ulimits: Sequence[Mapping[str, Any]] = (),
        storage_bytes: int = 0,
    ) -> str:
        """Create and start a locked-down container; return its full id.

        Whatever ``options`` say, the container gets no network, no capabilities,
        no-new-privileges and docker-init as PID 1. ``tmpfs`` maps mount points to tmpfs
        options; ``storage_bytes`` (0: none) becomes ``--storage-opt size=``, which only
        some storage drivers support (the engine refuses the create otherwise).
        """
        client = await self._get_client()
        host_config = client.create_host_config(
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=options.pids_limit,
            mem_limit=options.memory_bytes,
            memswap_limit=options.memory_bytes,
            nano_cpus=int(options.cpus * 1e9),
            init=True,
            read_only=options.read_only_root,
            tmpfs=dict(tmpfs or {}) or None,
            ulimits=[docker.types.Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in ulimits] or None,
            storage_opt={"size": str(storage_bytes)} if storage_bytes else None,
        )
        created = await self._call(
            "container create",
            "create_container",
            options.image,
            command=list(command),
            user=user or None,
            labels={**options.labels, **labels, LABEL_MANAGED: "true", LABEL_INSTANCE: self.config.instance},
            host_config=host_config,
            network_disabled=True,
        )
        cid = created["Id"]
        try:
            await self._call("container start", "start", cid)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.remove_container(cid)
            raise
        return cid

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        return await self._call("container inspect", "inspect_container", container_id)

    async def list_sandboxes(self) -> list[dict[str, Any]]:
        return await self._call(
            "container list",
            "containers",
            all=True,
            filters={"label": [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self.config.instance}"]},
        )

    async def remove_container(self, container_id: str) -> None:
        self._cgroups.pop(container_id, None)
        try:
            await self._call("container remove", "remove_container", container_id, force=True)
        except NotFound:
            pass

    def is_ours(self, container: Mapping[str, Any]) -> bool:
        labels = (container.get("Config") or {}).get("Labels") or container.get("Labels") or {}
        return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_INSTANCE) == self.config.instance

    # --- execs --------------------------------------------------------------

    async def exec_create(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> str:
        try:
            created = await self._call(
                "exec create",
                "exec_create",
                container_id,
                list(command),
                stdout=True,
                stderr=True,
                stdin=stdin,
                tty=tty,
                environment=dict(env or {}),
                workdir=workdir or None,
                user=user or "",
            )
        except DockerError as exc:
            if type(exc) is DockerError and "is not running" in exc.message:
                raise SandboxStopped(
                    "the sandbox is not running (stopped or killed outside sandboxd); remove it and create another"
                ) from None
            raise
        return created["Id"]

    async def exec_resize(self, exec_id: str, cols: int, rows: int) -> None:
        await self._call("exec resize", "exec_resize", exec_id, height=rows, width=cols)

    async def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return await self._call("exec inspect", "exec_inspect", exec_id)

    def open_exec_stream(self, exec_id: str, *, tty: bool = False):  # type: ignore[no-untyped-def]
        self.check_available("exec start")
        return open_exec_stream(
            self.url, self.api_version, exec_id, tty=tty, timeout=self.config.call_timeout_seconds,
            ssl_context=self._ssl,
        )

    async def run_to_end(
        self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, max_output: int = 1 << 20,
    ) -> RunResult:
        """Run a short helper command (no stdin) and collect its output and exit code.

        Bounded by the call timeout; each stream keeps at most ``max_output`` bytes.
        """
        exec_id = await self.exec_create(container_id, command, env=env, workdir=workdir, user=user)
        parser = FrameParser()
        out = {STDOUT: bytearray(), STDERR: bytearray()}
        with trio.move_on_after(self.config.call_timeout_seconds):
            async with self.open_exec_stream(exec_id) as stream:
                while data := await stream.receive_some():
                    for sid, payload in parser.feed(data):
                        if sid in out and len(out[sid]) < max_output:
                            out[sid] += payload
        info = await self.exec_inspect(exec_id)
        code = None if info.get("Running") else info.get("ExitCode")
        return RunResult(code, bytes(out[STDOUT]), bytes(out[STDERR]))

    async def signal_execution(
        self, container_id: str, marker: str, signal: str, *, user: str | None = None
    ) -> int | None:
        """Send ``signal`` to every process of an execution; return how many were found,
        or None if they could not be reached.

        From the host when the sandbox's cgroup is visible here (nothing is started in
        the sandbox, so this works when its pids limit is used up), else with a helper
        started inside the sandbox.
        """
        if (cgroup := await self._cgroup(container_id)) is not None:
            found = await trio.to_thread.run_sync(cgroup.signal_marked, marker, signal, limiter=self._limiter)
            if found is not None:
                return found
        result = await self.run_to_end(
            container_id, ["/bin/sh", "-c", _KILL_SCRIPT, "sandboxd-kill", signal, marker], user=user
        )
        return int(result.stdout) if result.exit_code == 0 and result.stdout.strip().isdigit() else None

    async def oom_kills(self, container_id: str) -> int | None:
        """Processes the OOM killer ended in the sandbox so far (None: cannot tell)."""
        cgroup = await self._cgroup(container_id)
        return cgroup.oom_kills() if cgroup is not None else None

    async def _cgroup(self, container_id: str) -> SandboxCgroup | None:
        if container_id in self._cgroups:
            return self._cgroups[container_id]
        try:
            info = await self.inspect_container(container_id)
        except SandboxdError:
            return None
        pid = (info.get("State") or {}).get("Pid") or 0
        found = SandboxCgroup.find(info.get("Id", container_id), pid) if pid else None
        self._cgroups[container_id] = found
        while len(self._cgroups) > 4096:
            self._cgroups.popitem(last=False)
        return found


def _translate(op: str, exc: BaseException) -> SandboxdError:
    """A docker-py or requests failure, as one of our errors."""
    if isinstance(exc, docker.errors.APIError):
        return DockerError(_explain(exc), op=op)
    if isinstance(exc, requests.exceptions.Timeout):
        return EngineUnavailable(f"{op}: the Docker engine did not answer")
    if isinstance(exc, (requests.exceptions.ConnectionError, OSError)):
        return EngineUnavailable(f"{op}: the Docker engine is unreachable")
    return DockerError(str(exc), op=op)


def _explain(exc: docker.errors.APIError) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or exc)


def _min_version(a: str, b: str) -> str:
    key = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    return min(a, b, key=key)

"""Use cases on sandboxes: create, find, inspect, remove, join, and move files.

Every id a client names goes through :meth:`SandboxOperations.open_sandbox`, the one
authorization path: resolve (someone else's container looks unknown), then ask the
plugins whether this principal may do this action on it.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator

from .. import files
from ..errors import BadRequest, LimitExceeded, NotFound
from ..plugin_types import Placement, Principal
from .engines import EngineOperations

if TYPE_CHECKING:
    from ..execution import Execution
    from ..protocol import CreateContainer
    from ..sandboxes import Sandbox
    from .watchers import Watcher


@dataclass(frozen=True)
class SandboxDetails:
    """What ``inspect`` tells about a sandbox."""

    sandbox: Sandbox
    running: list[str]
    idle_seconds: float


def _within(name: str, asked: float | None, cap: float, setting: str) -> Any:
    """``asked`` (none: ``cap``), refused rather than lowered when above ``cap``."""
    if not asked:
        return cap
    if asked > cap:
        raise LimitExceeded(f"{name} {_show(asked)} is above this daemon's limit of {_show(cap)} ({setting})")
    return asked


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class SandboxOperations(EngineOperations):
    async def open_sandbox(self, principal: Principal, container_id: str, action: str) -> Sandbox:
        """The sandbox ``container_id`` names, if ``principal`` may ``action`` it.

        Raises:
            NotFound: unknown, not ours, or hidden from this principal by policy.
            Forbidden: policy refuses.
        """
        sandbox = await self.sandboxes.resolve(container_id)
        await self.plugins.authorize(principal, action, sandbox.info(), asked_as=container_id)
        return sandbox

    async def create_sandbox(
        self, principal: Principal, image: str | None, *, ephemeral: bool = False,
        request: CreateContainer | None = None,
    ) -> Sandbox:
        """Create a sandbox for ``principal``; ``request`` may ask for labels, lower limits
        and a shorter TTL, never for more than config and policy allow.

        Raises:
            LimitExceeded: ``request`` asks for more than a configured limit.
        """
        await self.plugins.authorize(principal, "create", None)
        options = self.sandboxes.default_options(image)
        if request is not None:
            options = options.replace(
                labels=dict(request.labels),
                memory_bytes=_within("memoryBytes", request.memory_bytes, options.memory_bytes, "sandbox.memory_bytes"),
                cpus=_within("cpus", request.cpus, options.cpus, "sandbox.cpus"),
                pids_limit=_within("pidsLimit", request.pids_limit, options.pids_limit, "sandbox.pids_limit"),
            )
        options = await self.plugins.sandbox_options(principal, options, self.config.sandbox)
        want = request.placement if request is not None else Placement()
        names = await self.place(principal, options, want)
        missing: NotFound | None = None
        for name in names:
            self.placing(name, +1)
            try:
                return await self.sandboxes.create(
                    options, owner=principal.user, ephemeral=ephemeral,
                    ttl_seconds=request.ttl_seconds if request is not None else None,
                    engine=name if self.engine_label(name) else None,
                )
            except NotFound as exc:  # no such image there: the next engine may have it
                missing = exc
            finally:
                self.placing(name, -1)
        assert missing is not None
        if len(names) > 1:
            raise NotFound(f"no such image on any engine that could take the sandbox: {options.image}")
        raise missing

    async def list_sandboxes(self, principal: Principal) -> list[Sandbox]:
        """The sandboxes ``principal`` may see."""
        return [s for s in self.sandboxes.list() if await self.plugins.allowed(principal, "view", s.info())]

    async def inspect_sandbox(self, principal: Principal, container_id: str) -> SandboxDetails:
        sandbox = await self.open_sandbox(principal, container_id, "view")
        running = [ex.id for ex in self.executions.running_in(sandbox.id)]
        idle = 0.0 if running else time.monotonic() - sandbox.last_active
        return SandboxDetails(sandbox, running, round(idle, 3))

    async def remove_sandbox(self, principal: Principal, container_id: str) -> Sandbox:
        """Stop what runs in the sandbox and remove it."""
        sandbox = await self.open_sandbox(principal, container_id, "remove")
        for ex in self.executions.running_in(sandbox.id):
            ex.request_stop("the sandbox was removed")
        await self.sandboxes.remove(sandbox)
        return sandbox

    async def join_sandbox(self, watcher: Watcher, container_id: str) -> tuple[Sandbox, list[Execution]]:
        """``watcher`` follows the sandbox from now on: executions started there later are
        announced to its inbox. Returns the sandbox and what runs in it now, for the
        caller to follow after it answered the join."""
        sandbox = await self.open_sandbox(watcher.principal, container_id, "join")
        watcher.joined.add(sandbox.id)
        return sandbox, self.executions.running_in(sandbox.id)

    async def leave_sandbox(self, watcher: Watcher, container_id: str) -> tuple[Sandbox, list[str]]:
        """Stop following a joined sandbox; returns it and the ids of its running
        executions (the caller stops following those)."""
        sandbox = await self.sandboxes.resolve(container_id)
        if sandbox.id not in watcher.joined:
            raise NotFound.sandbox(container_id)
        watcher.joined.discard(sandbox.id)
        return sandbox, [ex.id for ex in self.executions.running_in(sandbox.id)]

    async def upload(
        self, principal: Principal, container_id: str, spec: Any, workdir: str | None
    ) -> tuple[Sandbox, list[str]]:
        """Write files (``upload-files``' ``files`` object) into the sandbox; returns it
        and the absolute paths written."""
        sandbox = await self.open_sandbox(principal, container_id, "upload")
        return sandbox, await self._upload(sandbox, spec, workdir)

    async def download(self, principal: Principal, container_id: str, path: str) -> tuple[Sandbox, bytes]:
        """The bytes of one file in the sandbox, read as the sandbox user."""
        sandbox = await self.open_sandbox(principal, container_id, "download")
        content = await files.download(self.engine, sandbox, path, user=self.config.sandbox.user or None,
                                       max_bytes=self.config.limits.download_max_bytes)
        return sandbox, content

    async def upload_stream(
        self, principal: Principal, container_id: str, path: str, body: AsyncIterable[bytes], **options: Any
    ) -> tuple[Sandbox, str]:
        """Stream a file's bytes or a tar (``archive=True``) to ``path``; returns the sandbox
        and the absolute path written. ``options`` as :func:`sandboxd.files.upload_stream`
        (``workdir``, ``archive``, ``size``, ``mode``, ``mtime``, ``nest``)."""
        sandbox = await self.open_sandbox(principal, container_id, "upload")
        written = await files.upload_stream(self.engine, sandbox, path, body, user=self.config.sandbox.user or None,
                                            limits=self.config.limits, **options)
        return sandbox, written

    @asynccontextmanager
    async def open_download(self, principal: Principal, container_id: str, path: str) -> AsyncIterator[files.Download]:
        """Start reading ``path`` in the sandbox as its user (see :func:`sandboxd.files.open_download`)."""
        sandbox = await self.open_sandbox(principal, container_id, "download")
        async with files.open_download(self.engine, sandbox, path, user=self.config.sandbox.user or None,
                                       max_bytes=self.config.limits.transfer_max_bytes) as got:
            yield got

    async def _upload(self, sandbox: Sandbox, spec: Any, workdir: str | None) -> list[str]:
        workdir = workdir or await files.workdir_of(self.engine, sandbox)
        if not workdir.startswith("/"):
            raise BadRequest("upload-files: workdir must be an absolute path")
        parsed = files.parse_files(spec, workdir, self.config.limits)
        return await files.upload_files(self.engine, sandbox, parsed, workdir=workdir,
                                        user=self.config.sandbox.user or None)

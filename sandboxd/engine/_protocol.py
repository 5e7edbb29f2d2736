"""What the daemon asks of a container engine, as a protocol.

:class:`~sandboxd.engine.DockerEngine` implements it against the Docker Engine API;
in-process tests implement it in memory (``tests/unit/fake_engine.py``), so sessions,
operations and executions can be driven without Docker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncContextManager, Awaitable, Callable, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from ..config import DockerConfig
    from ..plugin_types import RunResult, SandboxOptions
    from ._stream import ExecStream


class Engine(Protocol):
    config: DockerConfig
    #: False while health checks fail: calls then fail fast instead of hanging.
    available: bool
    #: Called with the operation's name whenever a call fails (for metrics).
    on_error: Callable[[str], None]

    def check_available(self, op: str) -> None:
        """Raise ``EngineUnavailable`` while the engine does not answer."""

    async def ping(self, timeout: float) -> bool: ...
    async def version(self) -> dict[str, Any]: ...
    async def info(self) -> dict[str, Any]: ...
    async def list_images(self) -> list[str]: ...
    async def aclose(self) -> None: ...

    async def create_sandbox(
        self, options: SandboxOptions, *, command: Sequence[str], user: str | None, labels: Mapping[str, str],
        tmpfs: Mapping[str, str] | None = None, ulimits: Sequence[Mapping[str, Any]] = (),
        storage_bytes: int = 0,
    ) -> str:
        """Create and start a locked-down container; return its full id."""

    async def inspect_image(self, image: str) -> dict[str, Any]: ...

    def open_image_probe(self, image: str) -> AsyncContextManager[Callable[[str, int], Awaitable[bytes | None]]]:
        """A never-started container of ``image``: ``read(path, limit)`` gives a tar of ``path``."""

    async def inspect_container(self, container_id: str) -> dict[str, Any]: ...
    async def list_sandboxes(self) -> list[dict[str, Any]]: ...
    async def remove_container(self, container_id: str) -> None: ...

    def is_ours(self, container: Mapping[str, Any]) -> bool:
        """Whether a container (inspect or list form) carries this daemon's labels."""

    async def exec_create(
        self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, stdin: bool = False, tty: bool = False,
    ) -> str: ...

    async def exec_resize(self, exec_id: str, cols: int, rows: int) -> None: ...
    async def exec_inspect(self, exec_id: str) -> dict[str, Any]: ...

    def open_exec_stream(self, exec_id: str, *, tty: bool = False) -> AsyncContextManager[ExecStream]:
        """Start the exec; its output (and stdin) as a stream."""

    async def run_to_end(
        self, container_id: str, command: Sequence[str], *, env: Mapping[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, max_output: int = 1 << 20,
    ) -> RunResult:
        """Run a short helper command and collect its output and exit code."""

    async def signal_execution(
        self, container_id: str, marker: str, signal: str, *, user: str | None = None
    ) -> int | None:
        """Send ``signal`` to every process carrying ``marker``; return how many (None:
        they could not be reached)."""

    async def oom_kills(self, container_id: str) -> int | None:
        """How many processes the OOM killer ended in the sandbox so far (None: unknown)."""

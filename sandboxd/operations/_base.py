"""What every use case needs: the daemon's parts, given once at construction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..config import Config
from ..plugin_types import RunResult
from ..plugins import Plugins

if TYPE_CHECKING:
    from ..engine import Engine
    from ..executions import ExecutionManager
    from ..logstore import ExecutionRecords
    from ..sandboxes import SandboxRegistry
    from .watchers import Watchers


class OperationsBase:
    """The parts below the operations layer; front ends never reach past this class."""

    def __init__(
        self,
        *,
        config: Config,
        engine: Engine,
        plugins: Plugins,
        sandboxes: SandboxRegistry,
        executions: ExecutionManager,
        records: ExecutionRecords,
        watchers: Watchers,
    ) -> None:
        self.config = config
        self.engine = engine
        self.plugins = plugins
        self.sandboxes = sandboxes
        self.executions = executions
        self.records = records
        self.watchers = watchers

    async def run_quietly(
        self, container_id: str, command: Sequence[str], *, env: dict[str, str] | None = None,
        workdir: str | None = None, user: str | None = None, max_output: int = 1 << 20,
    ) -> RunResult:
        """Run a short command in a sandbox and collect its output (for plugins and files)."""
        return await self.engine.run_to_end(container_id, command, env=env, workdir=workdir, user=user,
                                            max_output=max_output)

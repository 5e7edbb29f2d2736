"""The sandboxd Python SDK: run code in sandboxes from sync code, asyncio or trio.

::

    from sandboxd import Sandbox

    with Sandbox.create(url="http://127.0.0.1:8765", image="sandboxd/base") as sbx:
        r = sbx.run(["python3", "-c", "print(6 * 7)"], timeout=10)
        print(r.exit_code, r.stdout)

See docs/sdk.md. Names are imported on first use, so importing :mod:`sandboxd` (as
``sandboxd serve`` does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Client": "_sync", "Sandbox": "_sync", "Execution": "_sync", "Files": "_files",
    "AsyncClient": "_async", "AsyncSandbox": "_async", "AsyncExecution": "_async", "AsyncFiles": "_files",
    "ExecutionResult": "_types", "ExecutionInfo": "_types", "FileInfo": "_types", "OutputChunk": "_types", "SandboxInfo": "_types",
    "DaemonUnavailable": "_errors", "AuthenticationFailed": "_errors",
}
__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from ._async import AsyncClient as AsyncClient
    from ._async import AsyncExecution as AsyncExecution
    from ._async import AsyncSandbox as AsyncSandbox
    from ._errors import AuthenticationFailed as AuthenticationFailed
    from ._errors import DaemonUnavailable as DaemonUnavailable
    from ._files import AsyncFiles as AsyncFiles
    from ._files import Files as Files
    from ._sync import Client as Client
    from ._sync import Execution as Execution
    from ._sync import Sandbox as Sandbox
    from ._types import ExecutionInfo as ExecutionInfo
    from ._types import ExecutionResult as ExecutionResult
    from ._types import FileInfo as FileInfo
    from ._types import OutputChunk as OutputChunk
    from ._types import SandboxInfo as SandboxInfo


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

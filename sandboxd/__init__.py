"""sandboxd: run untrusted code in Docker sandboxes and watch it run, live.

This module is the public API for plugin authors (see docs/plugins.md) and, imported
on first use, the SDK's entry points (see docs/sdk.md): ``Sandbox``, ``AsyncSandbox``,
``Client``, ``AsyncClient``, ``ExecutionResult``.
"""

__version__ = "0.1.0"

from .config import ConfigError as ConfigError
from .errors import CommandRejected as CommandRejected
from .errors import Forbidden as Forbidden
from .errors import NotFound as NotFound
from .errors import SandboxdError as SandboxdError
from .hookspecs import hookimpl as hookimpl
from .plugin_types import ANONYMOUS as ANONYMOUS
from .plugin_types import Deny as Deny
from .plugin_types import ExecutionInfo as ExecutionInfo
from .plugin_types import ExecutionLimits as ExecutionLimits
from .plugin_types import HTTPRequest as HTTPRequest
from .plugin_types import Principal as Principal
from .plugin_types import Refusal as Refusal
from .plugin_types import RunResult as RunResult
from .plugin_types import SandboxInfo as SandboxInfo
from .plugin_types import SandboxOptions as SandboxOptions

#: The SDK's entry points, loaded on first use so that ``sandboxd serve`` never imports the SDK.
_SDK = ("AsyncClient", "AsyncSandbox", "Client", "ExecutionResult", "Sandbox")


def __getattr__(name: str) -> object:
    if name in _SDK:
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'sandboxd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SDK))

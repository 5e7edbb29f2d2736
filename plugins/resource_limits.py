"""resource_limits: per-role sandbox and execution limits.

Settings: limits per role, and a default for principals with none of the listed
roles. A principal with several listed roles gets the tightest value of each. Nothing
here can loosen the daemon's config; it can only tighten it::

    [plugins.resource_limits.default]
    memory_bytes = 268435456
    timeout_seconds = 60

    [plugins.resource_limits.roles.trusted]
    memory_bytes = 2147483648
    cpus = 2.0
    pids_limit = 1024
    timeout_seconds = 3600
    max_output_bytes = 1073741824
    max_concurrent = 8
"""

from __future__ import annotations

from typing import Any, Mapping

from sandboxd import hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys

_SANDBOX_KEYS = {"memory_bytes": int, "cpus": float, "pids_limit": int}
_EXEC_KEYS = {"timeout_seconds": float, "max_output_bytes": int, "max_concurrent": int}


def _limits(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    check_keys(table, set(_SANDBOX_KEYS) | set(_EXEC_KEYS), f"{where} ")
    out = {}
    for key, value in table.items():
        kind = {**_SANDBOX_KEYS, **_EXEC_KEYS}[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise ConfigError(f"{where} {key}: expected {kind.__name__}")
        if value <= 0:
            raise ConfigError(f"{where} {key}: must be positive")
        out[key] = value
    return out


class ResourceLimits:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"default", "roles"})
        self.default = _limits(settings.get("default", {}), "default")
        roles = settings.get("roles", {})
        if not isinstance(roles, dict):
            raise ConfigError("roles: expected a table of role tables")
        self.roles = {name: _limits(table, f"roles.{name}") for name, table in roles.items()}

    def _for(self, principal: Any) -> dict[str, float]:
        tables = [self.roles[r] for r in principal.roles if r in self.roles] or [self.default]
        merged: dict[str, float] = {}
        for table in tables:
            for key, value in table.items():
                merged[key] = min(merged.get(key, value), value)
        return merged

    @hookimpl
    def sandboxd_sandbox_options(self, principal: Any, options: Any) -> Any:
        limits = self._for(principal)
        return options.replace(**{k: min(getattr(options, k), v) for k, v in limits.items() if k in _SANDBOX_KEYS})

    @hookimpl
    def sandboxd_execution_limits(self, principal: Any, limits: Any) -> Any:
        mine = self._for(principal)
        return limits.replace(**{k: min(getattr(limits, k), v) for k, v in mine.items() if k in _EXEC_KEYS})

"""Checking a plugin's settings table, so typos are errors that name the key."""

from __future__ import annotations

from typing import Any, Mapping

from sandboxd.config import ConfigError


def check_keys(settings: Mapping[str, Any], allowed: set[str], where: str = "") -> None:
    for key in settings:
        if key not in allowed:
            raise ConfigError(f"{where}unknown key {key!r} (expected one of: {', '.join(sorted(allowed))})")


def typed(settings: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, where: str = "") -> Any:
    value = settings.get(key, default)
    if value is not default and (not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float)):
        raise ConfigError(f"{where}{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def str_list(settings: Mapping[str, Any], key: str, where: str = "") -> list[str]:
    value = settings.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}{key}: expected a list of strings")
    return value

"""Typed access to a client event's ``data`` object; every failure names the field."""

from __future__ import annotations

import json
import math
from typing import Any, Union

from ..errors import BadRequest

Ref = Union[str, int, None]


class Fields:
    """Typed access to an event's ``data`` object; every failure names the field."""

    def __init__(self, event: str, data: Any) -> None:
        self.event = event
        self.data = data

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.data, dict):
            raise BadRequest(f"{self.event}: data must be an object")
        return self.data

    @property
    def ref(self) -> Ref:
        ref = self.data.get("ref") if isinstance(self.data, dict) else None
        if ref is not None and (not isinstance(ref, (str, int)) or isinstance(ref, bool)):
            raise BadRequest(f"{self.event}: ref must be a string or an integer")
        return ref

    def _get(self, key: str, types: type | tuple[type, ...], what: str, required: bool) -> Any:
        value = self.obj().get(key)
        if value is None:
            if required:
                raise BadRequest(f"{self.event}: missing field {key!r}")
            return None
        if not isinstance(value, types) or isinstance(value, bool) and bool not in _tuple(types):
            raise BadRequest(f"{self.event}: field {key!r} must be {what}")
        return value

    def id(self, key: str, required: bool = True) -> str | None:
        value = self._get(key, str, "a string", required)
        if value is not None and not valid_id(value):
            raise BadRequest(f"{self.event}: field {key!r} is not a valid id")
        return value

    def str(self, key: str, required: bool = False) -> str | None:
        return self._get(key, str, "a string", required)

    def bool(self, key: str) -> bool:
        return bool(self._get(key, bool, "true or false", False))

    def number(self, key: str) -> float | None:
        value = self._get(key, (int, float), "a number", False)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BadRequest(f"{self.event}: field {key!r} must be a positive number")
        return None if value is None else float(value)


def _tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def valid_id(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)


def no_nul(value: str, what: str, event: str) -> str:
    if "\x00" in value:
        raise BadRequest(f"{event}: {what} must not contain NUL characters")
    return value


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        raise DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_decode(text: str) -> Any:
    """JSON as RFC 8259 has it, stricter than "last key wins": a key given twice in one
    object, and NaN/Infinity, are errors."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)

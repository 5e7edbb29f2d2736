"""Which engine a new sandbox goes to: pure logic, no I/O.

The daemon measures each engine (:class:`~sandboxd.plugin_types.EngineLoad`), this
module keeps those that satisfy the request and have room, least loaded first, and the
``sandboxd_place_sandbox`` hook may then choose or narrow. Rules, in order:

1. ``placement.engine`` names one engine: only it (unknown name: ``BAD_REQUEST``).
2. ``placement.labels``: only engines whose labels include them all.
3. Engines that do not answer health checks are skipped (none left:
   ``ENGINE_UNAVAILABLE``).
4. Room: fewer sandboxes than ``max_sandboxes``, and memory and CPUs left for the new
   sandbox's limits under the engine's reported size times its overcommit (none left:
   ``LIMIT_EXCEEDED``).
5. Least loaded first (sandboxes plus running executions), ties by name.
"""

from __future__ import annotations

from typing import Collection, Sequence

from .errors import BadRequest, EngineUnavailable, LimitExceeded
from .plugin_types import EngineLoad, Placement, SandboxOptions


def candidates(
    loads: Sequence[EngineLoad], want: Placement, options: SandboxOptions, *, up: Collection[str]
) -> list[EngineLoad]:
    """The engines that may take a sandbox with ``options``, best first.

    ``up``: names of the engines that answer health checks now.

    Raises:
        BadRequest: the request names an unknown engine, or no engine has its labels.
        EngineUnavailable: every engine that fits is down.
        LimitExceeded: every engine that fits and answers is full.
    """
    pool = list(loads)
    if want.engine is not None:
        pool = [e for e in pool if e.name == want.engine]
        if not pool:
            raise BadRequest(f"placement: no engine named {want.engine!r}")
    if want.labels:
        pool = [e for e in pool if all(e.labels.get(k) == v for k, v in want.labels.items())]
        if not pool:
            raise BadRequest(f"placement: no engine has the labels {dict(want.labels)}")
    pool = [e for e in pool if e.name in up]
    if not pool:
        raise EngineUnavailable("placement: no engine that fits the request is answering")
    pool = [e for e in pool if has_room(e, options)]
    if not pool:
        raise LimitExceeded("placement: every engine that fits the request is full")
    return sorted(pool, key=lambda e: (e.load, e.name))


def has_room(engine: EngineLoad, options: SandboxOptions) -> bool:
    if engine.max_sandboxes and engine.sandboxes >= engine.max_sandboxes:
        return False
    if engine.memory_free is not None and engine.memory_free < options.memory_bytes:
        return False
    if engine.cpus_free is not None and engine.cpus_free < options.cpus:
        return False
    return True


def narrow(current: list[EngineLoad], answer: object, plugin: str) -> list[EngineLoad]:
    """Apply one ``sandboxd_place_sandbox`` answer: ``None`` keeps ``current``, a name
    moves that engine first and keeps only it, a list of names keeps those (in
    ``current``'s order).

    Raises:
        BadRequest: the plugin named an engine that is not a candidate (its bug, but the
            request cannot go on).
    """
    names = {e.name for e in current}
    if answer is None:
        return current
    if isinstance(answer, str):
        if answer not in names:
            raise BadRequest(f"plugin {plugin!r} placed the sandbox on {answer!r}, which cannot take it")
        return [e for e in current if e.name == answer]
    if isinstance(answer, (list, tuple, set, frozenset)):
        return [e for e in current if e.name in set(answer)]
    raise BadRequest(f"plugin {plugin!r} answered placement with {type(answer).__name__}")


def parse_placement(event: str, value: object) -> Placement:
    """A request's ``placement: {engine?, labels?}`` (absent or null: anywhere).

    Raises:
        BadRequest: naming what is wrong.
    """
    if value is None:
        return Placement()
    if not isinstance(value, dict) or not set(value) <= {"engine", "labels"}:
        raise BadRequest(f"{event}: placement must be an object with 'engine' and/or 'labels'")
    engine, labels = value.get("engine"), value.get("labels") or {}
    if engine is not None and (not isinstance(engine, str) or not engine or len(engine) > 128):
        raise BadRequest(f"{event}: placement.engine must be an engine name")
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise BadRequest(f"{event}: placement.labels must be an object of strings")
    return Placement(engine, dict(labels))

"""The package's layering, checked on the import graph (TYPE_CHECKING imports included).

Layers import only downward:

    base (engine, protocol, config, errors, plugins, ...)
      <- domain (executions, sandboxes, logstore, replay, files)
      <- operations
      <- front ends (session core, WebSocket session, server, Socket.IO, REST, clients)
      <- daemon (hub wiring, housekeeping, daemon, cli)

A new module must be given a layer here; a module over the line cap must be split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sandboxd

ROOT = Path(sandboxd.__file__).parent
MAX_LINES = 420
#: Modules still over the cap, and the size they may not grow past (to be split).
OVER_CAP: dict[str, int] = {}

#: Upward imports allowed on purpose, each with its reason.
EXCEPTIONS = {
    # The package root re-exports the SDK's entry points lazily (PEP 562 ``__getattr__``), so
    # ``from sandboxd import Sandbox`` works while ``sandboxd serve`` never imports the SDK.
    ("sandboxd", "sandboxd.sdk"),
}

BASE, DOMAIN, OPERATIONS, FRONT, DAEMON = range(5)
NAMES = ["base", "domain", "operations", "front end", "daemon"]

#: Module (or package) -> layer; the longest matching prefix wins.
LAYERS = {
    "sandboxd": BASE,
    "sandboxd.errors": BASE,
    "sandboxd.config": BASE,
    "sandboxd.engine": BASE,
    "sandboxd.protocol": BASE,
    "sandboxd.output": BASE,
    "sandboxd.plugin_types": BASE,
    "sandboxd.hookspecs": BASE,
    "sandboxd.plugins": BASE,
    "sandboxd.placement": BASE,
    "sandboxd.metrics": BASE,
    "sandboxd.http": BASE,
    "sandboxd.ratelimit": BASE,
    "sandboxd.webassets": BASE,
    "sandboxd.endpoint": BASE,
    "sandboxd.events": DOMAIN,
    "sandboxd.logstore": DOMAIN,
    "sandboxd.replay": DOMAIN,
    "sandboxd.execution": DOMAIN,
    "sandboxd.runner": DOMAIN,
    "sandboxd.executions": DOMAIN,
    "sandboxd.livefeed": DOMAIN,
    "sandboxd.execguard": DOMAIN,
    "sandboxd.sandboxes": DOMAIN,
    "sandboxd.files": DOMAIN,
    "sandboxd.operations": OPERATIONS,
    "sandboxd.frontend": FRONT,
    "sandboxd.session": FRONT,
    "sandboxd.server": FRONT,
    "sandboxd.credentials": FRONT,
    "sandboxd.socketio": FRONT,
    "sandboxd.rest": FRONT,
    "sandboxd.client": FRONT,
    "sandboxd.sdk": FRONT,
    "sandboxd.hub": DAEMON,
    "sandboxd.housekeeping": DAEMON,
    "sandboxd.daemon": DAEMON,
    "sandboxd.lock": DAEMON,
    "sandboxd.cli": DAEMON,
    "sandboxd.__main__": DAEMON,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        parts = ["sandboxd", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def imports(module: str, path: Path) -> set[str]:
    """Every sandboxd module ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "sandboxd")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "sandboxd":
                target = node.module
            else:
                continue
            out.add(target)
            # ``from . import x`` imports the module x
            out.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES)
    return {m for m in out if m in MODULES or m == "sandboxd"}


MODULES = modules()


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for module, path in MODULES.items():
        mine = layer_of(module)
        for target in imports(module, path):
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine and (module, target) not in EXCEPTIONS:
                upward.append(f"{module} ({NAMES[mine]}) imports {target} ({NAMES[theirs]})")
    assert upward == []


def test_no_module_is_over_the_line_cap():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > OVER_CAP.get(m, MAX_LINES)} == {}
    assert [m for m in OVER_CAP if sizes.get(m, 0) <= MAX_LINES] == [], "split: drop it from OVER_CAP"

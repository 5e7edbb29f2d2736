"""A wheel carries every package: pyproject.toml lists each one (an editable install hides a
missing entry, a real install does not)."""

from __future__ import annotations

import sys
from pathlib import Path

import sandboxd

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(sandboxd.__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sandboxd").rglob("__init__.py")
             if "node_modules" not in p.parts}
    assert found | {"sandboxd_plugins"} == listed

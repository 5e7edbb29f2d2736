"""Test modes.

- ``tests/unit``: pure logic; no network, no Docker.
- ``tests/docker``: the real daemon (a ``sandboxd serve`` subprocess on 127.0.0.1) against
  the real Docker engine. They run whenever an engine answers. With ``CI=true`` a missing
  engine fails them: CI must never pass by skipping.
"""

from __future__ import annotations

import functools
import os

import pytest


@functools.lru_cache(maxsize=None)
def docker_problem() -> str | None:
    """None if a Docker engine answers, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        for image in ("sandboxd/busybox", "sandboxd/base"):
            client.images.get(image)
        client.close()
    except Exception as exc:  # any failure means "no usable engine"; we report it
        return f"{type(exc).__name__}: {exc} (run scripts/setup.sh)"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header(config):
    problem = docker_problem()
    mode = "enabled" if problem is None else f"DISABLED ({problem})"
    return [f"sandboxd: docker tests {mode}; CI={in_ci()}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/docker/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _require_docker(request):
    if request.node.get_closest_marker("docker") is None:
        return
    problem = docker_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(f"Docker engine required in CI: {problem}")
        pytest.skip(f"no Docker engine: {problem}")

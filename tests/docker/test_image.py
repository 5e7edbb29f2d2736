"""``sandboxd/base`` is a usable image: the whole Python standard library, process tools,
a pager, an editor and terminfo (issue #10)."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import BASE_IMAGE

SCRIPT = Path(__file__).parents[2] / "scripts" / "build-images.sh"


def test_base_image_runs_stdlib_imports_and_full_screen_tools(daemon):
    probe = (
        "python3 -c 'import json, shutil, asyncio, dataclasses, sqlite3, unittest, zipfile,"
        " urllib.request, statistics, ssl, curses, venv; print(sqlite3.sqlite_version_info >= (3,))'"
        " && top -b -n1 | head -1 | cut -c1-5"
        " && for p in ps less vi tput git pip3; do command -v $p >/dev/null || echo missing $p; done"
        " && tput -T xterm-256color colors"
    )
    result = daemon.cli("exec", "--image", BASE_IMAGE, "--follow", "--", "sh", "-c", probe)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == b"True\ntop -\n256\n"


def test_the_engine_has_the_base_image_version_the_build_script_makes(docker_client):
    """build-images.sh rebuilds an image whose version label differs from its own, so a
    machine set up before an image changed gets the new one on the next setup."""
    version = re.search(r"^BASE_VERSION=(\d+)$", SCRIPT.read_text(), re.M).group(1)
    labels = docker_client.images.get(BASE_IMAGE).labels
    assert labels["org.sandboxd.image-version"] == version

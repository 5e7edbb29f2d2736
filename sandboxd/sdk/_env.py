"""Where the daemon is when nobody says: ``$SANDBOXD_URL`` and ``$SANDBOXD_TOKEN``.

Kept apart and light, so the CLI can name the defaults without importing the SDK.
"""

from __future__ import annotations

import os

DEFAULT_URL = "ws://127.0.0.1:8765/sandbox/ws"


def default_url() -> str:
    return os.environ.get("SANDBOXD_URL") or DEFAULT_URL


def default_token() -> str | None:
    return os.environ.get("SANDBOXD_TOKEN") or None

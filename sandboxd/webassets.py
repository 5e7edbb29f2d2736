"""The web terminal's files, served by the daemon on its own port.

``sandboxd/web/`` holds the page; xterm.js comes from the npm registry into
``sandboxd/web/node_modules`` (``scripts/setup.sh`` runs ``npm install`` there) and is
never committed. Only the files listed here are served, so no request path can reach
anything else on disk.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

WEB_DIR = Path(__file__).parent / "web"
_XTERM = WEB_DIR / "node_modules" / "@xterm"

ASSETS: dict[str, tuple[Path, str]] = {
    "/": (WEB_DIR / "index.html", "text/html; charset=utf-8"),
    "/index.html": (WEB_DIR / "index.html", "text/html; charset=utf-8"),
    "/static/conn.js": (WEB_DIR / "conn.js", "text/javascript; charset=utf-8"),
    "/static/tabs.js": (WEB_DIR / "tabs.js", "text/javascript; charset=utf-8"),
    "/static/files.js": (WEB_DIR / "files.js", "text/javascript; charset=utf-8"),
    "/static/app.js": (WEB_DIR / "app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": (WEB_DIR / "style.css", "text/css; charset=utf-8"),
    "/vendor/xterm.js": (_XTERM / "xterm" / "lib" / "xterm.js", "text/javascript; charset=utf-8"),
    "/vendor/xterm.css": (_XTERM / "xterm" / "css" / "xterm.css", "text/css; charset=utf-8"),
    "/vendor/addon-fit.js": (_XTERM / "addon-fit" / "lib" / "addon-fit.js", "text/javascript; charset=utf-8"),
}


@lru_cache(maxsize=None)
def load(path: str) -> tuple[bytes, str] | None:
    """The bytes and content type served at ``path``, or None."""
    entry = ASSETS.get(path)
    if entry is None:
        return None
    file, content_type = entry
    try:
        return file.read_bytes(), content_type
    except OSError:
        return None

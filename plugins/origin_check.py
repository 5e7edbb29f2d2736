"""origin_check: refuse browser handshakes from other sites (cross-site WebSocket hijacking).

Browsers send an ``Origin`` header with every WebSocket handshake, and do not apply
the same-origin policy to WebSockets: without this check, any web page a user visits
could open a session with the user's cookies or a token it got hold of. Requests
without ``Origin`` (command-line clients) pass; a page served by the daemon itself
(same host and port) passes; other origins must be listed::

    [plugins.origin_check]
    allowed_origins = ["https://notebooks.example.com"]
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from sandboxd import Refusal, hookimpl

from ._settings import check_keys, str_list


class OriginCheck:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"allowed_origins"})
        self.allowed = {o.rstrip("/").lower() for o in str_list(settings, "allowed_origins")}

    @hookimpl
    def sandboxd_check_request(self, request: Any) -> Refusal | None:
        origin = request.headers.get("origin")
        if origin is None:
            return None
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return None
        host = request.headers.get("host", "").lower()
        if host and urlsplit(origin).netloc == host:
            return None  # same origin: a page served by this daemon
        return Refusal(403, f"origin {origin!r} is not allowed")

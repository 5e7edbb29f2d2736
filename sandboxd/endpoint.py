"""Where clients find the daemon, and what to tell a user when they cannot.

Users paste what their browser shows (``http://host:8765``), so any of these name the
WebSocket endpoint ``ws://host:8765/sandbox/ws``: ``http://host:8765``,
``http://host:8765/``, ``ws://host:8765``, ``host:8765``; ``https`` maps to ``wss``.
An ``http(s)`` URL with a path gets ``/sandbox/ws`` appended (a reverse proxy's
prefix: ``https://h/sbx`` → ``wss://h/sbx/sandbox/ws``); a ``ws(s)`` URL with a path is
used as it is. If that is not the endpoint, the failure says so in one line (never the
page's HTML). The CLI, the SDK and ``sandboxd.client`` all use these rules and messages.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .errors import BadRequest

WS_PATH = "/sandbox/ws"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class BadURL(BadRequest, ValueError):
    """Not something a daemon can be reached at (a usage error: the CLI exits 2)."""


def websocket_url(url: str) -> str:
    """The daemon's WebSocket URL for what a user typed (see the module docstring).

    Raises:
        BadURL: a scheme other than http(s)/ws(s), or no host.
    """
    text = url.strip()
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise BadURL(f"{url}: the daemon's URL must start with ws://, wss://, http:// or https://")
    if not parts.hostname:
        raise BadURL(f"{url}: no host in the daemon's URL")
    path = parts.path
    if parts.scheme.lower() in ("http", "https") and not path.endswith(WS_PATH):
        path = path.rstrip("/") + WS_PATH
    elif path in ("", "/"):
        path = WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def refusal_message(url: str, status: int, content_type: str, body: bytes, *, sent_token: bool) -> str:
    """One line for an HTTP answer where a WebSocket handshake was expected."""
    if status == 401:
        if sent_token:
            return "the daemon refused the token (HTTP 401): check SANDBOXD_TOKEN or --token"
        return "the daemon requires a token: set SANDBOXD_TOKEN or pass --token"
    parts = urlsplit(url)
    kind = content_type.split(";")[0].strip() or "no content type"
    if parts.path != WS_PATH:
        endpoint = urlunsplit((parts.scheme, parts.netloc, WS_PATH, parts.query, ""))
        return (f"{url} is not a sandboxd WebSocket endpoint (got HTTP {status} {kind}); "
                f"did you mean {endpoint}?")
    if 200 <= status < 300 or status == 404:
        return f"{url} is not a sandboxd WebSocket endpoint (got HTTP {status} {kind})"
    reason = ""
    if content_type.startswith("text/plain"):
        reason = body.decode("utf-8", "replace").strip().splitlines()[0][:200] if body.strip() else ""
    return f"the daemon refused the connection (HTTP {status}" + (f": {reason})" if reason else ")")


def unreachable_message(url: str, exc: BaseException) -> str:
    """One line for a daemon that could not be connected to at all."""
    if _refused(exc):
        why = "connection refused (is 'sandboxd serve' running?)"
    else:
        cause = _root_os_error(exc)
        why = (cause.strerror or str(cause)) if cause is not None else (str(exc) or type(exc).__name__)
    return f"cannot reach the sandboxd daemon at {url}: {why}"


def _chain(exc: BaseException):  # type: ignore[no-untyped-def]
    """``exc``, its causes and contexts, and the members of exception groups among them."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)


def _refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) for e in _chain(exc))


def _root_os_error(exc: BaseException) -> OSError | None:
    errors = [e for e in _chain(exc) if isinstance(e, OSError)]
    return errors[-1] if errors else None

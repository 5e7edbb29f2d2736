"""The built-in Origin/Host policy every request passes before routing."""

from __future__ import annotations

import pytest

from sandboxd.config import parse_config
from sandboxd.http import BadHTTPRequest, OriginPolicy, Request

POLICY = OriginPolicy.from_config(parse_config({"server": {"allowed_origins": ["https://ok.example"],
                                                           "allowed_hosts": ["sandbox.example"]}}), [8765])


def request(*pairs: tuple[str, str]) -> Request:
    counts: dict[str, int] = {}
    for k, _ in pairs:
        counts[k] = counts.get(k, 0) + 1
    return Request("GET", "/sandbox/ws", dict(pairs), b"", "127.0.0.1:1", counts)


def status(*pairs: tuple[str, str]) -> int:
    try:
        POLICY.check(request(*pairs))
    except BadHTTPRequest as exc:
        return exc.status
    return 200


@pytest.mark.parametrize("origin,host", [
    (None, "127.0.0.1:8765"),                        # CLI, SDK: no Origin
    (None, None),
    ("http://127.0.0.1:8765", "127.0.0.1:8765"),     # the daemon's own page
    ("http://localhost:8765", "127.0.0.1:8765"),     # loopback aliases are one origin
    ("http://[::1]:8765/", "localhost:8765"),
    ("https://OK.example", "127.0.0.1:8765"),        # listed
    ("http://10.1.2.3:8765", "10.1.2.3:8765"),       # own origin on another address
    ("http://sandbox.example:8765", "sandbox.example:8765"),
])
def test_allowed(origin, host):
    pairs = [("host", host)] if host else []
    pairs += [("origin", origin)] if origin else []
    assert status(*pairs) == 200


@pytest.mark.parametrize("pairs", [
    [("host", "127.0.0.1:8765"), ("origin", "http://127.0.0.1:9999")],    # another local port
    [("host", "127.0.0.1:8765"), ("origin", "https://127.0.0.1:8765")],   # another scheme
    [("host", "127.0.0.1:8765"), ("origin", "http://evil.example:8765")],
    [("host", "127.0.0.1:8765"), ("origin", "null")],
    [("host", "10.1.2.3:8765"), ("origin", "http://127.0.0.1:8765")],
    [("host", "127.0.0.1:8765"), ("origin", "http://127.0.0.1:8765"), ("origin", "http://127.0.0.1:8765")],
    [("host", "attacker.example:8765")],                                   # DNS rebinding
    [("host", "attacker.example:8765"), ("origin", "http://attacker.example:8765")],
])
def test_refused(pairs):
    assert status(*pairs) == 403


def test_garbled_host_is_a_bad_request():
    assert status(("host", "127.0.0.1:notaport")) == 400

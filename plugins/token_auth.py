"""token_auth: bearer tokens from config, mapped to a user and roles.

Settings::

    [plugins.token_auth]
    tokens = [
      { user = "alice", roles = ["user"], sha256 = "<hex digest of the token>" },
    ]

Only SHA-256 digests are stored (``sandboxd token new`` makes a token and its digest),
and digests are compared in constant time. Clients present the token as
``Authorization: Bearer TOKEN`` or, for browsers (which cannot set headers on a
WebSocket), as ``?token=TOKEN`` in the URL. Anything else gets HTTP 401.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

from sandboxd import Principal, hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys, str_list


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenAuth:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"tokens"})
        tokens = settings.get("tokens", [])
        if not isinstance(tokens, list) or not tokens:
            raise ConfigError("tokens: expected a non-empty list of {user, roles, sha256} tables")
        self._tokens: list[tuple[bytes, Principal]] = []
        for i, entry in enumerate(tokens):
            where = f"tokens[{i}] "
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}must be a table")
            check_keys(entry, {"user", "roles", "sha256"}, where)
            user, sha = entry.get("user"), entry.get("sha256")
            if not isinstance(user, str) or not user:
                raise ConfigError(f"{where}user: expected a non-empty string")
            if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
                raise ConfigError(f"{where}sha256: expected 64 hex digits (run `sandboxd token new`)")
            roles = frozenset(str_list(entry, "roles", where))
            self._tokens.append((sha.lower().encode(), Principal(user, roles)))

    @hookimpl
    def sandboxd_authenticate(self, request: Any) -> Principal | None:
        token = None
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
        elif "token" in request.query:
            token = request.query["token"]
        if not token:
            return None
        presented = digest(token).encode()
        found = None
        for stored, principal in self._tokens:  # no early exit: same time for every token
            if hmac.compare_digest(presented, stored):
                found = principal
        return found

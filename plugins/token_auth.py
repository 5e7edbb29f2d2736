"""token_auth: bearer tokens from config, mapped to a user and roles.

Settings::

    [plugins.token_auth]
    tokens = [
      { user = "alice", roles = ["user"], sha256 = "<hex digest of the token>" },
    ]

Tokens may also (or only) come from a file, in the same form, re-read when it changes
and on SIGHUP, so a token is revoked without a restart: open sessions that used it are
closed (WebSocket code 1008) at the next check (``[plugins] reload_interval_seconds``)::

    [plugins.token_auth]
    tokens_file = "/etc/sandboxd/tokens.toml"     # tokens = [{ user, roles, sha256 }, ...]

Replace the file atomically (write a new one, then rename it over the old): a file that
cannot be read or parsed is logged and the tokens read before stay in force.

Only SHA-256 digests are stored (``sandboxd token new`` makes a token and its digest),
and digests are compared in constant time. Clients present the token as
``Authorization: Bearer TOKEN`` or, for browsers (which cannot set headers on a
WebSocket), as ``?token=TOKEN`` in the URL. Anything else gets HTTP 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from sandboxd import Principal, hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys, str_list, typed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenAuth:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"tokens", "tokens_file"})
        path = typed(settings, "tokens_file", str, "")
        self._file = Path(path).expanduser() if path else None
        listed = settings.get("tokens", [])
        if not isinstance(listed, list) or not (listed or self._file):
            raise ConfigError("tokens: expected a non-empty list of {user, roles, sha256} tables (or tokens_file)")
        self._listed = parse_tokens(listed)
        self._stamp: tuple[int, int, int] | None = None
        self._bad: tuple[int, int, int] | None = None
        self._from_file: list[tuple[bytes, Principal]] = []
        if self._file is not None:
            self._stamp, self._from_file = self._read_file()
        self._tokens = self._listed + self._from_file

    def _read_file(self) -> tuple[tuple[int, int, int], list[tuple[bytes, Principal]]]:
        assert self._file is not None
        try:
            with self._file.open("rb") as f:
                st = os.fstat(f.fileno())
                tokens = tomllib.load(f).get("tokens", [])
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"tokens_file {self._file}: {exc}") from None
        if not isinstance(tokens, list):
            raise ConfigError(f"tokens_file {self._file}: tokens: expected a list")
        try:
            return (st.st_ino, st.st_size, st.st_mtime_ns), parse_tokens(tokens)
        except ConfigError as exc:
            raise ConfigError(f"tokens_file {self._file}: {exc}") from None

    @hookimpl
    def sandboxd_reload(self, force: bool) -> bool | None:
        if self._file is None:
            return None
        if not force and self._stat() == self._stamp:
            return False
        try:
            stamp, tokens = self._read_file()
        except ConfigError as exc:
            if force or self._stat() != self._bad:  # once per broken version of the file
                log.error("%s; the tokens read before stay in force", exc)
            self._bad = self._stat()
            return False
        changed = tokens != self._from_file
        self._stamp, self._bad, self._from_file = stamp, None, tokens
        self._tokens = self._listed + tokens
        if changed:
            log.info("token_auth: %d tokens from %s", len(tokens), self._file)
        return changed

    def _stat(self) -> tuple[int, int, int] | None:
        assert self._file is not None
        try:
            st = self._file.stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

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


def parse_tokens(entries: list[Any]) -> list[tuple[bytes, Principal]]:
    """``[{user, roles, sha256}, ...]`` as (digest, principal) pairs, every field checked."""
    tokens = []
    for i, entry in enumerate(entries):
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
        tokens.append((sha.lower().encode(), Principal(user, roles)))
    return tokens

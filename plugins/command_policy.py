"""command_policy: allow and deny rules for commands, per role.

Settings: a list of rules; a rule applies to a principal holding any of its ``roles``
(``"*"`` for everyone). Every applicable rule must pass::

    [[plugins.command_policy.rules]]
    roles = ["user"]
    allow_programs = ["python3", "sh", "ls", "cat"]   # glob patterns on argv[0]'s basename;
                                                      # empty allows any program
    deny_programs = ["rm", "*sudo*"]                  # glob patterns on argv[0]'s basename
    deny_argv_regex = ["--force", "/etc/shadow"]      # searched in the argv joined by spaces
    max_argv_length = 65536                           # bytes of all arguments together
    deny_env = ["LD_*", "PATH"]                       # env names a request may not set

A shell command line (``/bin/sh -c "..."``) is checked as the program ``sh`` with its
script in argv, so ``deny_argv_regex`` is the rule that sees inside it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from sandboxd import hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys, str_list, typed


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    allow_programs: tuple[str, ...]
    deny_programs: tuple[str, ...]
    deny_argv: tuple[re.Pattern[str], ...]
    max_argv_length: int | None
    deny_env: tuple[str, ...]

    def applies_to(self, principal: Any) -> bool:
        return "*" in self.roles or bool(self.roles & principal.roles)

    def check(self, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        program = os.path.basename(command[0])
        if self.allow_programs and not any(fnmatch.fnmatchcase(program, p) for p in self.allow_programs):
            return f"program {program!r} is not allowed"
        for pattern in self.deny_programs:
            if fnmatch.fnmatchcase(program, pattern):
                return f"program {program!r} is not allowed"
        joined = " ".join(command)
        for regex in self.deny_argv:
            if regex.search(joined):
                return f"arguments match a denied pattern ({regex.pattern!r})"
        if self.max_argv_length is not None and len(joined.encode()) > self.max_argv_length:
            return f"arguments are longer than {self.max_argv_length} bytes"
        for name in env:
            if any(fnmatch.fnmatchcase(name, p) for p in self.deny_env):
                return f"setting {name!r} is not allowed"
        return None


class CommandPolicy:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"rules"})
        rules = settings.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigError("rules: expected a list of tables")
        self.rules = []
        for i, r in enumerate(rules):
            where = f"rules[{i}] "
            if not isinstance(r, dict):
                raise ConfigError(f"{where}must be a table")
            check_keys(r, {"roles", "allow_programs", "deny_programs", "deny_argv_regex", "max_argv_length", "deny_env"}, where)
            try:
                regexes = tuple(re.compile(x) for x in str_list(r, "deny_argv_regex", where))
            except re.error as exc:
                raise ConfigError(f"{where}deny_argv_regex: {exc}") from None
            self.rules.append(Rule(
                roles=frozenset(str_list(r, "roles", where) or ["*"]),
                allow_programs=tuple(str_list(r, "allow_programs", where)),
                deny_programs=tuple(str_list(r, "deny_programs", where)),
                deny_argv=regexes,
                max_argv_length=typed(r, "max_argv_length", int, None, where),
                deny_env=tuple(str_list(r, "deny_env", where)),
            ))

    @hookimpl
    def sandboxd_validate_command(self, principal: Any, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        for rule in self.rules:
            if rule.applies_to(principal) and (reason := rule.check(command, env)):
                return reason
        return None

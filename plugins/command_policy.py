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
    allow_shell_commands = false                      # sh -c "..." while deny_programs is set

This is a guard rail against mistakes, not a security boundary: the container is the
boundary. A denied program can still be reached indirectly (``env perl``, ``find
-exec``, ``xargs``, an interpreter's ``exec``, the dynamic loader); anything a sandbox
user must not do has to be impossible in the sandbox itself. What the policy does to
make the obvious ways fail:

- ``argv[0]`` is also resolved inside the sandbox (``PATH`` lookup, symlinks followed),
  and ``deny_programs`` matches the basename of either the name given or the resolved
  program (so an alias ``/tmp/p -> /usr/bin/perl`` is ``perl``); ``allow_programs``
  matches the name given.
- While a rule has ``deny_programs``, shell command lines (``sh -c "..."``, and the
  seed's string commands, which run that way) are refused for the roles it applies to,
  unless the rule says ``allow_shell_commands = true``; ``deny_argv_regex`` is then the
  rule that sees inside the script.
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
    allow_shell_commands: bool = False

    def applies_to(self, principal: Any) -> bool:
        return "*" in self.roles or bool(self.roles & principal.roles)

    def check(self, command: Sequence[str], env: Mapping[str, str], resolved: str | None = None) -> str | None:
        program = os.path.basename(command[0])
        if self.allow_programs and not any(fnmatch.fnmatchcase(program, p) for p in self.allow_programs):
            return f"program {program!r} is not allowed"
        for name in dict.fromkeys([program, os.path.basename(resolved or "")]):
            if name and any(fnmatch.fnmatchcase(name, p) for p in self.deny_programs):
                return f"program {name!r} is not allowed"
        if self.deny_programs and not self.allow_shell_commands and _is_shell_line(command, resolved):
            return "shell command lines are not allowed while programs are denied (allow_shell_commands)"
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
            check_keys(r, {"roles", "allow_programs", "deny_programs", "deny_argv_regex", "max_argv_length", "deny_env",
                           "allow_shell_commands"}, where)
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
                allow_shell_commands=typed(r, "allow_shell_commands", bool, False, where),
            ))

    @hookimpl
    def sandboxd_validate_command(
        self, principal: Any, command: Sequence[str], env: Mapping[str, str], program: str | None,
    ) -> str | None:
        for rule in self.rules:
            if rule.applies_to(principal) and (reason := rule.check(command, env, program)):
                return reason
        return None


SHELLS = frozenset({"sh", "ash", "dash", "bash", "zsh", "ksh", "mksh", "busybox"})


def _is_shell_line(command: Sequence[str], resolved: str | None) -> bool:
    """``sh -c SCRIPT`` (``-ec``, ``-lc``, ...), by the name given or the program it is."""
    names = {os.path.basename(command[0])}
    if resolved and os.path.basename(resolved) != "busybox":  # busybox: the name given picks the applet
        names.add(os.path.basename(resolved))
    args = list(command[1:])
    if "busybox" in names and args and args[0] in SHELLS:  # busybox sh -c ...
        args = args[1:]
    return bool(names & SHELLS) and any(a.startswith("-") and not a.startswith("--") and "c" in a for a in args[:2])

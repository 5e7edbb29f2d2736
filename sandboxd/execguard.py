"""Checks on what an execution asks for, before anything is started in the sandbox.

Sizes: an argument or environment entry longer than the kernel takes
(``MAX_ARG_STRLEN``, 128 KiB), or a command line and environment together past
``limits.max_command_bytes``, would only make ``docker exec`` fail with an unhelpful
exit code; they are refused with ``BAD_REQUEST`` instead, as is a workdir past 4 KiB.

Working directory: resolved inside the sandbox, as its user, symlinks included, and
accepted only within the sandbox's work tree (the image's WORKDIR) or
``sandbox.allowed_workdirs`` (``["/tmp"]``; ``["/"]`` allows any). The resolved path is
what the command runs in. This is a guard rail against mistakes, like the command
policy; the container is the security boundary.
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping, Sequence

from .config import Config
from .engine import Engine
from .errors import BadRequest
from .files import workdir_of

#: Linux's limit on one argument or environment string (MAX_ARG_STRLEN), NUL included.
MAX_ARG_STRLEN = 128 * 1024
MAX_WORKDIR_BYTES = 4096

_RESOLVE = 'cd -- "$1" && pwd -P'
_RESOLVE_PROGRAM = 'p=$(command -v -- "$1") && readlink -f -- "$p"'


def check_sizes(command: Sequence[str], env: Mapping[str, str], workdir: str | None, config: Config,
                where: str = "execute-command") -> None:
    """Raises: BadRequest: an argument, env entry, workdir or the whole is too large."""
    total = 0
    for i, arg in enumerate(command):
        n = len(arg.encode("utf-8", "surrogatepass")) + 1
        if n > MAX_ARG_STRLEN:
            raise BadRequest(f"{where}: argument {i} is {n - 1} bytes; at most {MAX_ARG_STRLEN - 1} are allowed")
        total += n
    for key, value in env.items():
        n = len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass")) + 2
        if n > MAX_ARG_STRLEN:
            raise BadRequest(f"{where}: env {key[:64]!r} is {n - 2} bytes; at most {MAX_ARG_STRLEN - 2} are allowed")
        total += n
    cap = config.limits.max_command_bytes
    if total > cap:
        raise BadRequest(f"{where}: command and env take {total} bytes; at most {cap} (limits.max_command_bytes)")
    if workdir is not None and len(workdir.encode("utf-8", "surrogatepass")) > MAX_WORKDIR_BYTES:
        raise BadRequest(f"{where}: workdir is longer than {MAX_WORKDIR_BYTES} bytes")


async def checked_workdir(engine: Engine, sandbox: Any, workdir: str | None, config: Config,
                          where: str = "execute-command") -> str | None:
    """The directory to run in: ``workdir`` resolved in the sandbox, if allowed.

    Raises:
        BadRequest: not absolute, not a directory the sandbox user can enter, or
            outside the work tree and ``sandbox.allowed_workdirs``.
    """
    if workdir is None:
        return None
    if not workdir.startswith("/"):
        raise BadRequest(f"{where}: workdir must be an absolute path")
    tree = await workdir_of(engine, sandbox)
    if posixpath.normpath(workdir) == posixpath.normpath(tree):
        return workdir
    result = await engine.run_to_end(sandbox.id, ["/bin/sh", "-c", _RESOLVE, "sandboxd-workdir", workdir],
                                     user=config.sandbox.user or None, max_output=8192)
    resolved = result.stdout.decode("utf-8", "surrogateescape").rstrip("\n")
    if result.exit_code != 0 or not resolved.startswith("/"):
        raise BadRequest(f"{where}: workdir {workdir} is not a directory the sandbox user can enter")
    allowed = (tree, *config.sandbox.allowed_workdirs)
    if not any(_within(resolved, root) for root in allowed):
        raise BadRequest(f"{where}: workdir {workdir} is {resolved}, outside the sandbox's work tree {tree} "
                         f"and sandbox.allowed_workdirs")
    return resolved


def _within(path: str, root: str) -> bool:
    root = posixpath.normpath(root)
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


async def resolve_program(engine: Engine, sandbox: Any, program: str, workdir: str | None,
                          config: Config) -> str | None:
    """``program`` as the sandbox would run it: found in ``PATH`` (or relative to
    ``workdir``), every symlink followed; None if it does not resolve."""
    result = await engine.run_to_end(sandbox.id, ["/bin/sh", "-c", _RESOLVE_PROGRAM, "sandboxd-which", program],
                                     workdir=workdir, user=config.sandbox.user or None, max_output=8192)
    path = result.stdout.decode("utf-8", "surrogateescape").strip("\n")
    return path if result.exit_code == 0 and path.startswith("/") else None

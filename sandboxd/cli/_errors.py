"""Exit codes of the ``sandboxd`` command, in one table."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    #: click's code for a usage error.
    USAGE = 2
    #: ``timeout`` 's convention, used by ``sandboxd exec --follow`` when the command timed out.
    TIMEOUT = 124
    #: ``docker exec`` 's "the daemon failed": the daemon, the engine or the sandbox failed.
    DAEMON = 125
    #: Interrupted (Ctrl-C): 128 + SIGINT.
    INTERRUPTED = 130

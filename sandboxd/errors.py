"""The errors a user of sandboxd can see, one class per stable error code.

Errors are raised at the edge where something went wrong and turned into protocol
``error`` events in exactly one place (:meth:`sandboxd.session.Session._dispatch`), and
into CLI exit codes in one place (:mod:`sandboxd.cli._errors`)::

    SandboxdError                 code            whose fault
    ├── BadRequest                BAD_REQUEST     the client's: malformed frame or field
    │   ├── UnknownEvent          UNKNOWN_EVENT   the client's: no such event
    │   └── Conflict              BAD_REQUEST     the client's: not in this state (finished, stdin closed)
    ├── Unauthenticated           UNAUTHENTICATED the client's: no valid credentials (REST's 401)
    ├── NotFound                  NOT_FOUND       the client's: unknown id, or a container
    │                                             the daemon did not create (never revealed)
    ├── LimitExceeded             LIMIT_EXCEEDED  the client's: a configured limit
    ├── QuotaExceeded             QUOTA_EXCEEDED  the sandbox's: its disk is full
    ├── Forbidden                 FORBIDDEN       the client's: policy says no
    ├── CommandRejected           COMMAND_REJECTED  the client's: a plugin refused the command
    ├── PluginError               PLUGIN_ERROR    a plugin's: it raised; fails closed
    ├── DockerError               DOCKER_ERROR    the engine's: an Engine API call failed
    │   ├── EngineUnavailable     ENGINE_UNAVAILABLE  the engine does not answer
    │   └── SandboxStopped        SANDBOX_STOPPED the sandbox's container is not running
    └── InternalError             INTERNAL        ours: a bug; details are logged, not sent

Each class carries ``exit_code``, the status ``sandboxd`` CLI commands exit with when the
daemon answers with that code (125 mirrors ``docker exec``'s "the daemon failed").
"""

from __future__ import annotations


class SandboxdError(Exception):
    """Base of every error with a stable, user-visible code."""

    code = "INTERNAL"
    exit_code = 125

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @classmethod
    def from_code(cls, code: str, message: str) -> SandboxdError:
        """Rebuild the typed error a daemon reported (used by the client)."""
        klass = next((k for k in _all_subclasses(SandboxdError) if k.code == code), SandboxdError)
        err = klass.__new__(klass)
        SandboxdError.__init__(err, message)  # subclasses' own fields are not on the wire
        err.code = code
        return err


class BadRequest(SandboxdError):
    """A frame or field the protocol does not allow."""

    code = "BAD_REQUEST"
    exit_code = 2


class UnknownEvent(BadRequest):
    """A well-formed frame naming an event the daemon does not know."""

    code = "UNKNOWN_EVENT"


class Conflict(BadRequest):
    """A request the target's state does not allow any more (an execution that already
    finished, a stdin already closed). Same code as any bad request; REST answers 409."""


class Unauthenticated(SandboxdError):
    """A request without valid credentials where authentication is required.

    WebSocket handshakes get a plain HTTP 401 before any session exists; the REST API
    answers its requests with this code.
    """

    code = "UNAUTHENTICATED"
    exit_code = 1


class NotFound(SandboxdError):
    """An unknown id, or one the daemon will not admit to knowing."""

    code = "NOT_FOUND"

    @classmethod
    def sandbox(cls, container_id: str) -> NotFound:
        return cls(f"no such sandbox: {container_id}")

    @classmethod
    def execution(cls, execution_id: str) -> NotFound:
        return cls(f"no such execution: {execution_id}")


class LimitExceeded(SandboxdError):
    """A configured limit would be passed."""

    code = "LIMIT_EXCEEDED"


class RateLimited(LimitExceeded):
    """The session sent requests faster than ``server.requests_per_second`` allows."""

    code = "RATE_LIMITED"


class AuthBackoff(RateLimited):
    """Too many failed authentications from the caller's address: it must wait
    ``retry_after`` seconds (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed authentications; wait")
        self.retry_after = retry_after


class QuotaExceeded(SandboxdError):
    """The sandbox's disk (its tmpfs or storage quota) is full; nothing was written."""

    code = "QUOTA_EXCEEDED"


class Forbidden(SandboxdError):
    """Policy refuses the action."""

    code = "FORBIDDEN"


class CommandRejected(SandboxdError):
    """A plugin's command policy refused the command; ``reason`` says why."""

    code = "COMMAND_REJECTED"

    def __init__(self, reason: str, *, plugin: str | None = None) -> None:
        super().__init__(f"command rejected: {reason}")
        self.reason = reason
        self.plugin = plugin


class PluginError(SandboxdError):
    """A plugin raised; the request is refused (fail closed) and the daemon carries on."""

    code = "PLUGIN_ERROR"

    def __init__(self, plugin: str, hook: str) -> None:
        super().__init__(f"plugin {plugin!r} failed in {hook}; the request was refused")
        self.plugin = plugin
        self.hook = hook


class DockerError(SandboxdError):
    """The Docker engine refused or failed a call."""

    code = "DOCKER_ERROR"

    def __init__(self, message: str, *, op: str | None = None) -> None:
        super().__init__(f"{op}: {message}" if op else message)
        self.op = op


class EngineUnavailable(DockerError):
    """The Docker engine did not answer in time, or not at all."""

    code = "ENGINE_UNAVAILABLE"


class SandboxStopped(DockerError):
    """The sandbox's container stopped or was killed outside sandboxd."""

    code = "SANDBOX_STOPPED"


class InternalError(SandboxdError):
    """A bug in sandboxd; the traceback is logged, the client gets a short message."""

    code = "INTERNAL"


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


#: Every stable code, for docs and tests.
ERROR_CODES = tuple(
    dict.fromkeys(k.code for k in [SandboxdError, *_all_subclasses(SandboxdError)])
)

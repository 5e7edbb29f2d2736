"""Every hook a sandboxd plugin can implement.

Plugins are found through the ``sandboxd`` entry-point group and enabled by name in
the ``[plugins]`` config table (see docs/plugins.md). An implementation may be a plain
function or an ``async def``: the daemon awaits what it returns. pluggy has no async
support (pluggy #320), so no hook here is ``firstresult``: the daemon calls every
implementation, awaits each result, and reads them as each docstring says.

A hook that raises fails closed: the request that triggered it gets error
``PLUGIN_ERROR``, the exception is logged with the plugin's name, and the daemon and
every other session carry on. The one exception: raising a
:class:`sandboxd.errors.SandboxdError` subclass (say ``NotFound``) sends that error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import pluggy

if TYPE_CHECKING:
    from .plugin_types import (
        Deny,
        EngineLoad,
        ExecutionInfo,
        ExecutionLimits,
        HTTPRequest,
        Placement,
        Principal,
        Refusal,
        SandboxInfo,
        SandboxOptions,
    )

hookspec = pluggy.HookspecMarker("sandboxd")
hookimpl = pluggy.HookimplMarker("sandboxd")


# --- per connection -------------------------------------------------------------


@hookspec
def sandboxd_check_request(request: HTTPRequest) -> Refusal | None:
    """Screen an HTTP request or WebSocket handshake before anything else looks at it.

    Called once per connection, before authentication and before any upgrade (so a
    browser's cross-site handshake can be refused before it becomes a session).

    :param request: method, path, query, headers (lower-case names) and peer address.
    :returns: a :class:`Refusal` to answer with its HTTP status (e.g. 403) and close,
        or ``None`` to let the request through. The first refusal wins.
    """


@hookspec
def sandboxd_authenticate(request: HTTPRequest) -> Principal | None:
    """Say who is making a WebSocket handshake.

    Called before the upgrade. If any enabled plugin implements this hook,
    authentication is required: when no implementation returns a principal, the
    handshake is refused with HTTP 401 and never upgraded.

    :param request: the handshake, with query (``?token=``) and headers
        (``Authorization``).
    :returns: a :class:`Principal` to accept, or ``None`` to abstain. The first
        principal returned wins.
    """


@hookspec
def sandboxd_reload(force: bool) -> bool | None:
    """Re-read what the plugin loads from outside its settings (such as a tokens file).

    Called every ``plugins.reload_interval_seconds`` and, with ``force``, on SIGHUP.

    :param force: re-read even if nothing seems to have changed (SIGHUP).
    :returns: ``True`` if what the plugin decides may have changed: the daemon then
        authenticates every open session again (with its original handshake) and
        closes, with WebSocket code 1008, those that no longer get the same principal.
    """


# --- per session ----------------------------------------------------------------


@hookspec
def sandboxd_session_opened(session_id: str, principal: Principal, peer: str) -> None:
    """A client session started (after authentication), on any front end.

    Called once per session, before its first message is handled. May be async.

    :param session_id: the session's id (``s1``, ...), as later hooks and logs name it.
    :param principal: who authenticated (``ANONYMOUS`` without an auth plugin).
    :param peer: the client's address, ``host:port``.
    :returns: nothing; the value is ignored. A failure is logged, never refuses the session.
    """


@hookspec
def sandboxd_session_closed(session_id: str, principal: Principal) -> None:
    """A client session ended, for whatever reason (its executions go on).

    Called once per session that was opened, even when the daemon shuts down. May be
    async; it has a few seconds.

    :param session_id: the id :func:`sandboxd_session_opened` was given.
    :param principal: who the session belonged to.
    :returns: nothing; the value is ignored. A failure is logged.
    """


@hookspec
def sandboxd_authorize(principal: Principal, action: str, sandbox: SandboxInfo | None) -> Deny | bool | None:
    """Decide whether ``principal`` may do ``action``.

    Called before every ``create`` (``sandbox`` is None), and before ``view`` (listing;
    a denied sandbox is left out of the list silently), ``join``, ``execute``,
    ``stdin``, ``kill``, ``upload``, ``download`` (reading a file out of it) and
    ``remove`` on an existing sandbox. May be async.

    :param principal: who asks.
    :param action: one of the names above.
    :param sandbox: the sandbox concerned, or None for ``create``.
    :returns: ``None`` or ``True`` to allow (as far as this plugin cares); ``False`` or
        a :class:`Deny` to refuse: any refusal wins. ``Deny(hide=True)`` answers
        ``NOT_FOUND``, exactly as for an unknown id; otherwise ``FORBIDDEN``.
    """


@hookspec
def sandboxd_validate_command(
    principal: Principal, sandbox: SandboxInfo, command: Sequence[str],
    env: Mapping[str, str], workdir: str | None, program: str | None,
) -> str | None:
    """Check a command before it is created in the engine.

    Called for every ``execute-command``, after authorization, before files are
    uploaded. May be async.

    :param principal: who asks.
    :param sandbox: where it would run.
    :param command: the argv that would run.
    :param env: the environment the request adds.
    :param workdir: the working directory asked for, or None.
    :param program: ``command[0]`` as the sandbox resolves it: looked up in ``PATH``,
        every symlink followed (``/usr/bin/perl`` for an alias ``/tmp/p``); None if it
        does not resolve. Computed (one short helper run in the sandbox) only when an
        implementation declares this argument.
    :returns: a reason (a string) to reject, giving the client ``COMMAND_REJECTED``
        with that reason; ``None`` to accept. The first rejection wins.
    """


@hookspec
def sandboxd_sandbox_options(principal: Principal, options: SandboxOptions) -> SandboxOptions | None:
    """Adjust a sandbox about to be created (image, memory, CPU, pids, read-only root).

    Called before every sandbox is created (one-off ones too). Implementations are
    called in turn, each seeing the previous one's result. May be async.

    :param principal: who asks for the sandbox.
    :param options: the options so far: config defaults, the request's lower limits,
        earlier plugins' changes.
    :returns: a changed copy (``options.replace(...)``), or ``None`` to keep it. The
        daemon then clamps the result to the config: a plugin can only tighten limits.
        Raise :class:`sandboxd.errors.Forbidden` to refuse an image.
    """


@hookspec
def sandboxd_place_sandbox(
    principal: Principal, options: SandboxOptions, placement: Placement, candidates: Sequence[EngineLoad]
) -> str | Sequence[str] | None:
    """Choose, narrow or veto the engine a new sandbox goes to.

    Called for every sandbox about to be created when several engines are configured
    (``[[engines]]``), after :func:`sandboxd_sandbox_options`, with the engines that
    answer, satisfy the request's constraints and have room. Implementations are called
    in turn, each seeing the candidates the previous one left.

    :param principal: Who asks for the sandbox.
    :param options: What the sandbox will get (image and limits), as plugins left it.
    :param placement: The client's constraints (``engine``, ``labels``), already applied.
    :param candidates: The engines that may take it, least loaded first
        (:class:`~sandboxd.plugin_types.EngineLoad`: name, labels, sandboxes, running,
        room left).
    :returns: ``None`` to leave the choice to the daemon (least loaded first); an engine
        name from ``candidates`` to choose it; a list of names to keep only those (so a
        plugin can restrict which users reach which engines). An empty list, or raising
        :class:`sandboxd.errors.Forbidden`, vetoes: the client gets ``FORBIDDEN``.
    May be ``async def``.
    """


@hookspec
def sandboxd_execution_limits(principal: Principal, limits: ExecutionLimits) -> ExecutionLimits | None:
    """Adjust an execution's limits (timeout, output cap, concurrency).

    Called before every execution is created, in turn like
    :func:`sandboxd_sandbox_options`. May be async.

    :param principal: who starts the execution.
    :param limits: the limits so far: config defaults, the request's timeout, earlier
        plugins' changes.
    :returns: a changed copy (``limits.replace(...)``), or ``None`` to keep it. The
        result is clamped to what the config and the request allow.
    """


# --- per execution --------------------------------------------------------------


@hookspec
def sandboxd_execution_started(execution: ExecutionInfo) -> None:
    """An execution started.

    Called once the command runs and its starter was told its id. May be async; output
    flows meanwhile.

    :param execution: the execution (``status`` is not set yet); its ``send_event``
        reaches the clients following it.
    :returns: nothing; the value is ignored. A failure is logged, never stops the command.
    """


@hookspec
def sandboxd_execution_finished(execution: ExecutionInfo) -> None:
    """An execution ended.

    Called once ``execution-complete`` is on its way to the watchers (queued for the
    session that started the execution; written for the others), before a one-off
    sandbox is removed. May be async, with its own deadline
    (``finished_hook_timeout_seconds``). Events sent here are not ordered with
    ``execution-complete``: the starting session may get them just before or just after
    it. Clients that want them keep reading after it.

    :param execution: the execution, with ``status``, ``exit_code``, ``duration_ms``,
        ``truncated`` and ``bytes_out`` set; ``run_in_sandbox`` and ``send_event`` are
        there for follow-up work (such as a git commit).
    :returns: nothing; the value is ignored. A failure is logged and never changes the
        execution's status.
    """


def hook_names() -> list[str]:
    return [name for name, value in globals().items() if name.startswith("sandboxd_") and callable(value)]


__all__ = ["hookimpl", "hookspec", "hook_names"]



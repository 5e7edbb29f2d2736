"""Loading plugins, and the one facade through which the daemon calls their hooks.

pluggy has no async support (pluggy #320), so the facade calls each implementation
itself, in pluggy's order (``tryfirst``/``trylast``, then last registered first), awaits
what it returns, and interprets the results as :mod:`sandboxd.hookspecs` documents. It
also knows which plugin each result came from, so a plugin that raises is named in the
log and the request fails closed with ``PLUGIN_ERROR``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import pluggy
import trio
from pluggy import HookCaller

from . import hookspecs
from .config import Config, ConfigError, LimitsConfig, PluginsConfig, SandboxConfig
from .errors import CommandRejected, Forbidden, NotFound, PluginError, SandboxdError
from .placement import narrow
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

log = logging.getLogger(__name__)

#: The entry-point group plugins register under (first-party ones too).
ENTRY_POINT_GROUP = "sandboxd"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    #: Where it came from: "distribution==version", or "<registered>" for objects given
    #: directly (tests).
    source: str
    hooks: tuple[str, ...]
    enabled: bool


class Plugins:
    """The enabled plugins, and typed, awaited calls to their hooks."""

    def __init__(self, pm: pluggy.PluginManager, infos: list[PluginInfo], config: PluginsConfig | None = None) -> None:
        self.pm = pm
        self.infos = infos
        config = config or PluginsConfig()
        #: Deadline of one hook call; execution_finished (follow-up work) has its own.
        self.hook_timeout = config.hook_timeout_seconds
        self.finished_hook_timeout = config.finished_hook_timeout_seconds

    @property
    def auth_required(self) -> bool:
        """True when any enabled plugin authenticates: then every handshake must pass."""
        return bool(self.pm.hook.sandboxd_authenticate.get_hookimpls())

    # --- calling --------------------------------------------------------------------

    async def _each(self, hook: HookCaller, **kwargs: Any) -> Iterable[tuple[str, Any]]:
        """Call every implementation in pluggy's order; yield (plugin name, result)."""
        results = []
        for impl in reversed(hook.get_hookimpls()):
            results.append(await self._single(impl, hook.name, **kwargs))
        return results

    async def _notify(self, hook: HookCaller, **kwargs: Any) -> None:
        """Call a notification hook; failures are logged, never raised."""
        try:
            await self._each(hook, **kwargs)
        except SandboxdError as exc:
            log.warning("%s: %s", hook.name, exc.message)

    # --- notifications ------------------------------------------------------------------

    async def session_opened(self, session_id: str, principal: Principal, peer: str) -> None:
        await self._notify(self.pm.hook.sandboxd_session_opened, session_id=session_id, principal=principal,
                           peer=peer)

    async def session_closed(self, session_id: str, principal: Principal) -> None:
        await self._notify(self.pm.hook.sandboxd_session_closed, session_id=session_id, principal=principal)

    async def execution_started(self, execution: ExecutionInfo) -> None:
        await self._notify(self.pm.hook.sandboxd_execution_started, execution=execution)

    async def execution_finished(self, execution: ExecutionInfo) -> None:
        await self._notify(self.pm.hook.sandboxd_execution_finished, execution=execution)

    # --- the hooks, typed -------------------------------------------------------------

    async def check_request(self, request: HTTPRequest) -> Refusal | None:
        for _, result in await self._each(self.pm.hook.sandboxd_check_request, request=request):
            if isinstance(result, Refusal):
                return result
        return None

    async def authenticate(self, request: HTTPRequest) -> Principal | None:
        for _, result in await self._each(self.pm.hook.sandboxd_authenticate, request=request):
            if isinstance(result, Principal):
                return result
        return None

    async def reload(self, *, force: bool) -> bool:
        """Let plugins re-read their outside state; True if any says it changed."""
        return any(result is True for _, result in await self._each(self.pm.hook.sandboxd_reload, force=force))

    async def authorize(
        self, principal: Principal, action: str, sandbox: SandboxInfo | None, *, asked_as: str | None = None
    ) -> None:
        """Raise unless every plugin allows ``action``.

        Raises:
            NotFound: a plugin denied with ``hide=True`` (the same answer as an unknown id).
            Forbidden: a plugin denied otherwise.
        """
        for plugin, result in await self._each(
            self.pm.hook.sandboxd_authorize, principal=principal, action=action, sandbox=sandbox
        ):
            if result is False:
                result = Deny()
            if isinstance(result, Deny):
                log.info("plugin %r denied %s %s for %s", plugin, action, sandbox.id[:12] if sandbox else "", principal.user)
                if result.hide and sandbox is not None:
                    raise NotFound.sandbox(asked_as or sandbox.id)
                raise Forbidden(f"{action} refused: {result.reason}")

    async def allowed(self, principal: Principal, action: str, sandbox: SandboxInfo) -> bool:
        try:
            await self.authorize(principal, action, sandbox)
        except (NotFound, Forbidden):
            return False
        return True

    async def validate_command(
        self, principal: Principal, sandbox: SandboxInfo, command: tuple[str, ...],
        env: dict[str, str], workdir: str | None,
        resolve: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        """``resolve`` gives ``command[0]``'s canonical path; awaited only if a plugin
        asks for ``program``."""
        impls = self.pm.hook.sandboxd_validate_command.get_hookimpls()
        program = None
        if resolve is not None and any("program" in impl.argnames for impl in impls):
            program = await resolve()
        for plugin, result in await self._each(
            self.pm.hook.sandboxd_validate_command, principal=principal, sandbox=sandbox,
            command=command, env=env, workdir=workdir, program=program,
        ):
            if result:
                raise CommandRejected(str(result), plugin=plugin)

    async def sandbox_options(self, principal: Principal, options: SandboxOptions, ceiling: SandboxConfig) -> SandboxOptions:
        """Let plugins adjust ``options`` in turn, then clamp to what they started from."""
        new = await self._chain(self.pm.hook.sandboxd_sandbox_options, "options", options, principal=principal)
        return new.replace(
            memory_bytes=min(new.memory_bytes, options.memory_bytes, ceiling.memory_bytes),
            cpus=min(new.cpus, options.cpus, ceiling.cpus),
            pids_limit=min(new.pids_limit, options.pids_limit, ceiling.pids_limit),
            read_only_root=new.read_only_root or options.read_only_root or ceiling.read_only_root,
        )

    async def place_sandbox(
        self, principal: Principal, options: SandboxOptions, placement: Placement, candidates: list[EngineLoad]
    ) -> list[EngineLoad]:
        """The candidates left after every ``sandboxd_place_sandbox`` implementation,
        best first.

        Raises:
            Forbidden: a plugin vetoed (an empty list, or it raised Forbidden).
        """
        for impl in reversed(self.pm.hook.sandboxd_place_sandbox.get_hookimpls()):
            plugin, answer = await self._single(
                impl, "sandboxd_place_sandbox", principal=principal, options=options, placement=placement,
                candidates=list(candidates))
            candidates = narrow(candidates, answer, plugin)
            if not candidates:
                raise Forbidden(f"policy (plugin {plugin!r}) places this sandbox on no engine")
        return candidates

    async def execution_limits(self, principal: Principal, limits: ExecutionLimits, ceiling: LimitsConfig) -> ExecutionLimits:
        """Let plugins adjust ``limits`` in turn, then clamp to what they started from."""
        new = await self._chain(self.pm.hook.sandboxd_execution_limits, "limits", limits, principal=principal)
        return new.replace(
            timeout_seconds=min(new.timeout_seconds, limits.timeout_seconds),
            max_output_bytes=min(new.max_output_bytes, limits.max_output_bytes, ceiling.max_output_bytes),
            max_concurrent=min(new.max_concurrent, limits.max_concurrent, ceiling.max_executions),
        )

    async def _chain(self, hook: HookCaller, key: str, value: Any, **kwargs: Any) -> Any:
        """Each implementation sees the previous one's result; None keeps the value."""
        for impl in reversed(hook.get_hookimpls()):
            _, result = await self._single(impl, hook.name, **kwargs, **{key: value})
            if isinstance(result, type(value)):
                value = result
        return value

    async def _single(self, impl: Any, hook_name: str, **kwargs: Any) -> tuple[str, Any]:
        """Call one implementation; a plain exception, or an awaitable that misses the
        deadline, becomes :class:`PluginError`."""
        deadline = self.finished_hook_timeout if hook_name == "sandboxd_execution_finished" else self.hook_timeout
        try:
            result = impl.function(**{k: kwargs[k] for k in impl.argnames})
            if inspect.isawaitable(result):
                with trio.fail_after(deadline):
                    result = await result
        except SandboxdError:
            raise
        except trio.TooSlowError:
            log.error("plugin %r did not answer %s within %ss", impl.plugin_name, hook_name, deadline)
            raise PluginError(impl.plugin_name, hook_name) from None
        except Exception:
            log.exception("plugin %r raised in %s", impl.plugin_name, hook_name)
            raise PluginError(impl.plugin_name, hook_name) from None
        return impl.plugin_name, result


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("sandboxd")
    pm.add_hookspecs(hookspecs)
    return pm


def available_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_plugins(config: Config, extra: Iterable[tuple[str, object]] = ()) -> Plugins:
    """Load the plugins ``config.plugins`` enables, plus ``extra`` (name, object) pairs.

    An entry point may name a module (its functions are the hooks) or a class, which
    is instantiated with the plugin's ``[plugins.NAME]`` table as a dict.

    Raises:
        ConfigError: an enabled plugin is not installed, fails to load, or rejects its
            settings; or settings are given for a plugin that is not enabled.
    """
    pc: PluginsConfig = config.plugins
    where = f"{config.source or '<defaults>'}: [plugins]"
    available = available_plugins()
    wanted = set(available) if "*" in pc.enabled else set(pc.enabled)
    wanted -= set(pc.disabled)
    for name in wanted - set(available):
        raise ConfigError(f"{where} enabled: no installed plugin named {name!r} (installed: {', '.join(sorted(available)) or 'none'})")
    for name in set(pc.settings) - wanted:
        raise ConfigError(f"{where}: settings given for plugin {name!r}, which is not enabled")
    pm = make_plugin_manager()
    infos = []
    for name, ep in sorted(available.items()):
        enabled = name in wanted
        if enabled:
            try:
                obj = ep.load()
                if isinstance(obj, type):
                    obj = obj(dict(pc.settings.get(name, {})))
            except ConfigError as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from None
            except Exception as exc:
                raise ConfigError(f"{where}: plugin {name!r} failed to load: {exc!r}") from exc
            pm.register(obj, name=name)
        dist = ep.dist
        source = f"{dist.name}=={dist.version}" if dist is not None else ep.value
        infos.append(PluginInfo(name, source, _hooks_of(pm, name) if enabled else (), enabled))
    for name, obj in extra:
        pm.register(obj, name=name)
        infos.append(PluginInfo(name, "<registered>", _hooks_of(pm, name), True))
    _check_hooks(pm, where)
    return Plugins(pm, infos, pc)


def _check_hooks(pm: pluggy.PluginManager, where: str) -> None:
    """Refuse a plugin that implements a hook sandboxd does not have (a misspelt name
    would otherwise never be called, and nobody would be told)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        unknown = sorted(caller.name for caller in pm.get_hookcallers(exc.plugin) or ()
                         if not caller.has_spec() and any(not i.optionalhook for i in caller.get_hookimpls()))
        raise ConfigError(
            f"{where}: plugin {name!r} implements {', '.join(map(repr, unknown)) or 'a hook'}, which sandboxd does not"
            f" have (hooks: {', '.join(hookspecs.hook_names())})") from None


def _hooks_of(pm: pluggy.PluginManager, name: str) -> tuple[str, ...]:
    plugin = pm.get_plugin(name)
    return tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))


__all__ = ["Plugins", "PluginInfo", "load_plugins", "ENTRY_POINT_GROUP"]

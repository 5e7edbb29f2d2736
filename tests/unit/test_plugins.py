"""The plugin facade: sync and async hooks, refusals, clamping, and failing closed."""

from __future__ import annotations

import inspect

import pytest

import sandboxd
from sandboxd import hookspecs
from sandboxd.config import Config, ConfigError, parse_config
from sandboxd.errors import CommandRejected, Forbidden, NotFound, PluginError
from sandboxd.plugin_types import (
    Deny,
    ExecutionLimits,
    HTTPRequest,
    Principal,
    SandboxInfo,
)
from sandboxd.plugins import load_plugins

ALICE = Principal("alice", frozenset({"user"}))
SANDBOX = SandboxInfo("c" * 64, "img", "bob")


def plugins_with(*objs):
    return load_plugins(Config(), extra=[(f"p{i}", o) for i, o in enumerate(objs)])


class AsyncAuth:
    @sandboxd.hookimpl
    async def sandboxd_authenticate(self, request):
        return Principal("alice") if request.query.get("token") == "t" else None


def request(**query):
    return HTTPRequest("GET", "/sandbox/ws", query, {}, "127.0.0.1:1")


def test_every_hookspec_is_documented_with_its_arguments():
    for name in hookspecs.hook_names():
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 40, f"{name} needs a docstring"
        assert not getattr(fn, "sandboxd_spec", {}).get("firstresult"), f"{name}: async hooks cannot be firstresult"


async def test_async_hooks_are_awaited_and_auth_becomes_required():
    plugins = plugins_with(AsyncAuth())
    assert plugins.auth_required
    assert await plugins.authenticate(request(token="t")) == Principal("alice")
    assert await plugins.authenticate(request(token="x")) is None
    assert not plugins_with().auth_required


async def test_any_denial_wins_and_hide_means_not_found():
    class Hide:
        @sandboxd.hookimpl
        def sandboxd_authorize(self, principal, sandbox):
            return Deny(hide=True) if sandbox and sandbox.owner != principal.user else None

    class No:
        @sandboxd.hookimpl
        def sandboxd_authorize(self, action):
            return False if action == "remove" else True

    plugins = plugins_with(Hide(), No())
    with pytest.raises(NotFound, match="no such sandbox: cccc"):
        await plugins.authorize(ALICE, "join", SANDBOX, asked_as="cccc")
    with pytest.raises(Forbidden):
        await plugins.authorize(ALICE, "remove", SandboxInfo("d", "img", "alice"))
    await plugins.authorize(ALICE, "join", SandboxInfo("d", "img", "alice"))
    assert not await plugins.allowed(ALICE, "view", SANDBOX)


async def test_a_raising_plugin_fails_closed_with_its_name():
    class Boom:
        @sandboxd.hookimpl
        def sandboxd_validate_command(self, command):
            raise ValueError("bug")

    plugins = load_plugins(Config(), extra=[("boom", Boom())])
    with pytest.raises(PluginError) as info:
        await plugins.validate_command(ALICE, SANDBOX, ("ls",), {}, None)
    assert info.value.code == "PLUGIN_ERROR" and "'boom'" in info.value.message


async def test_rejection_reason_is_kept():
    class Reject:
        @sandboxd.hookimpl
        def sandboxd_validate_command(self, command):
            return "no ls today" if command[0] == "ls" else None

    with pytest.raises(CommandRejected) as info:
        await plugins_with(Reject()).validate_command(ALICE, SANDBOX, ("ls",), {}, None)
    assert info.value.reason == "no ls today" and info.value.code == "COMMAND_REJECTED"


async def test_plugins_can_only_tighten_limits():
    class Greedy:
        @sandboxd.hookimpl
        def sandboxd_execution_limits(self, limits):
            return limits.replace(timeout_seconds=10_000, max_output_bytes=1, max_concurrent=10_000)

        @sandboxd.hookimpl
        def sandboxd_sandbox_options(self, options):
            return options.replace(memory_bytes=1 << 40, pids_limit=5)

    cfg = Config()
    plugins = plugins_with(Greedy())
    limits = await plugins.execution_limits(ALICE, ExecutionLimits(60, 1 << 30, 100), cfg.limits)
    assert (limits.timeout_seconds, limits.max_output_bytes, limits.max_concurrent) == (60, 1, 100)
    from sandboxd.plugin_types import SandboxOptions

    options = await plugins.sandbox_options(ALICE, SandboxOptions("img", 1 << 20, 1.0, 100, False), cfg.sandbox)
    assert (options.memory_bytes, options.pids_limit) == (1 << 20, 5)


def test_enabling_an_unknown_plugin_or_configuring_a_disabled_one_is_an_error():
    with pytest.raises(ConfigError, match="no installed plugin named 'nope'"):
        load_plugins(parse_config({"plugins": {"enabled": ["nope"]}}))
    with pytest.raises(ConfigError, match="not enabled"):
        load_plugins(parse_config({"plugins": {"audit_log": {"path": "/tmp/x"}}}))


def test_first_party_plugins_check_their_settings():
    with pytest.raises(ConfigError, match=r"token_auth.*tokens\[0\] sha256"):
        load_plugins(parse_config({"plugins": {"enabled": ["token_auth"],
                                               "token_auth": {"tokens": [{"user": "a", "sha256": "zz"}]}}}))
    with pytest.raises(ConfigError, match="unknown key 'deny_program'"):
        load_plugins(parse_config({"plugins": {"enabled": ["command_policy"],
                                               "command_policy": {"rules": [{"deny_program": ["rm"]}]}}}))


def test_disabled_wins_over_star():
    plugins = load_plugins(parse_config({"plugins": {"enabled": ["*"], "disabled": ["token_auth", "audit_log"],
                                                     "ownership": {}}}))
    enabled = {p.name for p in plugins.infos if p.enabled}
    assert "ownership" in enabled and "token_auth" not in enabled and "audit_log" not in enabled


def test_every_hookspec_documents_when_it_is_called_each_argument_and_its_return():
    for name in hookspecs.hook_names():
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        for arg in inspect.signature(fn).parameters:
            assert f":param {arg}:" in doc, f"{name}: no :param {arg}: line"
        assert ":returns:" in doc, f"{name}: no :returns: line"
        assert "Called" in doc, f"{name}: does not say when it is called"


def test_a_plugin_implementing_an_unknown_hook_is_refused_with_its_name():
    class Misspelt:
        @sandboxd.hookimpl
        def sandboxd_execution_finshed(self, execution):
            pass

    with pytest.raises(ConfigError, match=r"'typo'.*'sandboxd_execution_finshed'"):
        load_plugins(Config(), extra=[("typo", Misspelt())])

"""The public plugin API: what third-party plugins may import from ``sandboxd``."""

import sandboxd

PUBLIC = {
    "ANONYMOUS", "CommandRejected", "ConfigError", "Deny", "ExecutionInfo", "ExecutionLimits", "Forbidden",
    "HTTPRequest", "NotFound", "Principal", "Refusal", "RunResult", "SandboxInfo",
    "SandboxOptions", "SandboxdError", "hookimpl",
    # the SDK (docs/sdk.md), imported on first use
    "AsyncClient", "AsyncSandbox", "Client", "ExecutionResult", "Sandbox",
}


def test_public_api_is_exactly_this():
    names = {n for n in dir(sandboxd) if not n.startswith("_")}
    modules = {n for n in names if type(getattr(sandboxd, n)).__name__ == "module"}
    assert names - modules == PUBLIC

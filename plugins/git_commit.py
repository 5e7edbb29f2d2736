"""git_commit: commit the sandbox's working directory after each execution.

After an execution finishes, runs git *inside the sandbox*, as the sandbox's user (the
host never runs git on files the sandbox controls): ``git init`` on first use, ``git add
-A``, and a commit authored by the principal, when anything changed. The session then
gets ``git-committed {executionId, containerId, commit}``. If git is missing or the
commit fails, the session gets a ``warning`` (code ``GIT_COMMIT_FAILED``); the
execution's own status never changes::

    [plugins.git_commit]
    when = "always"            # or "uploads": only executions that had files uploaded
    email_domain = "sandboxd.invalid"
"""

from __future__ import annotations

import logging
import shlex
from typing import Any, Mapping

from sandboxd import hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys, typed

log = logging.getLogger(__name__)

_SCRIPT = r"""
command -v git >/dev/null 2>&1 || { echo "git is not installed in the sandbox" >&2; exit 127; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || git init -q || exit 1
git add -A || exit 1
git diff --cached --quiet && { echo NOCHANGE; exit 0; }
git -c user.name="$1" -c user.email="$2" -c commit.gpgsign=false commit -q -m "$3" || exit 1
git rev-parse HEAD
"""


class GitCommit:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"when", "email_domain"})
        self.when = typed(settings, "when", str, "always")
        if self.when not in ("always", "uploads"):
            raise ConfigError("when: expected \"always\" or \"uploads\"")
        self.domain = typed(settings, "email_domain", str, "sandboxd.invalid")

    @hookimpl
    async def sandboxd_execution_finished(self, execution: Any) -> None:
        if execution.status == "error" or (self.when == "uploads" and not execution.uploaded):
            return
        user = execution.principal.user
        message = f"sandboxd: {shlex.join(execution.command)}"[:2000] + f"\n\nExecution: {execution.id}\nStatus: {execution.status} (exit {execution.exit_code})"
        result = await execution.run_in_sandbox(
            ["/bin/sh", "-c", _SCRIPT, "sandboxd-git", user, f"{user}@{self.domain}", message]
        )
        out = result.stdout.decode("utf-8", "replace").strip()
        if result.exit_code == 0 and out == "NOCHANGE":
            return
        if result.exit_code == 0 and len(out) in (40, 64):
            await execution.send_event("git-committed", {"commit": out})
            return
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
        if result.exit_code == 127 and "not installed" in reason[0]:
            reason = ["git is not installed in the sandbox"]
        await execution.send_event("warning", {"code": "GIT_COMMIT_FAILED", "message": f"git commit failed: {reason[0]}"})

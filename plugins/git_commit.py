"""git_commit: commit the sandbox's working directory after each execution.

After an execution finishes, runs git *inside the sandbox*, as the sandbox's user (the
host never runs git on files the sandbox controls): ``git init`` on first use, ``git add
-A``, and a commit authored by the principal, when anything changed. The session then
gets ``git-committed {executionId, containerId, commit}``. If git is missing, the commit
fails or takes longer than ``timeout_seconds``, the session gets a ``warning`` (code
``GIT_COMMIT_FAILED``); the execution's own status never changes::

    [plugins.git_commit]
    when = "always"            # or "uploads": only executions that had files uploaded
    email_domain = "sandboxd.invalid"
    timeout_seconds = 10.0     # then every process of the helper is killed

What the sandbox can plant does not run: git is called with ``core.hooksPath=/dev/null``
(no hooks) and ``core.fsmonitor=`` (no monitor command), with no global or system
config (``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM=1``: ``~/.gitconfig``
and ``/etc/gitconfig`` are ignored) and commit signing off. The repository's own
``.git/config`` (and what it includes) is honoured otherwise: ``.gitignore``, and
clean filters named by ``.gitattributes``, do run, as the sandbox's user inside the
sandbox, like any command the sandbox runs, and are bounded by the timeout.
"""

from __future__ import annotations

import logging
import shlex
from typing import Any, Mapping

from sandboxd import hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys, typed

log = logging.getLogger(__name__)

# $1 timeout (s), $2 author name, $3 author email, $4 message. Every process the helper
# starts carries SANDBOXD_GIT_HELPER, so on the timeout all of them (a filter that never
# returns and what it started) are killed, not just git.
_SCRIPT = r"""
t=$1; shift
command -v git >/dev/null 2>&1 || { echo "git is not installed in the sandbox" >&2; exit 127; }
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 SANDBOXD_GIT_HELPER=$$
reap() {
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if [ "$p" != "$$" ] && tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qxF "SANDBOXD_GIT_HELPER=$$"; then
      kill -9 "$p" 2>/dev/null
    fi
  done
}
g() { git -c core.hooksPath=/dev/null -c core.fsmonitor= -c commit.gpgsign=false "$@"; }
(
  g rev-parse --is-inside-work-tree >/dev/null 2>&1 || g init -q || exit 1
  g add -A || exit 1
  g diff --cached --quiet && { echo NOCHANGE; exit 0; }
  g -c user.name="$1" -c user.email="$2" commit -q -m "$3" || exit 1
  g rev-parse HEAD
) &
job=$!
sleep "$t" &
timer=$!
while kill -0 "$job" 2>/dev/null && kill -0 "$timer" 2>/dev/null; do sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then
  reap
  echo "timed out after $t s (the helper and everything it started were killed)" >&2
  exit 124
fi
wait "$job"; rc=$?
reap
exit "$rc"
"""


class GitCommit:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"when", "email_domain", "timeout_seconds"})
        self.when = typed(settings, "when", str, "always")
        if self.when not in ("always", "uploads"):
            raise ConfigError("when: expected \"always\" or \"uploads\"")
        self.domain = typed(settings, "email_domain", str, "sandboxd.invalid")
        self.timeout = float(typed(settings, "timeout_seconds", (int, float), 10.0))
        if not 0 < self.timeout <= 3600:
            raise ConfigError("timeout_seconds: expected a number of seconds between 0 and 3600")

    @hookimpl
    async def sandboxd_execution_finished(self, execution: Any) -> None:
        if execution.status == "error" or (self.when == "uploads" and not execution.uploaded):
            return
        user = execution.principal.user
        message = f"sandboxd: {shlex.join(execution.command)}"[:2000] + f"\n\nExecution: {execution.id}\nStatus: {execution.status} (exit {execution.exit_code})"
        result = await execution.run_in_sandbox(
            ["/bin/sh", "-c", _SCRIPT, "sandboxd-git", f"{self.timeout:g}", user, f"{user}@{self.domain}", message]
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

"""The execution record: how an execution is described on the wire, live or stored.

Live executions (:meth:`sandboxd.execution.Execution.record`) and the store
(:mod:`sandboxd.logstore`) both build it with :func:`execution_record`, so its shape is
written once.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Optional, Sequence, TypedDict


class Status(str, Enum):
    """How an execution stands; the value is what the wire and the store carry."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    ERROR = "error"
    #: The daemon stopped while it ran (found at the next start).
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


ByteCounts = TypedDict("ByteCounts", {"stdout": int, "stderr": int})

ExecutionRecord = TypedDict("ExecutionRecord", {
    "executionId": str,
    "containerId": str,
    "image": Optional[str],
    "owner": Optional[str],
    "command": list,
    "workdir": Optional[str],
    "status": str,
    "exitCode": Optional[int],
    "reason": Optional[str],
    "startedAt": float,
    "finishedAt": Optional[float],
    "durationMs": int,
    "bytes": ByteCounts,
    "truncated": bool,
    "errorCode": Optional[str],
})


def execution_record(
    *, id: str, container_id: str, image: str | None, owner: str | None, command: Sequence[str],
    workdir: str | None, status: str, exit_code: int | None, reason: str | None, started_at: float,
    finished_at: float | None, stdout_bytes: int, stderr_bytes: int, truncated: bool, error_code: str | None,
) -> ExecutionRecord:
    """The one place an execution record is built (``durationMs`` runs on until it ends)."""
    return {
        "executionId": id,
        "containerId": container_id,
        "image": image,
        "owner": owner,
        "command": list(command),
        "workdir": workdir,
        "status": str(status),
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started_at,
        "finishedAt": finished_at,
        "durationMs": int(((finished_at or time.time()) - started_at) * 1000),
        "bytes": {"stdout": stdout_bytes, "stderr": stderr_bytes},
        "truncated": truncated,
        "errorCode": error_code,
    }

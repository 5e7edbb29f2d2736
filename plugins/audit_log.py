"""audit_log: one JSON line per execution, appended to a file.

Each line: ``time`` (Unix seconds at the end), ``executionId``, ``user``, ``roles``,
``containerId``, ``image``, ``command``, ``workdir``, ``status``, ``exitCode``,
``durationMs``, ``bytesOut`` ({stdout, stderr}), ``truncated``::

    [plugins.audit_log]
    path = "/var/log/sandboxd/audit.jsonl"
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

from sandboxd import hookimpl
from sandboxd.config import ConfigError

from ._settings import check_keys


class AuditLog:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"path"})
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("path: expected the file to append to")
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ConfigError(f"path: directory {parent} does not exist")

    @hookimpl
    def sandboxd_execution_finished(self, execution: Any) -> None:
        record = {
            "time": round(time.time(), 3),
            "executionId": execution.id,
            "user": execution.principal.user,
            "roles": sorted(execution.principal.roles),
            "containerId": execution.sandbox.id,
            "image": execution.sandbox.image,
            "command": list(execution.command),
            "workdir": execution.workdir,
            "status": execution.status,
            "exitCode": execution.exit_code,
            "durationMs": execution.duration_ms,
            "bytesOut": dict(execution.bytes_out),
            "truncated": execution.truncated,
        }
        # One small append per execution; O_APPEND keeps concurrent lines whole.
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

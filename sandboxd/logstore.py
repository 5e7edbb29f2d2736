"""Durable execution records and output logs.

Every execution's output is appended, as it streams, to one file per execution under
``<state dir>/logs/``: a sequence of records ``[stream (1 byte), offset (8), timestamp
(8, float), length (4)]`` followed by ``length`` bytes, where ``offset`` is the byte
offset in that stream. Metadata (who, where, what, how it ended, bytes per stream) is
kept in SQLite (``<state dir>/executions.sqlite3``).

The log is also how watchers catch up: a session that only watches an execution (it
joined the sandbox, or attached later) reads the file from its own offset and is woken
when more is written, so a slow watcher costs a file position, not a buffer, and 100 of
them cost no more memory than one.

Trade-off: writes and SQLite updates are small synchronous calls on the event loop
(page-cache writes, one ``writev`` per chunk, no thread hop); a state directory on slow
or network storage would stall the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import trio

from .protocol import ExecutionRecord, execution_record

log = logging.getLogger(__name__)

RECORD = struct.Struct(">BQdI")
#: Largest piece a reader hands out at once (bounds each watcher's memory).
READ_CHUNK = 64 * 1024


class ExecutionLog:
    """The append side of one execution's log, while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        #: Bytes in the file; readers may read up to here.
        self.size = 0
        self.closed = False
        self._grew = trio.Event()

    def append(self, stream_id: int, offset: int, pieces: Sequence[bytes | memoryview], nbytes: int) -> None:
        header = RECORD.pack(stream_id, offset, time.time(), nbytes)
        written = os.writev(self._fd, [header, *pieces])
        if written != RECORD.size + nbytes:  # pragma: no cover - a full disk, say
            raise OSError(f"short write to {self.path}")
        self.size += written
        if self._grew.statistics().tasks_waiting:  # wake watchers; no allocation when none wait
            self._grew.set()
            self._grew = trio.Event()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)
            self._grew.set()

    async def wait_beyond(self, size: int) -> None:
        """Return once the log is larger than ``size`` or closed."""
        while self.size <= size and not self.closed:
            await self._grew.wait()


@dataclass
class Piece:
    stream_id: int
    offset: int
    timestamp: float
    data: bytes


class LogReader:
    """Reads one log from the start, skipping what a client already has (``since``)."""

    def __init__(self, path: Path, since: dict[int, int] | None = None) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.position = 0
        self._since = since or {}
        self._pending: tuple[int, int, float, int] | None = None  # a record header being read

    def close(self) -> None:
        self._file.close()

    def read(self, limit: int) -> list[Piece]:
        """Pieces from the current position up to byte ``limit`` of the file."""
        out: list[Piece] = []
        budget = READ_CHUNK
        while self.position < limit and budget > 0:
            if self._pending is None:
                if limit - self.position < RECORD.size:
                    break
                header = self._file.read(RECORD.size)
                if len(header) < RECORD.size:
                    break
                self.position += RECORD.size
                sid, offset, ts, length = RECORD.unpack(header)
                self._pending = (sid, offset, ts, length)
            sid, offset, ts, length = self._pending
            skip = min(max(0, self._since.get(sid, 0) - offset), length, limit - self.position)
            if skip:
                # Already with the client: seek past it instead of reading it.
                self._file.seek(skip, os.SEEK_CUR)
                self.position += skip
                offset, length = offset + skip, length - skip
                self._pending = (sid, offset, ts, length) if length else None
                continue
            take = min(length, budget, limit - self.position)
            if take == 0 and length:
                break
            data = self._file.read(take)
            self.position += len(data)
            budget -= len(data)
            self._pending = (sid, offset + len(data), ts, length - len(data)) if len(data) < length else None
            if data:
                out.append(Piece(sid, offset, ts, data))
        return out


class ExecutionRecords:
    """Execution metadata in SQLite, and the log directory beside it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(state_dir / "executions.sqlite3", isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("""
            CREATE TABLE IF NOT EXISTS executions (
                id TEXT PRIMARY KEY,
                container_id TEXT NOT NULL,
                image TEXT,
                owner TEXT,
                command TEXT NOT NULL,
                workdir TEXT,
                status TEXT NOT NULL,
                exit_code INTEGER,
                reason TEXT,
                started_at REAL NOT NULL,
                finished_at REAL,
                stdout_bytes INTEGER NOT NULL DEFAULT 0,
                stderr_bytes INTEGER NOT NULL DEFAULT 0,
                truncated INTEGER NOT NULL DEFAULT 0,
                log_bytes INTEGER NOT NULL DEFAULT 0,
                error_code TEXT
            )""")
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(executions)")}
        if "error_code" not in columns:  # state from sandboxd 0.1.0 before error codes
            self.db.execute("ALTER TABLE executions ADD COLUMN error_code TEXT")
        self.db.execute("CREATE INDEX IF NOT EXISTS by_container ON executions (container_id, started_at)")

    def close(self) -> None:
        self.db.close()

    def log_path(self, execution_id: str) -> Path:
        return self.log_dir / f"{execution_id}.log"

    def mark_interrupted(self) -> list[tuple[str, str]]:
        """At start: executions the previous daemon left running were cut off.

        Returns their (execution id, container id) pairs.
        """
        cut_off = [(r["id"], r["container_id"])
                   for r in self.db.execute("SELECT id, container_id FROM executions WHERE status='running'")]
        self.db.execute(
            "UPDATE executions SET status='interrupted', reason='the daemon stopped while it ran',"
            " finished_at=? WHERE status='running'", (time.time(),))
        for execution_id, _ in cut_off:
            self._sync_log_bytes(execution_id)
        return cut_off

    def _sync_log_bytes(self, execution_id: str) -> None:
        try:
            size = self.log_path(execution_id).stat().st_size
        except OSError:
            size = 0
        stdout = stderr = 0
        if size:
            for piece in _all_pieces(self.log_path(execution_id)):
                if piece.stream_id == 1:
                    stdout = max(stdout, piece.offset + len(piece.data))
                else:
                    stderr = max(stderr, piece.offset + len(piece.data))
        self.db.execute("UPDATE executions SET log_bytes=?, stdout_bytes=?, stderr_bytes=? WHERE id=?",
                        (size, stdout, stderr, execution_id))

    def started(self, *, id: str, container_id: str, image: str, owner: str, command: Sequence[str],
                workdir: str | None, started_at: float) -> None:
        self.db.execute(
            "INSERT INTO executions (id, container_id, image, owner, command, workdir, status, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
            (id, container_id, image, owner, json.dumps(list(command)), workdir, started_at))

    def finished(self, *, id: str, status: str, exit_code: int | None, reason: str | None, finished_at: float,
                 stdout_bytes: int, stderr_bytes: int, truncated: bool, log_bytes: int,
                 error_code: str | None = None) -> None:
        self.db.execute(
            "UPDATE executions SET status=?, exit_code=?, reason=?, finished_at=?, stdout_bytes=?,"
            " stderr_bytes=?, truncated=?, log_bytes=?, error_code=? WHERE id=?",
            (str(status), exit_code, reason, finished_at, stdout_bytes, stderr_bytes, int(truncated), log_bytes,
             error_code, id))

    def get(self, execution_id: str) -> ExecutionRecord | None:
        row = self.db.execute("SELECT * FROM executions WHERE id=?", (execution_id,)).fetchone()
        return _describe(row) if row else None

    def list(self, container_id: str | None = None, limit: int = 200) -> list[ExecutionRecord]:
        if container_id:
            rows = self.db.execute("SELECT * FROM executions WHERE container_id=? ORDER BY started_at DESC LIMIT ?",
                                   (container_id, limit))
        else:
            rows = self.db.execute("SELECT * FROM executions ORDER BY started_at DESC LIMIT ?", (limit,))
        return [_describe(r) for r in rows]

    def prune(self, *, max_age_seconds: float, max_total_bytes: int) -> list[str]:
        """Delete finished executions older than the age limit, then the oldest until the
        logs fit in ``max_total_bytes``; return the ids removed."""
        removed = []
        cutoff = time.time() - max_age_seconds
        finished = self.db.execute(
            "SELECT id, finished_at, log_bytes FROM executions WHERE status != 'running' ORDER BY finished_at"
        ).fetchall()
        total = self.db.execute("SELECT COALESCE(SUM(log_bytes), 0) FROM executions").fetchone()[0]
        for row in finished:
            if (row["finished_at"] or 0) < cutoff or total > max_total_bytes:
                removed.append(row["id"])
                total -= row["log_bytes"]
        for execution_id in removed:
            self.db.execute("DELETE FROM executions WHERE id=?", (execution_id,))
            try:
                self.log_path(execution_id).unlink()
            except FileNotFoundError:
                pass
        return removed


def _all_pieces(path: Path) -> Iterator[Piece]:
    reader = LogReader(path)
    try:
        size = path.stat().st_size
        while pieces := reader.read(size):
            yield from pieces
    finally:
        reader.close()


def _describe(row: sqlite3.Row) -> ExecutionRecord:
    """A stored record as the protocol shows it."""
    return execution_record(
        id=row["id"], container_id=row["container_id"], image=row["image"], owner=row["owner"],
        command=json.loads(row["command"]), workdir=row["workdir"], status=row["status"],
        exit_code=row["exit_code"], reason=row["reason"], started_at=row["started_at"],
        finished_at=row["finished_at"], stdout_bytes=row["stdout_bytes"], stderr_bytes=row["stderr_bytes"],
        truncated=bool(row["truncated"]), error_code=row["error_code"],
    )

"""The output log: records round-trip, and readers resume from any offset."""

from __future__ import annotations

import time

from sandboxd.logstore import ExecutionLog, ExecutionRecords, LogReader


def write_log(path, chunks):
    log = ExecutionLog(path)
    offsets = {1: 0, 2: 0}
    for sid, data in chunks:
        log.append(sid, offsets[sid], [data[:3], memoryview(data)[3:]], len(data))
        offsets[sid] += len(data)
    log.close()
    return log


def read_all(path, since=None):
    reader = LogReader(path, since)
    out = {1: bytearray(), 2: bytearray()}
    first = {}
    size = path.stat().st_size
    while pieces := reader.read(size):
        for p in pieces:
            first.setdefault(p.stream_id, p.offset)
            assert p.offset == first[p.stream_id] + len(out[p.stream_id]) - 0
            out[p.stream_id] += p.data
    reader.close()
    return out, first


def test_records_round_trip_in_order(tmp_path):
    path = tmp_path / "e.log"
    chunks = [(1, b"hello "), (2, b"oops\n"), (1, b"world\n")]
    log = write_log(path, chunks)
    assert log.size == path.stat().st_size
    out, _ = read_all(path)
    assert bytes(out[1]) == b"hello world\n" and bytes(out[2]) == b"oops\n"


def test_reader_resumes_from_offsets_far_into_the_log(tmp_path):
    path = tmp_path / "e.log"
    chunks = [(1, bytes([i % 251]) * 10_000) for i in range(300)] + [(2, b"tail")]
    write_log(path, chunks)
    whole = b"".join(d for s, d in chunks if s == 1)
    out, first = read_all(path, {1: 2_500_005, 2: 2})
    assert first == {1: 2_500_005, 2: 2}
    assert bytes(out[1]) == whole[2_500_005:] and bytes(out[2]) == b"il"


def test_retention_prunes_by_age_then_by_size(tmp_path):
    records = ExecutionRecords(tmp_path)
    now = time.time()
    for i, age in enumerate([1000, 10, 5]):
        eid = f"exec-{i}"
        records.started(id=eid, container_id="c", image="i", owner="u", command=["x"], workdir=None,
                        started_at=now - age)
        records.log_path(eid).write_bytes(b"x" * 100)
        records.finished(id=eid, status="success", exit_code=0, reason=None, finished_at=now - age,
                         stdout_bytes=100, stderr_bytes=0, truncated=False, log_bytes=100)
    assert records.prune(max_age_seconds=100, max_total_bytes=10_000) == ["exec-0"]
    assert records.prune(max_age_seconds=100, max_total_bytes=150) == ["exec-1"]
    assert [r["executionId"] for r in records.list()] == ["exec-2"]
    assert not records.log_path("exec-1").exists()


def test_running_executions_are_marked_interrupted_at_start(tmp_path):
    records = ExecutionRecords(tmp_path)
    records.started(id="exec-r", container_id="c", image="i", owner="u", command=["x"], workdir=None,
                    started_at=time.time())
    write_log(records.log_path("exec-r"), [(1, b"partial output")])
    records.close()
    again = ExecutionRecords(tmp_path)
    assert again.mark_interrupted() == [("exec-r", "c")]
    record = again.get("exec-r")
    assert record["status"] == "interrupted" and record["bytes"] == {"stdout": 14, "stderr": 0}

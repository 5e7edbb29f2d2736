"""``/api/sandbox/exec`` and ``/api/sandbox/executions``: run commands, follow and control them.

Every execution starts through :meth:`~sandboxd.operations.Operations.start_execution`,
the same admission path as the WebSocket's ``execute-command`` (the request is even
checked by the same parser). Three ways to get the output:

- ``POST /exec`` without ``socketSessionId`` reads the execution's live feed (so the
  command runs no faster than we collect) up to ``api.max_exec_output_bytes`` per
  stream, then answers with the result;
- with ``socketSessionId``, the live feed goes to that connected session's inbox (a
  WebSocket session or a Socket.IO socket of the same user) and we answer ``202`` at once;
- ``GET /executions/{id}/output`` replays the execution's log (and follows it), as
  ``attach-execution`` does.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from ..errors import BadRequest, NotFound
from ..events import OutputEvent, ServerEvent
from . import types as t
from .app import Call, Reply
from .router import Param, Route

STDOUT, STDERR = 1, 2
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


def _exec_message(body: t.ExecRequest) -> Any:
    data = msgspec.to_builtins(body)
    for rest_only in ("socketSessionId", "keepStdinOpen"):
        data.pop(rest_only, None)
    data["stdin"] = body.stdin is not None or body.keep_stdin_open
    return t.to_message("execute-command", data)


async def _start(call: Call, body: t.ExecRequest) -> Any:
    ops = call.ops
    starter = None
    if body.socket_session_id is not None:
        starter = ops.watchers.get(body.socket_session_id)
        if starter is None or starter.principal.user != call.principal.user:
            raise NotFound(f"no such session: {body.socket_session_id}")
    started = await ops.start_execution(call.principal, _exec_message(body), starter=starter, binary=starter is None)
    ex = started.execution
    if body.stdin is not None:
        try:
            if body.stdin:
                await ex.write_stdin(body.stdin.encode("utf-8", "surrogatepass"))
            if not body.keep_stdin_open:
                await ex.close_stdin()
        except BadRequest:
            if not ex.finished.is_set():  # it ended before reading stdin: not an error
                raise
    return started


async def exec_command(call: Call) -> Any:
    body: t.ExecRequest = call.body
    started = await _start(call, body)
    ex = started.execution
    if body.socket_session_id is not None:
        return Reply(202, t.ExecAccepted(execution_id=ex.id, container_id=ex.container_id))
    return await _collect(call, started)


async def exec_realtime(call: Call) -> Reply:
    body: t.ExecRequest = call.body
    if body.socket_session_id is None:
        raise BadRequest("exec/realtime: missing field 'socketSessionId'")
    ex = (await _start(call, body)).execution
    return Reply(202, t.ExecAccepted(execution_id=ex.id, container_id=ex.container_id))


async def _collect(call: Call, started: Any) -> t.ExecResult:
    """Read the live feed to the end, keeping at most the configured bytes per stream."""
    ex, feed = started.execution, started.feed
    cap = call.config.api.max_exec_output_bytes
    out = {STDOUT: bytearray(), STDERR: bytearray()}
    cut = False
    if feed is not None:
        async with feed.receive_channel:
            async for event in feed.receive_channel:
                if not isinstance(event, OutputEvent) or event.raw is None:
                    continue
                buf = out[event.stream_id]
                for piece in event.raw:
                    room = cap - len(buf)
                    buf += piece[:room]
                    cut = cut or len(piece) > room
                if cut:
                    ex.unsubscribe_live()  # the rest goes to the log only, at full speed
                    break
    await ex.finished.wait()
    record = call.ops.record(ex.id)
    assert record is not None, "a finished execution is in memory or in the store"
    result = t.ExecResult(
        execution_id=ex.id, container_id=ex.container_id, status=record["status"], exit_code=record["exitCode"],
        stdout="", stderr="", duration_ms=record["durationMs"], truncated=cut or bool(record["truncated"]),
    )
    for sid, name in ((STDOUT, "stdout"), (STDERR, "stderr")):
        try:
            setattr(result, name, out[sid].decode("utf-8"))
        except UnicodeDecodeError:
            setattr(result, name, base64.b64encode(out[sid]).decode("ascii"))
            setattr(result, f"{name}_encoding", "base64")
    if record.get("reason"):
        result.reason = record["reason"]
    if record.get("errorCode"):
        result.error_code = record["errorCode"]
    return result


# --- executions ---------------------------------------------------------------------------


async def list_executions(call: Call) -> t.ExecutionList:
    rows = await call.ops.list_executions(call.principal, call.query("containerId"))
    return t.ExecutionList(msgspec.convert(rows, list[t.Execution]))


async def get_execution(call: Call) -> t.Execution:
    return msgspec.convert(await call.ops.attachable(call.principal, call.params["id"]), t.Execution)


def _offset(call: Call, name: str) -> int:
    value = call.query(name)
    if value is None:
        return 0
    if not value.isdigit():
        raise BadRequest(f"query parameter {name!r} must be a byte offset (a non-negative integer)")
    return int(value)


def _flag(call: Call, name: str) -> bool:
    value = (call.query(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(f"query parameter {name!r} must be true or false")
    return value in ("true", "1")


async def get_output(call: Call) -> None:
    """Stream the output as NDJSON (or SSE), then how it ended."""
    ops = call.ops
    record = await ops.attachable(call.principal, call.params["id"])
    since = {STDOUT: _offset(call, "since"), STDERR: _offset(call, "since")}
    since[STDOUT] = _offset(call, "stdoutSince") or since[STDOUT]
    since[STDERR] = _offset(call, "stderrSince") or since[STDERR]
    follow = _flag(call, "follow")
    sse = SSE in call.exchange.request.headers.get("accept", "")
    exchange = call.exchange
    await exchange.start(200, [("Content-Type", SSE if sse else NDJSON), *call.headers])

    async def send(event: ServerEvent) -> None:
        if event.data is None:
            return
        if sse:
            await exchange.send_data(b"event: %s\ndata: %s\n\n" % (event.name.encode(), t.encode(event.data)))
        else:
            await exchange.send_data(t.encode({"event": event.name, "data": event.data}) + b"\n")

    eid = record["executionId"]
    complete = await ops.replay_output(eid, record["containerId"], since, send=send, text=True, follow=follow)
    for event in ops.replay_ending(eid, record, complete):
        await send(event)
    await exchange.end()


async def kill_execution(call: Call) -> t.KillSent:
    body: t.KillRequest = call.body
    message = t.to_message("kill", {"executionId": call.params["id"], "signal": body.signal})
    ex = await call.ops.signal_execution(call.principal, message.execution_id, message.signal)
    return t.KillSent(execution_id=ex.id, signal=message.signal or "TERM")


async def write_stdin(call: Call) -> t.StdinWritten:
    body: t.StdinRequest = call.body
    message = t.to_message("stdin-data", {"executionId": call.params["id"], "data": body.data,
                                          "encoding": body.encoding})
    ops, me, eid = call.ops, call.principal, message.execution_id
    if message.data:
        await ops.write_stdin(me, eid, message.data)
    if body.close:
        await ops.close_stdin(me, eid)
    return t.StdinWritten(execution_id=eid, bytes=len(message.data), closed=body.close)


_ONE = "/api/sandbox/executions/{id}"
_OFFSET = {"type": "integer", "minimum": 0}

ROUTES = [
    Route("POST", "/api/sandbox/exec", exec_command, "Run a command; wait for its result, or stream it to a session",
          body=t.ExecRequest, responses={200: t.ExecResult, 202: t.ExecAccepted}),
    Route("POST", "/api/sandbox/exec/realtime", exec_realtime, "Run a command; its output goes to socketSessionId",
          body=t.ExecRequest, responses={202: t.ExecAccepted}),
    Route("GET", "/api/sandbox/executions", list_executions, "List recent executions you may see",
          responses={200: t.ExecutionList},
          query=(Param("containerId", {"type": "string"}, "only this sandbox's"),)),
    Route("GET", _ONE, get_execution, "An execution's record", responses={200: t.Execution}),
    Route("GET", _ONE + "/output", get_output, "Its output: NDJSON events (or SSE), then how it ended",
          responses={200: [NDJSON, SSE]},
          query=(Param("since", _OFFSET, "byte offset in both streams"),
                 Param("stdoutSince", _OFFSET), Param("stderrSince", _OFFSET),
                 Param("follow", {"type": "boolean"}, "keep streaming until it ends (default false)"))),
    Route("POST", _ONE + "/kill", kill_execution, "Send a signal (default: stop it)",
          body=t.KillRequest, responses={200: t.KillSent}),
    Route("POST", _ONE + "/stdin", write_stdin, "Write to its stdin, and optionally close it",
          body=t.StdinRequest, responses={200: t.StdinWritten}),
]

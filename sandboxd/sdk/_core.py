"""The SDK's client, with no I/O: every flavour (sync, asyncio, trio) drives one of these.

:class:`ClientCore` owns everything about the protocol that is not moving bytes:

- requests and their replies, matched by ``ref`` (:class:`Call`);
- each execution's output, checked by ``seq`` (a duplicate is dropped, a gap is
  healed by re-attaching from the offsets we have) and queued for its consumer;
- a bounded queue per execution: past ``max_buffer_bytes`` unread, further live output
  of that execution is dropped and fetched again from the daemon's log (``attach-execution``
  from our offsets) once the consumer catches up, so memory stays bounded and no other
  execution on the connection waits for a slow reader;
- the reconnect/resume state machine: when the connection drops, requests that are safe
  to repeat are sent again, the others fail with :class:`DaemonUnavailable`, and every
  unfinished execution is re-attached from the offsets already received: no byte lost,
  none doubled.

A flavour's driver loop is: send :meth:`data_to_send`, feed what the socket gives to
:meth:`receive_data`, check the condition it waits for, repeat; on a broken connection
call :meth:`connection_lost` and :meth:`connect` again.
"""

from __future__ import annotations

import base64
import itertools
from collections import deque
from typing import Any, Callable

import msgspec

from ..errors import SandboxdError
from ..protocol import decode_binary_output
from ._errors import DaemonUnavailable
from ._state import Call, ExecState
from ._types import OutputChunk
from ._wire import Endpoint, Wire

OUTPUT_EVENTS = ("execution-output", "exec-output")
COMPLETE_EVENTS = ("execution-complete", "exec-finished")
#: Requests that may be sent again after a reconnect without changing their effect.
IDEMPOTENT = frozenset({
    "ping", "inspect-container", "list-containers", "list-executions", "download-file",
    "join-container", "kill", "configure-session",
})
STREAMS = ("stdout", "stderr")
#: A fire-and-forget frame (stdin, resize) carries ``x:<executionId>`` as its ref, so an
#: ``error`` it causes can be pinned on its execution.
_FF_PREFIX = "x:"


class ClientCore:
    """Protocol state of one client, across reconnections (see the module docstring)."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 max_buffer_bytes: int = 16 * 1024 * 1024) -> None:
        from ._wire import parse_url

        self.endpoint: Endpoint = parse_url(url)
        self.token = token
        self.max_buffer_bytes = max_buffer_bytes
        self.wire: Wire | None = None
        self.closed = False
        self._refs = itertools.count(1)
        self._calls: dict[str, Call] = {}
        self._backlog: deque[str] = deque()
        self._joined: set[str] = set()
        self.executions: dict[str, ExecState] = {}
        #: Errors that refused an ``upload-chunk``, by upload id.
        self.transfer_errors: dict[str, SandboxdError] = {}
        #: Times the connection was (re)established; 0 before the first.
        self.connections = 0

    # --- the connection ----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.wire is not None and self.wire.open and not self.wire.closed

    def connect(self) -> None:
        """Start a (new) connection: :meth:`data_to_send` now holds the handshake."""
        self.wire = Wire(self.endpoint, self.token)
        self._joined.clear()

    def _opened(self) -> None:
        """The handshake completed: say hello, then resume what the last connection left."""
        self.connections += 1
        first: list[str] = [self._frame("configure-session", {"binaryOutput": True})]
        for st in self.executions.values():
            if st.complete is None and st.error is None and st.attach is None and not st.lagging:
                first.append(self._attach_frame(st))
            if st.stdin_open and st.complete is None:
                first.append(self._join_frame(st.container_id))
        for call in self._calls.values():
            if call.sent:  # idempotent ones survived connection_lost; send them again
                first.append(call.frame)
        self._backlog.extendleft(reversed(first))

    def connection_lost(self, reason: str = "the connection to the daemon was lost") -> None:
        """The socket broke. Requests the daemon may have acted on fail, unless repeating
        them is harmless; executions will be re-attached by :meth:`_opened`."""
        self.wire = None
        for ref, call in list(self._calls.items()):
            if call.event == "attach-execution":
                del self._calls[ref]  # _opened attaches afresh, from the offsets we have then
                if not call.sent:
                    self._backlog.remove(call.frame)
            elif call.sent and not call.idempotent:
                del self._calls[ref]
                self._fail(call, DaemonUnavailable(
                    f"{reason} before the daemon answered {call.event}; it may or may not have taken effect"))
        for st in self.executions.values():
            st.live, st.attach = False, None

    def fail_all(self, error: SandboxdError) -> None:
        """Give up: every waiting request and unfinished execution gets ``error``."""
        self.closed = True
        for call in self._calls.values():
            self._fail(call, error)
        self._calls.clear()
        for st in self.executions.values():
            if st.complete is None and st.error is None:
                st.error = error

    def data_to_send(self) -> bytes:
        if self.wire is None:
            return b""
        if self.wire.open and not self.wire.closed:
            while self._backlog:
                frame = self._backlog.popleft()
                self.wire.send_text(frame)
            for call in self._calls.values():
                call.sent = True
        return self.wire.data_to_send()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket (``b""`` at EOF).

        Raises:
            DaemonUnavailable: the connection ended; call :meth:`connection_lost`.
            AuthenticationFailed: the handshake was refused with 401/403.
        """
        assert self.wire is not None
        was_open = self.wire.open
        for message in self.wire.receive(data):
            if not was_open:
                was_open = True
                self._opened()
            if isinstance(message, bytes):
                eid, stream, seq, payload = decode_binary_output(message)
                self._on_output(eid, stream, seq, payload)
            else:
                self._on_text(message)
        if self.wire.open and not was_open:
            self._opened()

    # --- requests ----------------------------------------------------------------

    def _frame(self, event: str, data: dict[str, Any]) -> str:
        return msgspec.json.encode({"event": event, "data": data}).decode()

    def call(self, event: str, data: dict[str, Any], *, idempotent: bool | None = None,
             on_reply: Callable[[dict[str, Any]], None] | None = None) -> Call:
        """Queue a request; the returned :class:`Call` is done when its reply (or error) came."""
        ref = f"r{next(self._refs)}"
        frame = self._frame(event, {**data, "ref": ref})
        call = Call(ref, event, frame, event in IDEMPOTENT if idempotent is None else idempotent, on_reply)
        if self.closed:
            call.done, call.error = True, DaemonUnavailable("the client is closed")
            return call
        self._calls[ref] = call
        self._backlog.append(frame)
        return call

    def stream_call(self, event: str, data: dict[str, Any], end: frozenset[str]) -> Call:
        """Queue a request answered by a series of events, the last one named in ``end``."""
        call = self.call(event, data, idempotent=False)
        call.stream, call.stream_end = deque(), end
        return call

    def send(self, event: str, data: dict[str, Any], *, execution_id: str | None = None) -> None:
        """Queue a frame that has no reply; an error it causes is pinned on ``execution_id``
        (an execution's, or an upload's: see :attr:`transfer_errors`)."""
        ref = _FF_PREFIX + execution_id if execution_id else None
        self._backlog.append(self._frame(event, {**data, "ref": ref} if ref else data))

    def _fail(self, call: Call, error: SandboxdError) -> None:
        call.done, call.error = True, error

    # --- executions --------------------------------------------------------------

    def track(self, execution_id: str, container_id: str, *, live: bool, stdin: bool = False) -> ExecState:
        st = self.executions.get(execution_id)
        if st is None:
            st = self.executions[execution_id] = ExecState(execution_id, container_id, live=live, stdin=stdin)
        return st

    def forget(self, execution_id: str) -> None:
        self.executions.pop(execution_id, None)

    def attach(self, execution_id: str, since: dict[str, int] | None = None, *, follow: bool = True) -> ExecState:
        """Follow an execution this connection did not start, from ``since`` offsets.

        With ``follow=False`` only what is written so far is replayed; a running
        execution then "completes" with status ``running`` and no exit code.
        """
        if execution_id in self.executions:
            raise ValueError(f"execution {execution_id} is already followed by this client")
        st = self.track(execution_id, "", live=False)
        st.follow = follow
        if since:
            st.offsets.update({k: int(v) for k, v in since.items() if k in STREAMS})
        if self.is_open or self.wire is None:
            self._backlog.append(self._attach_frame(st))
        # otherwise _opened() attaches it when the handshake completes
        return st

    def _attach_frame(self, st: ExecState) -> str:
        def attached(reply: dict[str, Any]) -> None:
            if st.attach is call:
                st.attach = None
                st.container_id = st.container_id or reply.get("containerId", "")
                st.attached_status = reply.get("status")

        ref = f"r{next(self._refs)}"
        frame = self._frame("attach-execution", {"executionId": st.id, "since": dict(st.offsets),
                                                 "follow": st.follow, "ref": ref})
        call = Call(ref, "attach-execution", frame, True, attached)
        self._calls[ref] = call
        st.attach, st.live = call, False  # the attach replaces a live feed
        return frame

    def _reattach(self, st: ExecState) -> None:
        if st.attach is None:
            self._backlog.append(self._attach_frame(st))

    def ensure_joined(self, container_id: str) -> None:
        """Join the sandbox on this connection (needed for stdin/kill/resize of an execution
        this session did not start); a no-op when already joined."""
        if container_id and container_id not in self._joined:
            self._backlog.append(self._join_frame(container_id))

    def _join_frame(self, container_id: str) -> str:
        self._joined.add(container_id)
        ref = f"r{next(self._refs)}"
        return self._frame("join-container", {"containerId": container_id, "ref": ref})

    def pop_chunk(self, execution_id: str) -> OutputChunk | None:
        """The next chunk of output for the consumer, if one is queued."""
        st = self.executions.get(execution_id)
        if st is None or not st.queue:
            return None
        chunk = st.queue.popleft()
        st.queued -= len(chunk.data)
        if not st.queue and st.lagging:
            st.lagging = False  # caught up: fetch what was dropped from the daemon's log
            if self.wire is None or self.is_open:
                self._reattach(st)
        return chunk

    # --- incoming ----------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        frame = msgspec.json.decode(text)
        if not isinstance(frame, dict):
            return
        event, data = frame.get("event"), frame.get("data")
        if not isinstance(data, dict):
            return
        ref = data.get("ref")
        if ref is not None:
            call = self._calls.get(str(ref)) if isinstance(ref, (str, int)) else None
            if call is not None and call.stream is not None and event != "error":
                call.stream.append((event, data))  # one of several replies (a download)
                if event in call.stream_end:
                    del self._calls[call.ref]
                    call.done = True
                return
            if call is not None:
                del self._calls[call.ref]
                if event == "error":
                    self._fail(call, SandboxdError.from_code(data.get("code", "INTERNAL"), data.get("message", "")))
                    if call.event == "attach-execution":
                        self._attach_failed(call)
                else:
                    call.done, call.reply = True, data
                    if call.on_reply is not None:
                        call.on_reply(data)
                return
            if event == "error" and isinstance(ref, str) and ref.startswith(_FF_PREFIX):
                error = SandboxdError.from_code(data.get("code", "INTERNAL"), data.get("message", ""))
                st = self.executions.get(ref[len(_FF_PREFIX):])
                if st is not None:
                    st.control_error = error
                elif len(self.transfer_errors) < 64:  # an upload-chunk's: the uploader collects it
                    self.transfer_errors[ref[len(_FF_PREFIX):]] = error
                return
        if event in OUTPUT_EVENTS:
            raw = data.get("data", "")
            payload = base64.b64decode(raw) if data.get("encoding") == "base64" else raw.encode("utf-8")
            self._on_output(data.get("executionId", ""), data.get("type", "stdout"), int(data.get("seq", 0)), payload)
        elif event in COMPLETE_EVENTS:
            st = self.executions.get(data.get("executionId", ""))
            if st is not None:
                self._on_complete(st, data)
        elif event == "execution-detached":
            st = self.executions.get(data.get("executionId", ""))
            if st is not None and st.attach is None and not st.lagging and st.complete is None:
                st.complete = {"executionId": st.id, "containerId": st.container_id,
                               "status": st.attached_status or "running", "exitCode": None}
        elif event == "warning":
            st = self.executions.get(data.get("executionId", ""))
            if st is not None:
                st.warnings.append(data)

    def _attach_failed(self, call: Call) -> None:
        for st in self.executions.values():
            if st.attach is call:
                st.attach = None
                st.error = call.error

    def _on_output(self, execution_id: str, stream: str, seq: int, payload: bytes | memoryview) -> None:
        st = self.executions.get(execution_id)
        if st is None or st.complete is not None or stream not in STREAMS:
            return  # not ours (a joined sandbox's other executions), or already over
        have = st.offsets[stream]
        if seq > have:  # a gap: fetch from where we are
            if not st.lagging:
                self._reattach(st)
            return
        if st.lagging:
            return
        end = seq + len(payload)
        if end <= have:
            return  # a duplicate (a live chunk still in flight after an attach)
        data = bytes(payload[have - seq:]) if seq < have else bytes(payload)
        st.offsets[stream] = end
        st.queue.append(OutputChunk(stream, data, have))  # type: ignore[arg-type]
        st.queued += len(data)
        if st.queued > self.max_buffer_bytes:
            st.lagging = True  # drop live output until the consumer catches up

    def _on_complete(self, st: ExecState, data: dict[str, Any]) -> None:
        if st.attach is not None or st.complete is not None or st.lagging:
            # Stale (the feed a pending attach replaces), or we dropped output on purpose:
            # the replay that fetches it ends with a completion of its own.
            return
        totals = data.get("bytes")
        missing = isinstance(totals, dict) and any(int(totals.get(s) or 0) > st.offsets[s] for s in STREAMS)
        if not missing or st.reattaches >= 3:
            st.complete = data
            st.stdin_open = False
            return
        # Output is missing (a live feed's completion overtook the replay that replaced it):
        # fetch the rest from the log; the replay ends with a completion of its own.
        st.reattaches += 1
        self._reattach(st)

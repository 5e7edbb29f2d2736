"""The sync API: :class:`Client`, :class:`Sandbox`, :class:`Execution`, :class:`Files`.

No threads: every call does its own I/O, and callbacks run inside the call that is
waiting (``run``, ``wait``, iterating ``output()``).
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, Iterator, Mapping, Sequence

from ._common import (
    ChunkCallback,
    HandleBase,
    OutputSink,
    TextCallback,
    create_request,
    execute_request,
    kill_request,
    stdin_payload,
)
from ._env import default_token
from ._files import Files
from ._sync_io import SyncConnection
from ._types import ExecutionInfo, ExecutionResult, FileContent, OutputChunk, SandboxInfo


class Client:
    """One connection to a sandboxd daemon, shared by any number of sandboxes and executions.

    Args:
        url: ``ws://``/``wss://`` endpoint, or ``http://``/``https://`` daemon address
            (``/sandbox/ws`` is appended). Default ``$SANDBOXD_URL``, else
            ``ws://127.0.0.1:8765/sandbox/ws``.
        token: sent as ``Authorization: Bearer``; default ``$SANDBOXD_TOKEN``.
        connect_timeout: seconds for one connection attempt.
        reconnect_timeout: how long to keep trying when an established connection drops
            before :class:`DaemonUnavailable` is raised.

    The connection opens on first use; the first attempt is not retried.
    """

    def __init__(self, url: str | None = None, *, token: str | None = None, connect_timeout: float = 10.0,
                 reconnect_timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._conn = SyncConnection(url, token or default_token(), connect_timeout=connect_timeout,
                                    reconnect_timeout=reconnect_timeout, ssl_context=ssl_context)

    @property
    def url(self) -> str:
        return self._conn.core.endpoint.url

    def _call(self, event: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return self._conn.call(event, data, **kw)

    def create_sandbox(self, image: str | None = None, *, labels: Mapping[str, str] | None = None,
                       memory_bytes: int | None = None, cpus: float | None = None, pids_limit: int | None = None,
                       ttl_seconds: float | None = None, placement: Mapping[str, Any] | None = None) -> Sandbox:
        """Create a sandbox (default image: the daemon's ``sandbox.default_image``).

        ``placement``: ``{"engine": NAME}`` and/or ``{"labels": {...}}`` when the daemon
        drives several engines.
        """
        reply = self._call("create-container", create_request(image, labels, memory_bytes, cpus, pids_limit,
                                                                ttl_seconds, placement))
        return Sandbox(self, reply["containerId"], reply.get("image", image or ""), owns=True)

    def sandbox(self, sandbox_id: str) -> Sandbox:
        """An existing sandbox. Raises :class:`NotFound` if it does not exist or is not yours."""
        info = SandboxInfo.from_wire(self._call("inspect-container", {"containerId": sandbox_id}))
        return Sandbox(self, info.id, info.image, owns=False)

    def sandboxes(self) -> list[SandboxInfo]:
        """The sandboxes this client may see."""
        return [SandboxInfo.from_wire(d) for d in self._call("list-containers", {})["containers"]]

    def remove_sandbox(self, sandbox_id: str) -> str:
        """Remove a sandbox (running commands in it are stopped); return its full id."""
        return (self._call("remove-container", {"containerId": sandbox_id}))["containerId"]

    def engines(self) -> list[dict[str, Any]]:
        """The daemon's engines: name, url, state ("up"/"down"), sandboxes, running executions."""
        return list(self._call("list-engines", {})["engines"])

    def images(self) -> list[dict[str, Any]]:
        """Images and the engines that have them: ``[{"image", "engines": [...]}]``."""
        return list(self._call("list-images", {})["images"])

    def executions(self, sandbox_id: str | None = None) -> list[ExecutionInfo]:
        """Execution records, newest first (at most 200), of one sandbox or all visible ones."""
        data = {"containerId": sandbox_id} if sandbox_id else {}
        return [ExecutionInfo.from_wire(d) for d in self._call("list-executions", data)["executions"]]

    def start(
        self, command: Sequence[str] | str, *, sandbox_id: str | None = None, image: str | None = None,
        timeout: float | None = None, env: Mapping[str, str] | None = None, workdir: str | None = None,
        files: Mapping[str, FileContent] | None = None, stdin: bool | str | bytes = False, tty: bool = False,
        cols: int | None = None, rows: int | None = None, on_stdout: TextCallback | None = None,
        on_stderr: TextCallback | None = None, on_output: ChunkCallback | None = None, capture: bool = True,
        user: str | None = None,
    ) -> Execution:
        """Start ``command`` in sandbox ``sandbox_id``, or in a new one-off sandbox from
        ``image`` that is removed when the command ends. See :meth:`Sandbox.start`."""
        core = self._conn.core
        keep_open = stdin is not False
        request = execute_request(sandbox_id, command, image=image, env=env, workdir=workdir, timeout=timeout,
                                  files=files, stdin=keep_open, tty=tty, cols=cols, rows=rows, user=user)
        reply = self._call("execute-command", request, on_reply=lambda r: core.track(
            r["executionId"], r["containerId"], live=True, stdin=keep_open or tty))
        handle = Execution(self, core.executions[reply["executionId"]],
                           OutputSink(on_stdout, on_stderr, on_output, capture))
        if isinstance(stdin, (str, bytes)):
            if stdin:
                handle.send_stdin(stdin)
            handle.close_stdin()
        return handle

    def attach(self, execution_id: str, *, since: Mapping[str, int] | None = None, follow: bool = True,
               on_stdout: TextCallback | None = None, on_stderr: TextCallback | None = None,
               on_output: ChunkCallback | None = None, capture: bool = True) -> Execution:
        """Follow an execution (running or finished), replaying its output from ``since``
        (``{"stdout": n, "stderr": m}``, default the start)."""
        st = self._conn.core.attach(execution_id, dict(since or {}), follow=follow)
        handle = Execution(self, st, OutputSink(on_stdout, on_stderr, on_output, capture))
        self._conn.wait(lambda: st.attach is None or st.error is not None)
        if st.error is not None:
            self._conn.core.forget(execution_id)
            raise st.error
        return handle

    def ping(self) -> None:
        self._call("ping", {})

    def close(self) -> None:
        """Close the connection (executions keep running in the daemon)."""
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _on(client: Client | None, url: str | None, token: str | None, make: Callable[[Client], Sandbox]) -> Sandbox:
    """``make(client)``, on a new connection (owned by the sandbox) if ``client`` is None."""
    own = client is None
    client = client or Client(url, token=token)
    try:
        sbx = make(client)
    except BaseException:
        if own:
            client.close()
        raise
    sbx._owns_client = own
    return sbx


class Sandbox:
    """A sandbox: run commands in it, move files in and out.

    Use :meth:`create` or :meth:`connect`. As a context manager, a sandbox made by
    :meth:`create` is removed at the end; one from :meth:`connect` is left running.
    """

    def __init__(self, client: Client, sandbox_id: str, image: str, *, owns: bool, owns_client: bool = False) -> None:
        self.client = client
        self.id = sandbox_id
        self.image = image
        self.files = Files(self)
        self._owns = owns
        self._owns_client = owns_client

    @classmethod
    def create(cls, image: str | None = None, *, url: str | None = None, token: str | None = None,
               client: Client | None = None, labels: Mapping[str, str] | None = None,
               memory_bytes: int | None = None, cpus: float | None = None, pids_limit: int | None = None,
               ttl_seconds: float | None = None, placement: Mapping[str, Any] | None = None) -> Sandbox:
        """Create a sandbox, on ``client`` or on a new connection to ``url``."""
        return _on(client, url, token, lambda c: c.create_sandbox(
            image, labels=labels, memory_bytes=memory_bytes, cpus=cpus, pids_limit=pids_limit,
            ttl_seconds=ttl_seconds, placement=placement))

    @classmethod
    def connect(cls, sandbox_id: str, *, url: str | None = None, token: str | None = None,
                client: Client | None = None) -> Sandbox:
        """An existing sandbox. Raises :class:`NotFound` if it does not exist or is not yours."""
        return _on(client, url, token, lambda c: c.sandbox(sandbox_id))

    @staticmethod
    def list(*, url: str | None = None, token: str | None = None) -> list[SandboxInfo]:
        with Client(url, token=token) as client:
            return client.sandboxes()

    def run(self, command: Sequence[str] | str, *, timeout: float | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None, files: Mapping[str, FileContent] | None = None,
            stdin: str | bytes | None = None, tty: bool = False, cols: int | None = None, rows: int | None = None,
            on_stdout: TextCallback | None = None, on_stderr: TextCallback | None = None,
            on_output: ChunkCallback | None = None, capture: bool = True, user: str | None = None) -> ExecutionResult:
        """Run ``command`` to the end and return how it ended, with its output.

        ``command`` is an argv list (no shell) or a string run with ``/bin/sh -c``.
        ``timeout`` is enforced by the daemon (status ``"timeout"``). ``files`` are written
        (relative to ``workdir``) before it starts; ``stdin`` is fed to it, then closed.
        A non-zero exit is a result (``status == "failed"``), not an exception.
        """
        h = self.start(command, timeout=timeout, env=env, workdir=workdir, files=files,
                       stdin=stdin if stdin is not None else False, tty=tty, cols=cols, rows=rows,
                       on_stdout=on_stdout, on_stderr=on_stderr, on_output=on_output, capture=capture, user=user)
        return h.wait()

    def start(self, command: Sequence[str] | str, *, timeout: float | None = None,
              env: Mapping[str, str] | None = None, workdir: str | None = None,
              files: Mapping[str, FileContent] | None = None, stdin: bool | str | bytes = False, tty: bool = False,
              cols: int | None = None, rows: int | None = None, on_stdout: TextCallback | None = None,
              on_stderr: TextCallback | None = None, on_output: ChunkCallback | None = None,
              capture: bool = True, user: str | None = None) -> Execution:
        """Start ``command`` and return a handle at once (see :meth:`run` for the arguments).

        ``stdin=True`` keeps stdin open for :meth:`Execution.send_stdin`; text or bytes are
        sent and stdin closed.
        """
        return self.client.start(
            command, sandbox_id=self.id, timeout=timeout, env=env, workdir=workdir, files=files, stdin=stdin,
            tty=tty, cols=cols, rows=rows, on_stdout=on_stdout, on_stderr=on_stderr, on_output=on_output,
            capture=capture, user=user)

    def attach(self, execution_id: str, **kw: Any) -> Execution:
        """See :meth:`Client.attach`."""
        return self.client.attach(execution_id, **kw)

    def executions(self) -> list[ExecutionInfo]:
        """This sandbox's execution records, newest first."""
        return self.client.executions(self.id)

    def info(self) -> SandboxInfo:
        return SandboxInfo.from_wire(self.client._call("inspect-container", {"containerId": self.id}))

    def remove(self) -> None:
        """Remove the sandbox (running commands are stopped)."""
        self.client.remove_sandbox(self.id)
        self._owns = False

    def close(self) -> None:
        """Close this sandbox's own connection, if it has one; the sandbox stays."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._owns:
                self.remove()
        finally:
            self.close()


class Execution(HandleBase):
    """A running (or finished) command: its output, stdin, signals and result.

    ``id``, ``sandbox_id`` and ``offsets`` (bytes of each stream received so far: a
    ``since`` for resuming elsewhere) describe it.
    """

    def _next(self, timeout: float | None) -> OutputChunk | None:
        conn, st = self.client._conn, self._st
        conn.wait(lambda: st.has_news, timeout)
        chunk = conn.core.pop_chunk(st.id)
        if chunk is None and st.error is not None:
            raise st.error
        conn.flush()  # a catch-up re-attach, if popping queued one
        return chunk

    def output(self) -> Iterator[OutputChunk]:
        """Each chunk of output as it arrives, until the command ends (then :meth:`wait`
        returns at once). Callbacks and capture see these chunks too."""
        while (chunk := self._next(None)) is not None:
            self._sink.deliver(chunk)
            yield chunk

    def wait(self, timeout: float | None = None) -> ExecutionResult:
        """Wait for the end (passing output to the callbacks) and return the result.

        Raises:
            TimeoutError: ``timeout`` seconds passed (the command keeps running).
        """
        if self._result is not None:
            return self._result
        while (chunk := self._next(timeout)) is not None:
            self._sink.deliver(chunk)
        self._sink.finish()
        return self._finish()

    def send_stdin(self, data: str | bytes) -> None:
        """Write to the command's stdin (started with ``stdin=True`` or ``tty=True``)."""
        self._control("stdin-data", {"executionId": self.id, **stdin_payload(data)})

    def close_stdin(self) -> None:
        self._control("stdin-close", {"executionId": self.id})
        self._st.stdin_open = False

    def resize(self, cols: int, rows: int) -> None:
        self._control("resize", {"executionId": self.id, "cols": cols, "rows": rows})

    def kill(self, signal: str | int = "TERM") -> None:
        """``TERM``/``KILL`` stop the whole process tree (status ``killed``); any other
        signal is delivered once and the command decides."""
        self._join_if_needed()
        self.client._call("kill", kill_request(self.id, signal))

    def _control(self, event: str, data: dict[str, Any]) -> None:
        self._queue_control(event, data)
        self.client._conn.flush()

"""``/api/sandbox/containers/{id}/files/{path}``: files in and out, streamed.

Bodies go straight between the socket and the sandbox, a chunk at a time, through the
one file implementation (:mod:`sandboxd.files`, as the sandbox's user), so a file's size
is limited by ``limits.transfer_max_bytes``, not by memory or the WebSocket message size.
Paths follow ``upload-files``' rules: relative to the sandbox's working directory, or
absolute inside it; no ``..``.
"""

from __future__ import annotations

from ..errors import BadRequest
from ..files import parse_mode
from . import types as t
from .app import Call, Reply
from .errors import LengthRequired
from .httpio import BodyTooLarge
from .router import Param, Route

OCTET = "application/octet-stream"


async def put_file(call: Call) -> Reply:
    exchange = call.exchange
    size = exchange.content_length
    if size is None:
        raise LengthRequired("PUT .../files: send the body with a Content-Length (chunked bodies are not taken)")
    limit = call.config.limits.transfer_max_bytes
    if size > limit:
        raise BodyTooLarge(f"PUT .../files: larger than {limit} bytes (limits.transfer_max_bytes)")
    raw_mode = call.query("mode")
    mode = parse_mode(raw_mode, "PUT .../files") if raw_mode is not None else 0o644
    sandbox, path = await call.ops.upload_stream(
        call.principal, call.params["id"], call.params["path"], exchange.body_chunks(size), size=size, mode=mode)
    return Reply(201, t.FileWritten(container_id=sandbox.id, path=path, size=size))


async def get_file(call: Call) -> None:
    exchange = call.exchange
    async with call.ops.open_download(call.principal, call.params["id"], call.params["path"]) as got:
        if got.kind != "file" or got.size is None:
            raise BadRequest(f"GET .../files: {call.params['path']} is a directory")
        await exchange.start(200, [("Content-Type", OCTET), ("Content-Length", str(got.size)), *call.headers])
        async for chunk in got.chunks():
            await exchange.send_data(chunk)
    await exchange.end()


_FILE = "/api/sandbox/containers/{id}/files/{path:path}"

ROUTES = [
    Route("PUT", _FILE, put_file, "Write a file (the raw body) into the sandbox, as its user",
          raw_body=OCTET, responses={201: t.FileWritten},
          query=(Param("mode", {"type": "string", "pattern": "^[0-7]{1,3}$"}, "permissions, octal (default 644)"),)),
    Route("GET", _FILE, get_file, "Read a file from the sandbox, as its user (raw bytes)",
          responses={200: OCTET}),
]

"""``/api/sandbox/containers``: create, list, inspect and remove sandboxes."""

from __future__ import annotations

import msgspec

from . import types as t
from .app import Call
from .router import Route


def _container(description: dict, type_: type = t.Container) -> t.Container:
    return msgspec.convert(description, type_)


async def create_container(call: Call) -> t.Container:
    request = t.to_message("create-container", call.body)
    sandbox = await call.ops.create_sandbox(call.principal, request.image, request=request)
    return _container(sandbox.describe())


async def list_containers(call: Call) -> t.ContainerList:
    return t.ContainerList([_container(s.describe()) for s in await call.ops.list_sandboxes(call.principal)])


async def get_container(call: Call) -> t.ContainerInfo:
    d = await call.ops.inspect_sandbox(call.principal, call.params["id"])
    return _container({**d.sandbox.describe(), "limits": d.sandbox.limits, "runningExecutions": d.running,
                       "idleSeconds": d.idle_seconds}, t.ContainerInfo)


async def remove_container(call: Call) -> t.ContainerRemoved:
    sandbox = await call.ops.remove_sandbox(call.principal, call.params["id"])
    return t.ContainerRemoved(container_id=sandbox.id)


_ONE = "/api/sandbox/containers/{id}"

ROUTES = [
    Route("POST", "/api/sandbox/containers", create_container, "Create a sandbox",
          body=t.CreateContainerRequest, responses={201: t.Container}),
    Route("GET", "/api/sandbox/containers", list_containers, "List the sandboxes you may see",
          responses={200: t.ContainerList}),
    Route("GET", _ONE, get_container, "Describe a sandbox", responses={200: t.ContainerInfo}),
    Route("DELETE", _ONE, remove_container, "Remove a sandbox (its running executions are stopped)",
          responses={200: t.ContainerRemoved}),
]

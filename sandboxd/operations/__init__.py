"""The daemon's use cases, shared by every front end.

A front end (the native WebSocket session, Socket.IO, REST) authenticates its caller
to a :class:`~sandboxd.plugin_types.Principal`, parses its input into typed requests,
calls :class:`Operations`, and turns results and :class:`~sandboxd.errors.SandboxdError`
into its own wire format. It calls nothing below this package.

Clients that follow output over time (sessions, sockets) register a
:class:`~sandboxd.operations.watchers.Watcher` in :attr:`Operations.watchers`; they are
found by id there (REST's ``socketSessionId``), and are told about new executions
through their own inbox.
"""

from __future__ import annotations

from .executions import Accept, ExecutionOperations, Started
from .sandboxes import SandboxDetails
from .services import Services
from .watchers import Announcement, Delivery, LiveFeed, Watcher, Watchers


class Operations(ExecutionOperations):
    """Every use case; see :mod:`.sandboxes` and :mod:`.executions`."""


__all__ = [
    "Accept", "Announcement", "Delivery", "LiveFeed", "Operations", "SandboxDetails", "Services", "Started", "Watcher", "Watchers",
]

"""The wire protocol, I/O-free: parse what clients send, encode what we send back.

Every frame is a WebSocket text message holding one JSON object,
``{"event": NAME, "data": ...}``. The event names are the seed design's, kept as our
compatibility contract; ``docs/protocol.md`` is the reference for every event, field
and error code, and ``tests/unit/test_protocol.py`` pins it.

- :mod:`.client`: client messages, declared once each, and their parser;
- :mod:`.frames`: server frames (JSON in either dialect, binary output), shared with
  :mod:`sandboxd.client`;
- :mod:`.transfers`: the chunked file transfer messages;
- :mod:`.records`: the execution record and its status, used by live executions and
  the store alike.
"""

from __future__ import annotations

from .client import CLIENT_EVENTS as CLIENT_EVENTS
from .client import SIGNALS as SIGNALS
from .client import AttachExecution as AttachExecution
from .client import ClientMessage as ClientMessage
from .client import ConfigureSession as ConfigureSession
from .client import CreateContainer as CreateContainer
from .client import DownloadFile as DownloadFile
from .client import ExecuteCommand as ExecuteCommand
from .client import InspectContainer as InspectContainer
from .client import JoinContainer as JoinContainer
from .client import Kill as Kill
from .client import LeaveContainer as LeaveContainer
from .client import ListContainers as ListContainers
from .client import ListEngines as ListEngines
from .client import ListExecutions as ListExecutions
from .client import ListImages as ListImages
from .client import Ping as Ping
from .client import Ref as Ref
from .client import RemoveContainer as RemoveContainer
from .client import Resize as Resize
from .client import StdinClose as StdinClose
from .client import StdinData as StdinData
from .client import UploadFiles as UploadFiles
from .client import parse_client_message as parse_client_message
from .client import peek_ref as peek_ref
from .frames import ALIASES as ALIASES
from .frames import BINARY_OUTPUT as BINARY_OUTPUT
from .frames import decode_binary_output as decode_binary_output
from .frames import encode as encode
from .frames import encode_binary_output as encode_binary_output
from .frames import with_ref as with_ref
from .records import ExecutionRecord as ExecutionRecord
from .records import Status as Status
from .records import execution_record as execution_record
from .transfers import DownloadStart as DownloadStart
from .transfers import UploadChunk as UploadChunk
from .transfers import UploadEnd as UploadEnd
from .transfers import UploadStart as UploadStart

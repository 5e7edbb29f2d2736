"""Everything sandboxd says to the Docker engine goes through this package."""

from ._demux import STDERR as STDERR
from ._demux import STDOUT as STDOUT
from ._demux import FrameError as FrameError
from ._demux import FrameParser as FrameParser
from ._docker import EXEC_MARKER as EXEC_MARKER
from ._docker import LABEL_INSTANCE as LABEL_INSTANCE
from ._docker import LABEL_MANAGED as LABEL_MANAGED
from ._docker import LABEL_PROBE as LABEL_PROBE
from ._docker import DockerEngine as DockerEngine
from ._pool import LABEL_ENGINE as LABEL_ENGINE
from ._pool import EnginePool as EnginePool
from ._pool import members_of as members_of
from ._protocol import Engine as Engine
from ._stream import ExecStream as ExecStream

"""What stateful front ends share: the session core (handlers, following, inbox)."""

from .core import SessionCore as SessionCore
from .following import SessionClosed as SessionClosed

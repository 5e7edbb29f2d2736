"""The protocol document covers every event and error code the code knows."""

from pathlib import Path

from sandboxd.errors import ERROR_CODES
from sandboxd.protocol import CLIENT_EVENTS

PROTOCOL = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()


def test_every_client_event_is_documented():
    missing = [e for e in CLIENT_EVENTS if f"`{e}`" not in PROTOCOL]
    assert missing == []


def test_every_error_code_is_documented():
    missing = [c for c in ERROR_CODES if f"`{c}`" not in PROTOCOL]
    assert missing == []

"""What clients may send, and the error code each kind of bad frame gets."""

import json

import pytest

from sandboxd import protocol as p
from sandboxd.errors import BadRequest, UnknownEvent


def frame(event, data=None):
    return json.dumps({"event": event, "data": data})


def test_execute_command_with_every_field():
    m = p.parse_client_message(frame("execute-command", {
        "containerId": "abc123", "command": ["sh", "-c", "echo hi"], "env": {"A": "1"},
        "workdir": "/tmp", "stdin": True, "timeout": 5, "ref": "r1",
    }))
    assert m == p.ExecuteCommand(command=("sh", "-c", "echo hi"), container_id="abc123", env={"A": "1"},
                                 workdir="/tmp", stdin=True, timeout=5.0, ref="r1")


def test_seed_style_command_string_runs_through_the_shell():
    m = p.parse_client_message(frame("execute-command", {"containerId": "abc", "command": "ls -la | wc -l"}))
    assert m.command == ("/bin/sh", "-c", "ls -la | wc -l")


def test_join_accepts_the_bare_id_string_and_the_seed_alias():
    assert p.parse_client_message(frame("join-container", "abc")) == p.JoinContainer("abc")
    assert p.parse_client_message(frame("join-session", {"containerId": "abc"})) == p.JoinContainer("abc", alias=True)


def test_stdin_data_text_and_base64():
    assert p.parse_client_message(frame("stdin-data", {"executionId": "e1", "data": "hé"})).data == "hé".encode()
    m = p.parse_client_message(frame("stdin-data", {"executionId": "e1", "data": "/w==", "encoding": "base64"}))
    assert m.data == b"\xff"


def test_kill_signal_names_and_numbers():
    assert p.parse_client_message(frame("kill", {"executionId": "e1"})).signal is None
    assert p.parse_client_message(frame("kill", {"executionId": "e1", "signal": "SIGINT"})).signal == "INT"
    assert p.parse_client_message(frame("kill", {"executionId": "e1", "signal": 9})).signal == "KILL"


@pytest.mark.parametrize("text, fragment", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"data": {}}', '"event"'),
    (frame("execute-command", {"containerId": "abc"}), "missing field 'command'"),
    (frame("execute-command", {"containerId": "abc", "command": []}), "non-empty list"),
    (frame("execute-command", {"containerId": "abc", "command": ["ls", 1]}), "non-empty list"),
    (frame("execute-command", {"command": ["ls"]}), "containerId"),
    (frame("execute-command", {"containerId": "abc", "command": ["ls"], "timeout": -1}), "positive"),
    (frame("execute-command", {"containerId": "abc", "command": ["ls"], "timeout": "5"}), "number"),
    (frame("execute-command", {"containerId": "abc", "command": ["ls"], "env": {"A": 1}}), "env"),
    (frame("execute-command", {"containerId": "abc", "command": ["ls"], "stdin": "yes"}), "true or false"),
    (frame("execute-command", {"containerId": "../etc", "command": ["ls"]}), "valid id"),
    (frame("stdin-data", {"executionId": "e1"}), "'data'"),
    (frame("stdin-data", {"executionId": "e1", "data": "!!", "encoding": "base64"}), "base64"),
    (frame("kill", {"executionId": "e1", "signal": "NOPE"}), "unsupported signal"),
    (frame("join-container", 42), "data must be an object"),
    (frame("join-container", {"containerId": "a", "ref": [1]}), "ref"),
])
def test_malformed_frames_are_bad_requests_naming_the_problem(text, fragment):
    with pytest.raises(BadRequest) as info:
        p.parse_client_message(text)
    assert info.value.code == "BAD_REQUEST"
    assert fragment in info.value.message


def test_binary_frames_are_bad_requests():
    with pytest.raises(BadRequest):
        p.parse_client_message(b'{"event": "ping"}')


def test_unknown_event_has_its_own_code():
    with pytest.raises(UnknownEvent) as info:
        p.parse_client_message(frame("rm-rf", {}))
    assert info.value.code == "UNKNOWN_EVENT"


def test_ref_is_recovered_even_from_a_rejected_frame():
    assert p.peek_ref(frame("execute-command", {"ref": "x7"})) == "x7"
    assert p.peek_ref("garbage") is None


def test_alias_names_are_used_only_when_asked():
    data = {"executionId": "e1"}
    assert json.loads(p.encode("execution-output", data))["event"] == "execution-output"
    assert json.loads(p.encode("execution-output", data, alias=True))["event"] == "exec-output"
    assert json.loads(p.encode("execution-complete", data, alias=True))["event"] == "exec-finished"
    assert json.loads(p.encode("container-joined", data, alias=True))["event"] == "session-joined"
    assert json.loads(p.encode("error", data, alias=True))["event"] == "error"


def test_binary_output_frames_round_trip():
    frame = p.encode_binary_output("exec-00ff", 2, 1 << 40, [b"\x00\xff", memoryview(b"raw")])
    assert p.decode_binary_output(frame)[:3] == ("exec-00ff", "stderr", 1 << 40)
    assert bytes(p.decode_binary_output(frame)[3]) == b"\x00\xffraw"


def test_configure_session_asks_for_binary_output():
    assert p.parse_client_message(frame("configure-session", {"binaryOutput": True})) == p.ConfigureSession(True)

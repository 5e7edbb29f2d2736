"""No frame a client can send makes the parser raise anything but a protocol error."""

import json
import random

import pytest

from sandboxd import protocol as p
from sandboxd.errors import BadRequest

ATOMS = [None, True, False, 0, -1, 2**70, 1.5, float("1e308"), "", "x", "exec-0", "a" * 300, "\x00", "é€😀",
         "../etc", "SIGKILL", "base64", "!!", [], {}, ["sh"], {"stdout": -1}]
KEYS = ["containerId", "command", "env", "workdir", "stdin", "timeout", "executionId", "data", "encoding",
        "signal", "ref", "image", "files", "since", "follow", "tty", "cols", "rows", "labels", "path",
        "binaryOutput", "memoryBytes", "ttlSeconds"]


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(ATOMS)
    if roll < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


@pytest.mark.parametrize("seed", range(20))
def test_random_frames_only_ever_raise_protocol_errors(seed):
    rng = random.Random(seed)
    for _ in range(500):
        event = rng.choice(list(p.CLIENT_EVENTS) + ["nope", "", 5, None])
        frame = {"event": event, "data": random_value(rng)}
        if rng.random() < 0.1:
            frame = random_value(rng)
        try:
            text = json.dumps(frame)
        except ValueError:
            continue
        try:
            p.parse_client_message(text)
        except BadRequest:
            pass


def test_deeply_nested_json_is_a_bad_request():
    with pytest.raises(BadRequest):
        p.parse_client_message("[" * 100_000 + "]" * 100_000)

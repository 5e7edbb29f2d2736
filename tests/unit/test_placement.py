"""Placement rules (issue #14), as pure logic: which engines may take a new sandbox, best first."""

from __future__ import annotations

import pytest

from sandboxd.errors import BadRequest, EngineUnavailable, LimitExceeded
from sandboxd.placement import candidates, narrow, parse_placement
from sandboxd.plugin_types import EngineLoad, Placement, SandboxOptions

OPTS = SandboxOptions("img", memory_bytes=512 << 20, cpus=1.0, pids_limit=64, read_only_root=True)
LOADS = [
    EngineLoad("a", {"pool": "py"}, sandboxes=3, running=2),
    EngineLoad("b", {"pool": "py"}, sandboxes=1, running=1),
    EngineLoad("c", {"pool": "gpu"}, sandboxes=0, running=0, max_sandboxes=1),
]
UP = {"a", "b", "c"}


def names(loads):
    return [e.name for e in loads]


def test_least_loaded_first_counting_sandboxes_and_running_executions():
    assert names(candidates(LOADS, Placement(), OPTS, up=UP)) == ["c", "b", "a"]


def test_constraints_keep_only_the_named_engine_or_the_labelled_ones():
    assert names(candidates(LOADS, Placement(engine="a"), OPTS, up=UP)) == ["a"]
    assert names(candidates(LOADS, Placement(labels={"pool": "py"}), OPTS, up=UP)) == ["b", "a"]
    with pytest.raises(BadRequest, match="no engine named 'z'"):
        candidates(LOADS, Placement(engine="z"), OPTS, up=UP)
    with pytest.raises(BadRequest, match="labels"):
        candidates(LOADS, Placement(labels={"pool": "tpu"}), OPTS, up=UP)


def test_engines_that_are_down_or_full_are_skipped_with_distinct_errors():
    assert names(candidates(LOADS, Placement(), OPTS, up={"a"})) == ["a"]
    with pytest.raises(EngineUnavailable):
        candidates(LOADS, Placement(engine="c"), OPTS, up={"a", "b"})
    full = [EngineLoad("c", {}, sandboxes=1, running=0, max_sandboxes=1)]
    with pytest.raises(LimitExceeded):
        candidates(full, Placement(), OPTS, up={"c"})
    small = [EngineLoad("s", {}, 0, 0, memory_free=256 << 20, cpus_free=4.0),
             EngineLoad("t", {}, 5, 5, memory_free=8 << 30, cpus_free=0.5),
             EngineLoad("u", {}, 9, 9, memory_free=8 << 30, cpus_free=4.0)]
    assert names(candidates(small, Placement(), OPTS, up={"s", "t", "u"})) == ["u"]


def test_a_plugin_answer_chooses_narrows_or_leaves_the_choice():
    ranked = candidates(LOADS, Placement(), OPTS, up=UP)
    assert names(narrow(ranked, None, "p")) == ["c", "b", "a"]
    assert names(narrow(ranked, "a", "p")) == ["a"]
    assert names(narrow(ranked, ["a", "b"], "p")) == ["b", "a"]
    assert narrow(ranked, [], "p") == []
    with pytest.raises(BadRequest, match="plugin 'p'"):
        narrow(ranked, "z", "p")


def test_placement_requests_are_checked_field_by_field():
    assert parse_placement("create-container", None) == Placement()
    assert parse_placement("create-container", {"engine": "e2", "labels": {"pool": "py"}}) == Placement(
        "e2", {"pool": "py"})
    for bad in ("e2", {"engine": 3}, {"labels": {"a": 1}}, {"zone": "x"}):
        with pytest.raises(BadRequest):
            parse_placement("create-container", bad)

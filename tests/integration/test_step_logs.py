"""Step logs on Azurite: each run's lines are written with the change that records the run (no storage call of
their own), read back in run order; a log an earlier version wrote as a blob is still read, before the parts
that follow it; a run that wrote too much keeps its first and last lines."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceExistsError

from shared.ports import ProbeResult
from shared.records import LogPart
from shared.services import releases, step_logs
from shared.services.step_logs import MAX_PART, log_name
from tests.integration.conftest import World, stage

pytestmark = pytest.mark.azurite


def test_a_step_runs_lines_cost_no_storage_call_of_their_own_and_read_back_in_run_order(world: World) -> None:
    d = world.define([stage("Dev", steps=[{"type": "http-check", "path": "/health", "intervalSeconds": 5}])])
    world.deps.probe.answers["https://tailspin-dev.example/health"] = [  # type: ignore[attr-defined]
        ProbeResult(503, "warming up"), ProbeResult(503, "warming up"), ProbeResult(200, "ok")]
    rel = world.release(d["id"])
    world.counter.reset()
    world.pump()
    assert not [op for op in world.counter.counts if op.startswith("blob")], world.counter.counts
    log = releases.step_log(world.deps, rel.id, "Dev", 1, 0)[2]
    runs = [log.index(f"--- run {n} started") for n in (1, 2, 3)]
    assert runs == sorted(runs), log
    assert log.count("=> retry: status 503") == 2
    assert log.rstrip().endswith("=> succeeded: https://tailspin-dev.example/health answered 200")


def test_a_log_written_as_a_blob_before_parts_is_read_before_the_parts_that_follow(world: World) -> None:
    d = world.define([stage("Dev", steps=[{"type": "http-check", "path": "/health"}])])
    rel = world.release(d["id"])
    container = world.deps.logs.container  # type: ignore[attr-defined]
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    container.upload_blob(log_name(rel, "Dev", 1, 0), b"--- run 1 started (an earlier version) ---\n")
    later = step_logs.part("Dev", 1, 0, 2, ["--- run 2 started ---", "=> succeeded: ok"])
    assert later is not None
    world.deps.store.add_log_part(d["id"], rel.id, later)
    assert step_logs.read(world.deps, rel, "Dev", 1, 0) == (
        "--- run 1 started (an earlier version) ---\n--- run 2 started ---\n=> succeeded: ok\n")
    assert step_logs.read(world.deps, rel, "Dev", 1, 1) is None  # neither parts nor a blob


def test_long_parts_with_any_character_come_back_whole_from_table_storage(world: World) -> None:
    d = world.define([stage("Dev")])
    rel = world.release(d["id"])
    text = ("line with 🚀 and ünïcödé\n" * 6_000)[:MAX_PART]  # several properties, characters outside the BMP
    world.deps.store.add_log_part(d["id"], rel.id, LogPart(step_logs.log_key("Dev", 1, 0), "000001.1", text))
    assert step_logs.read(world.deps, rel, "Dev", 1, 0) == text


def test_a_run_that_wrote_too_much_keeps_its_first_and_last_lines_and_says_what_it_left_out() -> None:
    lines = [f"line {n}" for n in range(60_000)]
    kept = step_logs.part("Dev", 1, 0, 1, lines)
    assert kept is not None and len(kept.text) < MAX_PART + 200
    assert kept.text.startswith("line 0\nline 1\n") and kept.text.endswith("line 59998\nline 59999\n")
    assert "characters of this run's output left out" in kept.text

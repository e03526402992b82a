"""At-least-once delivery: duplicates, concurrent deliveries, crashes between storage calls,
poisoned messages and lost messages all end in the same state as one clean delivery."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from local.storage_policies import InjectedCrash
from shared import bootstrap
from shared.config import STEPS_QUEUE
from shared.domain.errors import Conflict
from shared.services import releases, steps, sweeper
from tests.integration.conftest import World, stage

pytestmark = pytest.mark.azurite  # storage faults, operation counts and limits need the real store


def flow(world: World) -> dict[str, Any]:
    return world.define([stage("Dev", steps=[{"type": "deploy-package"}, {"type": "wait", "seconds": 30}]),
                         stage("Test", {"type": "afterStages", "stages": ["Dev"]})])


def history(world: World, release_id: int) -> Counter[tuple[str, str | None, int | None]]:
    return Counter((e["type"], e.get("stage"), e.get("step")) for e in releases.events(world.deps, release_id))


def outcome(world: World, release_id: int) -> dict[str, Any]:
    rel = world.get(release_id)
    return {name: [(d.attempt, d.status, [s.status for s in d.steps]) for d in run.deployments]
            for name, run in rel.stages.items()}


EXPECTED = {"Dev": [(1, "succeeded", ["succeeded", "succeeded"])],
            "Test": [(1, "succeeded", ["succeeded", "succeeded"])]}


def test_every_step_message_delivered_twice_has_one_effect(world: World) -> None:
    rel = world.release(flow(world)["id"])
    while batch := world.receive():
        for msg in batch:
            world.clock.advance(world.bus.delays.pop(msg.content, 0.0))
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content)
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content)  # the duplicate
            world.queue().delete_message(msg)
    assert outcome(world, rel.id) == EXPECTED
    counts = history(world, rel.id)
    assert counts[("stepSucceeded", "Dev", 0)] == 1 and counts[("deploymentSucceeded", "Test", None)] == 1
    assert counts[("deploymentStarted", "Test", None)] == 1


def test_concurrent_deliveries_of_one_message_have_one_effect(world: World) -> None:
    rel = world.release(flow(world)["id"])
    while batch := world.receive():
        for msg in batch:
            world.clock.advance(world.bus.delays.pop(msg.content, 0.0))
            threads = [threading.Thread(target=bootstrap.react, args=(world.deps, STEPS_QUEUE, msg.content))
                       for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            world.queue().delete_message(msg)
    assert outcome(world, rel.id) == EXPECTED
    counts = history(world, rel.id)
    assert all(n == 1 for (kind, _, _), n in counts.items() if kind != "stepDeferred")


def run_one_release(world: World, definition_id: int) -> None:
    world.release(definition_id)
    world.pump()


def test_a_crash_before_any_storage_call_of_the_step_handler_converges(world: World) -> None:
    definition_id = flow(world)["id"]
    run_one_release(world, definition_id)  # warm up: containers and tables exist from here on
    crash_at = 0
    while True:
        crash_at += 1
        rel = world.release(definition_id)
        [msg] = world.receive()
        world.crash.arm(crash_at)
        try:
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            crashed = False
            world.crash.arm(None)
        except InjectedCrash as exc:
            assert f"storage call {crash_at}:" in str(exc)
            crashed = True
            world.crash.arm(None)
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # the queue redelivers it
        world.queue().delete_message(msg)
        world.pump()
        for _ in range(2):  # what a crash after the commit left is the sweeper's to send: an outbox row a lease
            world.clock.advance(61)  # after it was written, a step message two leases after it was due
            sweeper.sweep(world.deps)
            world.pump()
        assert outcome(world, rel.id) == EXPECTED, f"crash at storage call {crash_at}"
        assert history(world, rel.id)[("stepSucceeded", "Dev", 0)] == 1, f"crash at storage call {crash_at}"
        if not crashed:
            break
    assert crash_at > 5  # read, log, commit, send, delete: every one of them was crashed once


def test_a_step_message_lost_after_the_commit_is_sent_again_by_the_sweeper_from_the_release(world: World) -> None:
    """A step's message has no outbox row: the step in progress that nobody took is what tells the sweeper."""
    rel = world.release(flow(world)["id"])
    [msg] = world.receive()
    world.crash.arm(1, match=r"^POST .*/slipway-steps/messages")  # the next step's send, after the commit
    with pytest.raises(InjectedCrash):
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content)
    world.queue().delete_message(msg)  # and the message is gone for good
    assert world.receive() == []
    sent = []
    while not any(s["redelivered"] for s in sent) and len(sent) < 3:
        world.clock.advance(61)
        sent.append(sweeper.sweep(world.deps))
    assert [s["outbox"] for s in sent] == [0] * len(sent) and sent[-1]["redelivered"] == 1 and len(sent) <= 2
    world.pump()
    assert outcome(world, rel.id) == EXPECTED


def test_a_lost_step_message_is_redelivered_by_the_sweeper(world: World) -> None:
    rel = world.release(flow(world)["id"])
    [msg] = world.receive()
    world.queue().delete_message(msg)  # lost before anyone claimed it
    world.clock.advance(world.deps.settings.step_lease_seconds + 1)
    assert sweeper.sweep(world.deps)["redelivered"] == 0  # it may still wait in a long queue
    world.clock.advance(world.deps.settings.step_lease_seconds)
    assert sweeper.sweep(world.deps)["redelivered"] == 1
    world.pump()
    assert outcome(world, rel.id) == EXPECTED
    assert history(world, rel.id)[("stepRedelivered", "Dev", 0)] == 1


def test_a_poisoned_step_fails_its_deployment_once_even_if_delivered_twice(world: World) -> None:
    rel = world.release(flow(world)["id"])
    [msg] = world.receive()
    steps.handle_poisoned(world.deps, msg.content, 5)
    steps.handle_poisoned(world.deps, msg.content, 5)
    got = world.get(rel.id)
    assert got.stages["Dev"].status == "failed" and got.stages["Test"].status == "notStarted"
    assert "poison queue" in (got.stages["Dev"].current.failure or "")
    assert history(world, rel.id)[("deploymentFailed", "Dev", None)] == 1
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content)  # a late copy of the original changes nothing
    assert world.get(rel.id).stages["Dev"].status == "failed"


def test_concurrent_deploy_requests_on_one_stage_start_one_deployment(world: World) -> None:
    d = world.define([stage("Dev", {"type": "manual"})])
    rel = world.release(d["id"])
    results: list[str] = []

    def deploy() -> None:
        try:
            releases.deploy_stage(world.deps, rel.id, "Dev", by="tim")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=deploy) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 4 + ["ok"]
    assert len(world.get(rel.id).stages["Dev"].deployments) == 1


def test_malformed_and_foreign_messages_are_dropped(world: World) -> None:
    assert bootstrap.react(world.deps, STEPS_QUEUE, "not json") == "malformed"
    foreign = '{"definitionId": 999, "releaseId": 1, "stage": "Dev", "attempt": 1, "step": 0, "run": 1}'
    assert bootstrap.react(world.deps, STEPS_QUEUE, foreign) == "no such release"

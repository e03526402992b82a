"""The sweeper and releases queued behind a stage's lane: it reads none of those still waiting (its cost does not
grow with the queue), and still gives a release its turn when the message saying so was lost."""

from __future__ import annotations

import pytest

from shared import bootstrap
from shared.config import EVENTS_QUEUE, STEPS_QUEUE
from shared.messages import MessageKind
from shared.ports import ProbeResult
from shared.services import releases, sweeper
from tests.integration.conftest import World, stage

pytestmark = pytest.mark.azurite


def queued_behind_production(world: World, count: int) -> tuple[int, list[int]]:
    """`count` releases of a definition whose Production deploys one at a time and waits for an approval
    first: the first release holds the lane, the others queue behind it."""
    production = {**stage("Production"), "queue": {"parallel": 1},
                  "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = int(world.define([production])["id"])
    rids = []
    for n in range(count):
        rids.append(world.release(did, f"1.{n}.0").id)
        world.pump()
    return did, rids


def test_releases_waiting_in_a_lane_cost_the_sweeper_one_read_of_the_lanes(world: World) -> None:
    _, few = queued_behind_production(world, 3)
    world.counter.reset()
    sweeper.sweep(world.deps)
    with_three = world.counter.total
    for n in range(6):
        world.release(int(world.get(few[0]).definition_id), f"2.{n}.0")
        world.pump()
    assert [world.get(r).stages["Production"].status for r in few] == ["inProgress", "queued", "queued"]
    world.counter.reset()
    sweeper.sweep(world.deps)
    assert world.counter.total == with_three  # nine waiting cost what three did


def test_a_lost_turn_is_still_given_at_the_next_sweep(world: World) -> None:
    _, (first, second) = queued_behind_production(world, 2)
    # the first leaves the lane: the turn goes to the second
    releases.abandon(world.deps, first, by="amita", comment="not this one")
    world.pump()
    lost = [m for m in world.receive(EVENTS_QUEUE) if f'"kind": "{MessageKind.LANE}"' in m.content
            or '"kind":"lane"' in m.content]
    assert lost, "the turn's message"
    for msg in lost:
        world.queue(EVENTS_QUEUE).delete_message(msg)  # the message saying so is lost
    assert world.get(second).stages["Production"].status == "queued"
    sweeper.sweep(world.deps)
    world.pump()
    assert world.get(second).stages["Production"].status in ("inProgress", "succeeded")


def two_in_dev(world: World) -> tuple[int, int, int]:
    """Two releases of a definition whose Dev deploys one at a time: the first's Dev waits for the last of its two
    health checks (a message the test holds), the second waits in Dev's lane."""
    checks = [{"type": "http-check", "path": "/health"}, {"type": "http-check", "path": "/health",
                                                           "intervalSeconds": 60}]
    did = int(world.define([{**stage("Dev", steps=checks), "queue": {"parallel": 1}}])["id"])
    world.deps.probe.answers["https://tailspin-dev.example/health"] = [  # type: ignore[attr-defined]
        ProbeResult(200, "ok"), ProbeResult(503, "warming up"), ProbeResult(200, "ok")]
    first = world.release(did, "1.0.0").id
    (msg,) = world.receive()
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # its first check passes, its second looks
    world.queue().delete_message(msg)  # again in 60 s: a message
    second = world.release(did, "1.1.0").id
    assert world.get(second).stages["Dev"].status == "queued"
    return did, first, second


def test_a_release_leaving_a_lane_starts_the_next_one_and_runs_its_steps_without_a_message(world: World) -> None:
    """The turn's write claims the next release's first step, and the invocation runs it (and the steps it starts)
    beside its own: no lane message, no step message, no read or claim of its own for that step."""
    _, first, second = two_in_dev(world)
    (msg,) = world.receive()  # the first's second check, due in 60 s
    world.bus.delays.clear()
    said = bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
    world.queue().delete_message(msg)
    assert f"let release {second} into 'Dev'" in said
    assert world.get(first).stages["Dev"].status == "succeeded"
    assert world.get(second).stages["Dev"].status == "succeeded"  # both its checks ran in that invocation
    assert not world.receive(EVENTS_QUEUE) and not world.receive()
    assert [s.run for s in world.get(second).stages["Dev"].deployments[0].steps] == [1, 1]  # once each


def test_a_step_claimed_by_the_turn_that_did_not_run_is_sent_again_after_its_lease(world: World) -> None:
    """The invocation that let the next release in stops before that release's first step recorded its run (a
    host that dies): its claim runs out, the sweeper sends the step again, and it runs once."""
    did, first, second = two_in_dev(world)
    (msg,) = world.receive()
    world.bus.delays.clear()
    # the first's result, the turn that lets the second in, then the second's first step's result: that one fails
    world.crash.arm(3, match=r"^POST .*\$batch")
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
    world.crash.arm(None)
    world.queue().delete_message(msg)
    assert world.get(first).stages["Dev"].status == "succeeded"
    dev = world.get(second).stages["Dev"]
    assert dev.status == "inProgress" and dev.deployments[0].steps[0].claim is not None and not world.receive()
    world.clock.advance(world.deps.settings.step_lease_seconds + 1)
    assert sweeper.sweep(world.deps)["redelivered"] == 1
    world.pump()
    dev = world.get(second).stages["Dev"]
    assert dev.status == "succeeded" and dev.deployments[0].steps[0].redeliveries == 1


def test_a_turn_the_leaving_release_could_not_hand_over_is_given_by_the_sweeper(world: World) -> None:
    did, first, second = two_in_dev(world)
    (msg,) = world.receive()
    world.crash.arm(1, match=rf"/{world.deps.settings.table_name}\(PartitionKey='{did:010d}',"
                             rf"RowKey='release%7C{second:010d}'\)")  # the next release's read, to start it
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # the step's own result stands
    world.queue().delete_message(msg)
    assert world.get(first).stages["Dev"].status == "succeeded"
    assert world.get(second).stages["Dev"].status == "queued"  # let in by its lane, not started
    sweeper.sweep(world.deps)
    world.pump()
    assert world.get(second).stages["Dev"].status == "succeeded"

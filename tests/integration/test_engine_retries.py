"""An engine that keeps failing, through the real runner: 5xx and throttling are retried with back-off
(growing, or as Retry-After says), then the step fails with the reason and the count; an engine that
fails now and then over a long run does not add up to a failure."""

from __future__ import annotations

import dataclasses
import re

from local.arm_deployments_emulator import KINDS, ArmDeploymentsEmulator
from shared import bootstrap
from shared.config import STEPS_QUEUE
from shared.services import step_logs
from shared.services.steps.runner import MAX_TARGET_RETRIES
from tests.integration.conftest import World, stage
from tests.integration.test_stage_engines import INFRA, arm  # noqa: F401  (fixture)


def step_log(world: World, rid: int) -> str:
    return str(step_logs.read(world.deps, world.get(rid), "Production", 1, 0))


def delays(log: str) -> list[float]:
    """The back-off of each retry, as the step's log says it (`…; retrying in 4s`)."""
    return [float(d) for d in re.findall(r"=> retry: .*; retrying in ([0-9.]+)s", log)]


def test_an_engine_answering_500_every_time_fails_the_step_after_8_retries_with_growing_delays(
        world: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    for kind in KINDS:
        arm.inject(kind, "error", 1000)
    rid = world.release(int(world.define([stage("Production", steps=[INFRA])])["id"])).id
    world.pump()
    dep = world.get(rid).stages["Production"].current
    assert dep.status == "failed" and dep.steps[0].status == "failed"
    assert f"(after {MAX_TARGET_RETRIES} retries)" in (dep.failure or "") and "ARM answered 500" in dep.failure
    waited = delays(step_log(world, rid))
    assert len(waited) == MAX_TARGET_RETRIES
    assert all(later > earlier for earlier, later in zip(waited, waited[1:], strict=False)), waited
    assert not arm.deployments  # nothing was reported, nor started, that ARM did not confirm


def test_an_engine_throttling_every_time_is_retried_after_its_retry_after_then_fails(
        world: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    arm.throttle_seconds = 7
    for kind in KINDS:
        arm.inject(kind, "throttle", 1000)
    rid = world.release(int(world.define([stage("Production", steps=[INFRA])])["id"])).id
    world.pump()
    dep = world.get(rid).stages["Production"].current
    assert dep.status == "failed" and f"(after {MAX_TARGET_RETRIES} retries)" in (dep.failure or "")
    assert "ARM answered 429" in dep.failure
    assert delays(step_log(world, rid)) == [7.0] * MAX_TARGET_RETRIES


def test_throttles_scattered_over_a_long_deployment_do_not_add_up_to_a_failure(
        world: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    arm.deployment_polls = 3 * MAX_TARGET_RETRIES  # running for many looks
    # Each look through the queue, one at a time, so that the test can refuse every other one.
    world.deps.settings = dataclasses.replace(world.deps.settings, step_wait_seconds=0)
    rid = world.release(int(world.define([stage("Production", steps=[INFRA])])["id"])).id
    throttled = looks = 0
    for _ in range(200):
        msgs = world.receive()
        if not msgs:
            break
        msg = msgs[0]
        world.clock.advance(world.bus.delays.pop(msg.content, 0.0))
        looks += bool(arm.deployments)
        if looks % 2 and throttled < 2 * MAX_TARGET_RETRIES:
            arm.inject("get", "throttle")  # every other look is refused: twice the retries a step allows in a row
            throttled += 1
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
        world.queue().delete_message(msg)
    dep = world.get(rid).stages["Production"].current
    assert throttled == 2 * MAX_TARGET_RETRIES
    assert dep.status == "succeeded", dep.failure
    assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rid}"}
    assert len([r for r in arm.requests if r.method == "PUT"]) == 1

"""A host that dies at any storage call of an engine step's handler, and the queue's redelivery: the
same end state, and the engine asked once (one ARM deployment), or asked again only with the same
idempotency key (an http-request whose answer was lost with the host)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.storage_policies import InjectedCrash
from shared import bootstrap
from shared.adapters.arm_deployments import ArmDeployments
from shared.config import STEPS_QUEUE, Settings
from shared.services import sweeper
from tests.integration.conftest import SUB, World, stage
from tests.integration.test_http_request import Service
from tests.integration.test_stage_engines import SPEC, TEMPLATE

pytestmark = pytest.mark.azurite

INFRA = {"type": "arm-deployment", "name": "infrastructure", "templateSpecId": SPEC,
         "parameters": {"name": "tailspin$(Release.ReleaseId)"}}


@pytest.fixture
def arm(world: World) -> Iterator[ArmDeploymentsEmulator]:
    with ArmDeploymentsEmulator() as emulator:
        emulator.add_resource_group(SUB, "rg-tailspin")
        emulator.add_template_spec(SPEC, TEMPLATE)
        world.deps.arm_deployments = ArmDeployments(Settings(deployments_endpoint=emulator.url,
                                                             arm_auth="local-emulator"))
        yield emulator


def crash_every_call_of_the_first_step(world: World, definition_id: int, check: object) -> int:
    """For k = 1, 2, …: a new release whose first step's handler dies at its k-th storage call, then the
    queue delivers the message again; `check(release_id)` after it settled. Returns how many calls."""
    crash_at = 0
    while True:
        crash_at += 1
        rel = world.release(definition_id)
        [msg] = world.receive()
        world.crash.arm(crash_at)
        try:
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            crashed = False
        except InjectedCrash:
            crashed = True
            world.crash.arm(None)
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # the queue redelivers it
        world.crash.arm(None)
        world.queue().delete_message(msg)
        world.pump()
        world.clock.advance(61)
        sweeper.sweep(world.deps)
        world.pump()
        check(rel.id, crash_at)  # type: ignore[operator]
        if not crashed:
            return crash_at


def test_an_arm_deployment_survives_a_crash_at_every_storage_call_and_deploys_once(
        world: World, arm: ArmDeploymentsEmulator) -> None:
    did = int(world.define([stage("Production", steps=[INFRA])])["id"])

    def check(rid: int, at: int) -> None:
        dep = world.get(rid).stages["Production"].current
        assert dep.status == "succeeded", (at, dep.failure)
        assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rid}"}, at
        puts = [r for r in arm.requests if r.method == "PUT" and f"slipway-{rid}-" in r.path]  # type: ignore[attr-defined]
        assert len(puts) == 1, f"crash at storage call {at}: {len(puts)} deployments"

    assert crash_every_call_of_the_first_step(world, did, check) > 4


def test_an_http_request_survives_a_crash_at_every_storage_call_with_one_idempotency_key(world: World) -> None:
    from shared.adapters.http_probe import HttpxProbe

    world.deps.probe = HttpxProbe("127.0.0.1")
    service = Service()
    try:
        did = int(world.define([stage("Production", steps=[{"type": "http-request", "url": service.url}])])["id"])

        def check(rid: int, at: int) -> None:
            dep = world.get(rid).stages["Production"].current
            assert dep.status == "succeeded", (at, dep.failure)
            keys = {c["headers"]["Idempotency-Key"] for c in service.calls if f"slipway-{rid}-" in
                    c["headers"]["Idempotency-Key"]}
            assert len(keys) == 1, at

        assert crash_every_call_of_the_first_step(world, did, check) > 4
    finally:
        service.server.shutdown()

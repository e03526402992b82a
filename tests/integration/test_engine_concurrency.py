"""Engine steps delivered concurrently: every message of the release handed to four threads at once, as four
copies of it (sent twice, by its handler and by the sweeper, and received by different hosts: each copy has
its own queue message id). One run holds the claim, so the engine is asked once: one ARM deployment, one
Container Apps job execution. (One message id running twice at once is a redelivery after its host died:
the Functions host keeps a message it still runs invisible.)"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.container_apps_emulator import ContainerAppsEmulator
from shared import bootstrap
from shared.config import STEPS_QUEUE
from shared.services import releases
from tests.integration.conftest import World, stage
from tests.integration.test_stage_engines import INFRA, MIGRATE, apps, arm  # noqa: F401  (fixtures)

pytestmark = pytest.mark.azurite  # concurrent writes meet on the real store's ETags

COPIES = 4


def deliver_each_message_to_threads_at_once(world: World, limit: int = 200) -> None:
    for _ in range(limit):
        batch = world.receive()
        if not batch:
            return
        for msg in batch:
            world.clock.advance(world.bus.delays.pop(msg.content, 0.0))
            start = threading.Barrier(COPIES)

            def deliver(body: str = msg.content, copy: str = "", start: threading.Barrier = start) -> None:
                start.wait()
                bootstrap.react(world.deps, STEPS_QUEUE, body, copy)

            threads = [threading.Thread(target=deliver, kwargs={"copy": f"{msg.id}-copy{n}"}) for n in range(COPIES)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            world.queue().delete_message(msg)
    raise AssertionError("still busy")


def once_each(world: World, rid: int) -> None:
    counts = Counter((e["type"], e.get("stage"), e.get("step")) for e in releases.events(world.deps, rid))
    assert counts[("stepSucceeded", "Production", 0)] == 1
    assert counts[("deploymentSucceeded", "Production", None)] == 1


def test_an_arm_deployment_delivered_to_four_threads_at_once_deploys_once(
        world: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    rid = world.release(int(world.define([stage("Production", steps=[INFRA])])["id"])).id
    deliver_each_message_to_threads_at_once(world)
    dep = world.get(rid).stages["Production"].current
    assert dep.status == "succeeded", dep.failure
    assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rid}"}
    assert len([r for r in arm.requests if r.method == "PUT"]) == 1
    once_each(world, rid)


def test_a_script_delivered_to_four_threads_at_once_runs_one_execution(
        world: World, apps: ContainerAppsEmulator) -> None:  # noqa: F811
    rid = world.release(int(world.define([stage("Production", steps=[MIGRATE])])["id"])).id
    deliver_each_message_to_threads_at_once(world)
    dep = world.get(rid).stages["Production"].current
    assert dep.status == "succeeded", dep.failure
    assert len(apps.executions("migrate")) == 1
    once_each(world, rid)

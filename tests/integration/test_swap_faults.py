"""Swaps under faults, with the real azure-mgmt-web client against the App Service emulator: after
any of them production runs the old or the new release, the records say which, and nothing is
swapped blindly twice."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local.app_service_emulator import AppServiceEmulator
from local.azurite import REPO
from local.storage_policies import InjectedCrash
from shared import bootstrap
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.blob_packages import BlobPackages
from shared.adapters.http_probe import HttpxProbe
from shared.config import STEPS_QUEUE
from shared.domain.target import Target
from shared.schemas.release import ReleaseIn
from shared.services import releases, what_runs_where
from tests.integration.conftest import World

sys.path.insert(0, str(REPO / "examples"))
from build import build_package, upload  # type: ignore[import-not-found]  # noqa: E402

pytestmark = pytest.mark.azurite  # storage faults, operation counts and limits need the real store

SUB, RG, SITE = "00000000-0000-0000-0000-0000000000dd", "rg-swap", "tailspin"
SWAPS = r"/slotsswap$"


@pytest.fixture
def slots(world: World) -> Iterator[tuple[World, AppServiceEmulator]]:
    with AppServiceEmulator() as emulator:
        # Deployments finish and slots restart at once here: these tests are about swaps (the
        # asynchronous ones are the adapter's and the deploy step's tests).
        emulator.deploy_seconds, emulator.restart_seconds = 0, 0
        emulator.now = world.clock.now  # one clock: App Service stamps swaps with the time Slipway reads
        emulator.add_site(SUB, RG, SITE, slots=["preprod"])
        # step_continue_seconds 0: these tests hand each step's message over themselves, one at a time.
        settings = world.deps.settings.__class__(**{**world.deps.settings.__dict__, "arm_endpoint": emulator.url,
                                                    "arm_auth": "local-emulator", "slot_url_scheme": "http",
                                                    "step_continue_seconds": 0})
        arm = ArmAppService(settings)
        arm.wait_seconds = 2
        world.deps.settings = settings
        world.deps.app_service = arm
        world.deps.packages = BlobPackages(settings, world.deps.store.clients)
        world.deps.probe = HttpxProbe()
        yield world, emulator


def define(world: World) -> int:
    target = {"subscriptionId": SUB, "resourceGroup": RG, "site": SITE}
    body = {"name": "Swap", "artifacts": [{"alias": "web", "source": "web"}], "stages": [
        {"name": "Preprod", "target": {**target, "slot": "preprod"}, "trigger": {"type": "afterRelease"},
         "steps": [{"type": "deploy-package"}]},
        {"name": "Production", "target": target, "trigger": {"type": "afterStages", "stages": ["Preprod"]},
         "steps": [{"type": "swap", "slot": "preprod"}]}]}
    from shared.services import definitions
    return int(definitions.create(world.deps, body, by="amita")["id"])


def release(world: World, did: int, version: str) -> int:
    data = build_package(version)
    settings = world.deps.settings
    upload(data, f"web/{version}.zip", settings.storage_connection, settings.packages_container)
    art = {"alias": "web", "version": version, "package": f"web/{version}.zip",
           "sha256": hashlib.sha256(data).hexdigest()}
    return releases.create(world.deps, ReleaseIn(definitionId=did, artifacts=[art]), by="amita")[0].id  # type: ignore[list-item]


def production(world: World) -> dict[str, Any]:
    return world.deps.app_service.read_slot(Target(SUB, RG, SITE)).app_settings


def recorded(world: World, did: int) -> Any:
    where = what_runs_where.what_runs_where(world.deps, did, verify=True)
    return next(s for s in where["stages"] if s["stage"] == "Production")


def swaps(emulator: AppServiceEmulator) -> int:
    """Swaps the emulator carried out: a refused call (429, 500, or 409 while one runs) does nothing."""
    return emulator.swaps_done


def first_release_in_production(world: World) -> tuple[int, int]:
    did = define(world)
    first = release(world, did, "1.0.0")
    world.pump()
    assert production(world)["SLIPWAY_VERSION"] == "1.0.0"
    return did, first


@pytest.mark.parametrize("fault", ["timeout-after-swap", "throttled", "server-error", "slow"])
def test_swap_faults_converge_without_a_blind_second_swap(slots: tuple[World, AppServiceEmulator],
                                                          fault: str) -> None:
    world, emulator = slots
    did, _ = first_release_in_production(world)
    before = swaps(emulator)
    if fault == "timeout-after-swap":
        emulator.inject_faults("POST", SWAPS, 504, after=True)
        emulator.operation_seconds = 0  # it finishes on its own: nobody has its URL to look at it
    elif fault == "throttled":
        emulator.inject_faults("POST", SWAPS, 429, headers={"Retry-After": "3"})
    elif fault == "server-error":
        emulator.inject_faults("POST", SWAPS, 500)
    else:
        emulator.operation_polls, emulator.operation_seconds = 50, 3600
        world.deps.app_service.wait_seconds = 0  # type: ignore[attr-defined]
    second = release(world, did, "1.1.0")
    for _ in range(20):  # the slow swap completes while the step keeps looking with its token
        world.pump()
        if world.get(second).stages["Production"].status != "inProgress":
            break
        emulator.operation_polls, emulator.operation_seconds = 0, 1.0
        world.deps.app_service.wait_seconds = 2  # type: ignore[attr-defined]
    got = world.get(second)
    assert got.stages["Production"].status == "succeeded", got.stages["Production"].current
    assert production(world)["SLIPWAY_VERSION"] == "1.1.0"
    assert swaps(emulator) - before == 1  # refused calls did nothing; no blind second swap
    assert recorded(world, did)["recorded"]["releaseId"] == second and recorded(world, did)["drift"] is False


def test_a_crash_at_any_storage_call_of_the_swap_step_converges(slots: tuple[World, AppServiceEmulator]) -> None:
    world, emulator = slots
    did, _ = first_release_in_production(world)
    crash_at, previous = 0, "1.0.0"
    while True:
        crash_at += 1
        version = f"1.{crash_at}.0"
        rel = release(world, did, version)
        [msg] = world.receive()  # Preprod's deploy step
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content)
        world.queue().delete_message(msg)
        [msg] = world.receive()  # Production's swap step
        before = swaps(emulator)
        world.crash.arm(crash_at)
        try:
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            crashed = False
        except InjectedCrash:
            crashed = True
        world.crash.arm(None)
        if crashed:
            assert production(world)["SLIPWAY_VERSION"] in (previous, version)
            # redelivered: the same message may take its claim back
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
        world.queue().delete_message(msg)
        world.pump()
        assert world.get(rel).stages["Production"].status == "succeeded", f"crash at {crash_at}"
        assert production(world)["SLIPWAY_VERSION"] == version
        assert swaps(emulator) - before == 1, f"crash at {crash_at}"
        assert recorded(world, did)["recorded"]["releaseId"] == rel
        previous = version
        if not crashed:
            break
    assert crash_at > 4


def define_with(world: World, production_steps: list[dict[str, Any]]) -> int:
    target = {"subscriptionId": SUB, "resourceGroup": RG, "site": SITE}
    body = {"name": "Preview", "artifacts": [{"alias": "web", "source": "web"}], "stages": [
        {"name": "Preprod", "target": {**target, "slot": "preprod"}, "trigger": {"type": "afterRelease"},
         "steps": [{"type": "set-app-settings", "settings": {"DB": "preprod-db", "FEATURE": "on"},
                    "sticky": ["DB"]}, {"type": "deploy-package"}, {"type": "restart"}]},
        {"name": "Production", "target": target, "trigger": {"type": "afterStages", "stages": ["Preprod"]},
         "steps": production_steps}]}
    from shared.services import definitions
    return int(definitions.create(world.deps, body, by="amita")["id"])


def test_swap_with_preview_checks_the_source_with_production_settings(
        slots: tuple[World, AppServiceEmulator]) -> None:
    world, emulator = slots
    world.deps.app_service.write_app_settings(Target(SUB, RG, SITE), {"DB": "prod-db"})
    did = define_with(world, [{"type": "start-swap", "slot": "preprod"},
                              {"type": "http-check", "slot": "preprod", "path": "/health"},
                              {"type": "complete-swap", "slot": "preprod"}])
    rel = release(world, did, "2.0.0")
    world.pump()
    assert world.get(rel).stages["Production"].status == "succeeded"
    prod = production(world)
    assert prod["SLIPWAY_VERSION"] == "2.0.0" and prod["DB"] == "prod-db" and prod["FEATURE"] == "on"
    preprod = world.deps.app_service.read_slot(Target(SUB, RG, SITE, "preprod")).app_settings
    assert preprod["DB"] == "preprod-db"  # sticky settings stayed with their slots


def test_a_canceled_preview_leaves_production_alone(slots: tuple[World, AppServiceEmulator]) -> None:
    world, emulator = slots
    world.deps.app_service.write_app_settings(Target(SUB, RG, SITE), {"DB": "prod-db"})
    did = define_with(world, [{"type": "start-swap", "slot": "preprod"}, {"type": "cancel-swap", "slot": "preprod"}])
    rel = release(world, did, "3.0.0")
    world.pump()
    assert world.get(rel).stages["Production"].status == "succeeded"
    assert production(world) == {"DB": "prod-db"}
    preprod = world.deps.app_service.read_slot(Target(SUB, RG, SITE, "preprod")).app_settings
    assert preprod["DB"] == "preprod-db" and preprod["SLIPWAY_VERSION"] == "3.0.0"
    assert swaps(emulator) == 0


def test_the_same_swap_sent_twice_and_handled_at_once_swaps_once(slots: tuple[World, AppServiceEmulator]) -> None:
    """An outbox item can go out twice (the handler that wrote it and another that found it still
    there); two copies of one swap run at the same moment must not swap the old version back."""
    import threading

    world, emulator = slots
    did, _ = first_release_in_production(world)
    second = release(world, did, "1.1.0")
    [msg] = world.receive()  # Preprod's deploy step
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
    world.queue().delete_message(msg)
    [msg] = world.receive()  # Production's swap step
    before = swaps(emulator)
    outcomes: list[str] = []
    def deliver(delivery: str) -> None:
        outcomes.append(bootstrap.react(world.deps, STEPS_QUEUE, msg.content, delivery))

    copies = [threading.Thread(target=deliver, args=(d,))
              for d in (msg.id, "a-second-copy", "a-third-copy")]
    for t in copies:
        t.start()
    for t in copies:
        t.join()
    world.queue().delete_message(msg)
    world.pump()
    assert swaps(emulator) - before == 1, outcomes
    assert production(world)["SLIPWAY_VERSION"] == "1.1.0"
    assert world.get(second).stages["Production"].status == "succeeded"
    assert sum(o.startswith("taken") or o == "stale" for o in outcomes) == 2, outcomes


def test_a_swap_whose_host_died_before_recording_it_is_recorded_from_its_intent(
        slots: tuple[World, AppServiceEmulator]) -> None:
    """The run swaps, then dies before it records anything; by the time the step is sent again the
    slots have changed (someone swapped them back). The new run finds its intent and App Service's
    last swap after it: it records the swap as done when it happened, and does not swap again."""
    from shared.services import sweeper

    world, emulator = slots
    emulator.operation_polls = 0  # the swap completes within the call: the next thing is recording it
    did, first = first_release_in_production(world)
    second = release(world, did, "1.1.0")
    while True:  # Preprod's deploy step, until Production's swap is next
        world.clock.advance(5)
        [msg] = world.receive()
        if '"Production"' in msg.content:
            break
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
        world.queue().delete_message(msg)
    # the host dies right after the swap, before its record (and the log that goes with it)
    world.crash.arm(1, match=r"\$batch")
    with pytest.raises(InjectedCrash):
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
    world.queue().delete_message(msg)  # back only after the host's 10-minute visibility: gone for this test
    assert production(world)["SLIPWAY_VERSION"] == "1.1.0" and emulator.swaps_done == 2
    world.clock.advance(5)
    world.deps.app_service.swap(Target(SUB, RG, SITE), "preprod", "production")  # somebody swaps it back
    assert production(world)["SLIPWAY_VERSION"] == "1.0.0"
    step = world.get(second).stages["Production"].current.steps[0]
    assert step.state["intent"]["sourceBefore"]["SLIPWAY_RELEASE_ID"] == str(second)
    world.clock.advance(world.deps.settings.step_lease_seconds + 1)  # the dead host's claim runs out
    assert sweeper.sweep(world.deps)["redelivered"] == 1
    world.pump()
    got = world.get(second).stages["Production"]
    assert got.status == "succeeded" and emulator.swaps_done == 3  # no swap of its own the second time
    assert "swapped preprod into production between" in (got.current.steps[0].message or "")
    events = [e for e in releases.events(world.deps, second) if e["type"] == "slotChanged"]
    assert any(e["stage"] == "Production" and f"{SITE} now runs release {second}" in e["message"]
               for e in events), events
    assert recorded(world, did)["drift"], "what runs where shows production changed outside Slipway"

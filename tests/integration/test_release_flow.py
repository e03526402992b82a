"""A release moving through its stages, with storage in Azurite and the step handler for real."""

from __future__ import annotations

import pytest

from shared import bootstrap
from shared.config import STEPS_QUEUE
from shared.domain.errors import Conflict, Invalid
from shared.ports import ProbeResult, TargetError
from shared.services import releases, step_logs
from shared.services.steps.context import RELEASE_MARK, RUN_FROM_PACKAGE
from tests.integration.conftest import World, stage


def statuses(world: World, release_id: int) -> dict[str, str]:
    return {name: run.status for name, run in world.get(release_id).stages.items()}


def test_release_deploys_dev_then_test_and_leaves_manual_production_waiting(world: World) -> None:
    d = world.define([stage("Dev"), stage("Test", {"type": "afterStages", "stages": ["Dev"]}),
                      stage("Production", {"type": "manual"})])
    rel = world.release(d["id"], "1.4.0")
    assert rel.name == "Release-1"
    world.pump()
    assert statuses(world, rel.id) == {"Dev": "succeeded", "Test": "succeeded", "Production": "notStarted"}
    dev = world.app_service.settings["/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/"
                                     "rg-tailspin/providers/Microsoft.Web/sites/tailspin/slots/dev"]
    assert RUN_FROM_PACKAGE not in dev  # a Python app: deployed by zip deployment, from Slipway's copy
    slot = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-tailspin/providers/" \
           "Microsoft.Web/sites/tailspin/slots/dev"
    assert world.app_service.content[slot] == b"1.4.0"
    assert dev[RELEASE_MARK] == str(rel.id)
    events = [e["type"] for e in releases.events(world.deps, rel.id)]
    assert events[0] == "releaseCreated" and events.count("deploymentSucceeded") == 2
    log = step_logs.read(world.deps, rel, "Dev", 1, 0)
    assert log is not None and "now runs 1.4.0" in log


def test_deploy_package_reconciles_and_does_not_rewrite_a_slot_that_has_the_release(world: World) -> None:
    d = world.define([stage("Dev", steps=[{"type": "deploy-package"}])])
    rel = world.release(d["id"])
    world.pump()
    assert world.app_service.writes == 1
    releases.deploy_stage(world.deps, rel.id, "Dev", by="tim")  # redeploy: the slot already has it
    world.pump()
    assert world.app_service.writes == 1
    assert [(dep.attempt, dep.status) for dep in world.get(rel.id).stages["Dev"].deployments] == \
        [(1, "succeeded"), (2, "succeeded")]


def test_http_check_retries_until_the_slot_answers(world: World) -> None:
    d = world.define([stage("Dev", steps=[{"type": "http-check", "path": "/health", "intervalSeconds": 5}])])
    world.deps.probe.answers["https://tailspin-dev.example/health"] = [  # type: ignore[attr-defined]
        ProbeResult(None, "", "ConnectError: refused"), ProbeResult(503, "warming up"), ProbeResult(200, "ok")]
    rel = world.release(d["id"])
    world.pump()
    assert statuses(world, rel.id) == {"Dev": "succeeded"}
    assert world.get(rel.id).stages["Dev"].current.steps[0].run == 3  # looked three times


def test_a_step_looking_again_soon_waits_in_its_invocation_and_one_looking_later_goes_through_the_queue(
        world: World) -> None:
    """A look within `step_wait_seconds` costs no message and no claim: the write that records the look claims
    the next one, the handler waits and runs it. A longer wait is a message, due when the step asked."""
    d = world.define([stage("Dev", steps=[{"type": "http-check", "path": "/health", "intervalSeconds": 5}]),
                      stage("Test", {"type": "afterStages", "stages": ["Dev"]},
                            steps=[{"type": "http-check", "path": "/health", "intervalSeconds": 30}])])
    for slot in ("dev", "test"):
        world.deps.probe.answers[f"https://tailspin-{slot}.example/health"] = [  # type: ignore[attr-defined]
            ProbeResult(503, "warming up"), ProbeResult(503, "warming up"), ProbeResult(200, "ok")]
    rel = world.release(d["id"])
    started = world.clock.now()
    (msg,) = world.receive()
    world.bus.delays.clear()
    bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # Dev's three looks and Test's first
    world.queue().delete_message(msg)
    got = world.get(rel.id)
    assert got.stages["Dev"].current.status == "succeeded" and got.stages["Dev"].current.steps[0].run == 3
    assert (world.clock.now() - started).total_seconds() == 10  # waited 5 s twice, on the clock
    test_step = got.stages["Test"].current.steps[0]
    assert test_step.run == 2 and test_step.claim is None  # its 30 s look is a message
    assert list(world.bus.delays.values()) == [30]
    world.pump()
    assert statuses(world, rel.id) == {"Dev": "succeeded", "Test": "succeeded"}


def test_http_check_fails_the_stage_at_its_timeout_and_blocks_downstream(world: World) -> None:
    check = {"type": "http-check", "path": "/", "expectText": "version 2", "timeoutSeconds": 30,
             "intervalSeconds": 10}
    d = world.define([stage("Dev", steps=[check]), stage("Test", {"type": "afterStages", "stages": ["Dev"]})])
    world.deps.probe.answers["https://tailspin-dev.example/"] = [ProbeResult(200, "version 1")]  # type: ignore[attr-defined]
    rel = world.release(d["id"])
    world.pump()
    got = world.get(rel.id)
    assert statuses(world, rel.id) == {"Dev": "failed", "Test": "notStarted"}
    assert "lacks 'version 2'" in (got.stages["Dev"].current.failure or "")


def test_throttled_target_is_retried_and_a_final_error_fails_with_the_reason(world: World) -> None:
    d = world.define([stage("Dev", steps=[{"type": "deploy-package"}]),
                      stage("Test", {"type": "manual"}, steps=[{"type": "deploy-package"}])])
    world.app_service.failures = [TargetError("429 Too Many Requests", retryable=True, retry_after=7)]
    rel = world.release(d["id"])
    world.pump()
    assert statuses(world, rel.id)["Dev"] == "succeeded"
    world.app_service.failures = [TargetError("site tailspin/test not found (ResourceNotFound)", retryable=False)]
    releases.deploy_stage(world.deps, rel.id, "Test", by="tim")
    world.pump()
    failure = world.get(rel.id).stages["Test"].current.failure
    assert failure == "step 'deploy-package' failed: site tailspin/test not found (ResourceNotFound)"


def test_same_version_with_another_digest_is_refused(world: World) -> None:
    d = world.define([stage("Dev")])
    world.release(d["id"], "2.0.0")
    from shared.schemas.release import ReleaseIn
    body = ReleaseIn(definitionId=d["id"], artifacts=[{"alias": "web", "version": "2.0.0",  # type: ignore[list-item]
                                                       "package": "tailspin-web/2.0.0.zip", "sha256": "f" * 64}])
    with pytest.raises(Conflict, match="already registered with sha256"):
        releases.create(world.deps, body, by="amita")


def test_unregistered_version_names_the_field(world: World) -> None:
    d = world.define([stage("Dev")])
    from shared.schemas.release import ReleaseIn
    body = ReleaseIn(definitionId=d["id"], artifacts=[{"alias": "web", "version": "9.9.9"}])  # type: ignore[list-item]
    with pytest.raises(Invalid) as err:
        releases.create(world.deps, body, by="amita")
    assert err.value.errors[0].field == "artifacts[0].version"


def test_idempotency_key_returns_the_first_release(world: World) -> None:
    d = world.define([stage("Dev", {"type": "manual"})])
    first = world.release(d["id"], idempotency_key="pipeline-run-77")
    again = world.release(d["id"], idempotency_key="pipeline-run-77")
    other = world.release(d["id"], idempotency_key="pipeline-run-78")
    assert again.id == first.id and other.id != first.id and other.name == "Release-2"


def test_abandon_cancels_and_drops_queued_step_messages(world: World) -> None:
    d = world.define([stage("Dev")])
    rel = world.release(d["id"])
    releases.abandon(world.deps, rel.id, by="amita", comment="wrong build")
    world.pump()
    assert world.app_service.writes == 0
    assert world.get(rel.id).status == "abandoned" and statuses(world, rel.id) == {"Dev": "canceled"}


def test_concurrent_creations_get_distinct_ids_and_names(world: World) -> None:
    import threading

    d = world.define([stage("Dev", {"type": "manual"})])
    world.release(d["id"], "1.0.0")
    made: list[object] = []
    threads = [threading.Thread(target=lambda: made.append(world.release(d["id"], "1.0.0"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.id for r in made}) == 6  # type: ignore[attr-defined]
    assert sorted(r.name for r in made) == [f"Release-{i}" for i in range(2, 8)]  # type: ignore[attr-defined]

"""The release state machine, command by command, with plain data and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.errors import Conflict, NotFound
from shared.domain.release import Release
from shared.domain.transitions import (
    Abandon,
    ClaimStep,
    CompleteStep,
    DeferStep,
    DeployStage,
    EnqueueStep,
    FailStep,
    StartRelease,
    Sweep,
    decide,
)
from shared.domain.waiting import why

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}


def stage(name: str, trigger: dict[str, Any], steps: int = 2, **extra: Any) -> dict[str, Any]:
    return {"name": name, "target": {**TARGET, "slot": name.lower()}, "trigger": trigger,
            "steps": [{"type": "wait", "name": f"{name}-{i}", "seconds": 0, **extra} for i in range(steps)]}


def release(*stages: dict[str, Any]) -> Release:
    return Release.new(id=7, definition_id="d1", revision=1, name="Release-7", created_at=NOW.isoformat(),
                       created_by="amita", reason="manual", description="", artifacts=[],
                       definition={"name": "Tailspin", "stages": list(stages)})


FORK_JOIN = (
    stage("Dev", {"type": "afterRelease"}),
    stage("QA", {"type": "afterStages", "stages": ["Dev"]}),
    stage("Preprod", {"type": "afterStages", "stages": ["Dev"]}),
    stage("Production", {"type": "afterStages", "stages": ["QA", "Preprod"]}),
)


def finish_stage(rel: Release, name: str, succeeded: bool = True) -> Release:
    """Complete every step of the stage's current deployment, as the step handler would."""
    for _ in range(10):
        dep = rel.stages[name].current
        assert dep is not None
        live = next((s for s in dep.steps if s.status == "inProgress"), None)
        if live is None:
            return rel
        rel = decide(rel, CompleteStep(name, dep.attempt, live.index, live.run, succeeded), NOW).release
    return rel


def statuses(rel: Release) -> dict[str, str]:
    return {n: s.status for n, s in rel.stages.items()}


def test_start_fires_after_release_stages_and_enqueues_first_step() -> None:
    d = decide(release(*FORK_JOIN), StartRelease(), NOW)
    assert statuses(d.release) == {"Dev": "inProgress", "QA": "notStarted", "Preprod": "notStarted",
                                   "Production": "notStarted"}
    assert d.effects == [EnqueueStep("Dev", 1, 0, 1, 0.0)]


def test_start_twice_decides_nothing() -> None:
    once = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    again = decide(once, StartRelease(), NOW)
    assert not again.changed and again.effects == []


def test_fork_then_join_waits_for_every_upstream() -> None:
    rel = finish_stage(decide(release(*FORK_JOIN), StartRelease(), NOW).release, "Dev")
    assert statuses(rel)["QA"] == "inProgress" and statuses(rel)["Preprod"] == "inProgress"
    rel = finish_stage(rel, "QA")
    assert statuses(rel)["Production"] == "notStarted"
    assert why(rel, "Production") == "waiting for upstream Preprod (inProgress)"
    rel = finish_stage(rel, "Preprod")
    assert statuses(rel)["Production"] == "inProgress"


def test_failed_upstream_never_fires_downstream() -> None:
    rel = finish_stage(decide(release(*FORK_JOIN), StartRelease(), NOW).release, "Dev", succeeded=False)
    assert statuses(rel) == {"Dev": "failed", "QA": "notStarted", "Preprod": "notStarted",
                             "Production": "notStarted"}
    assert "did not succeed" in (why(rel, "QA") or "")
    dep = rel.stages["Dev"].current
    assert dep is not None and [s.status for s in dep.steps] == ["failed", "skipped"]


@pytest.mark.parametrize("allow_partial, expected", [(True, "inProgress"), (False, "notStarted")])
def test_partial_success_fires_only_when_allowed(allow_partial: bool, expected: str) -> None:
    rel = release(stage("Dev", {"type": "afterRelease"}, steps=1, continueOnError=True),
                  stage("QA", {"type": "afterStages", "stages": ["Dev"], "allowPartialSuccess": allow_partial}))
    rel = finish_stage(decide(rel, StartRelease(), NOW).release, "Dev", succeeded=False)
    assert statuses(rel) == {"Dev": "partiallySucceeded", "QA": expected}


def test_manual_stage_waits_then_deploys_on_request_and_redeploys_as_new_attempt() -> None:
    rel = release(stage("Dev", {"type": "afterRelease"}), stage("Production", {"type": "manual"}))
    rel = finish_stage(decide(rel, StartRelease(), NOW).release, "Dev")
    assert statuses(rel)["Production"] == "notStarted"
    assert why(rel, "Production") == "manual trigger: waiting for someone to deploy it"
    rel = finish_stage(decide(rel, DeployStage("Production", "tim"), NOW).release, "Production")
    rel = decide(rel, DeployStage("Production", "tim"), NOW).release
    deps = rel.stages["Production"].deployments
    assert [(d.attempt, d.reason, d.status) for d in deps] == [(1, "manual", "succeeded"),
                                                                (2, "redeploy", "inProgress")]


def test_deploy_while_deploying_is_a_conflict_and_unknown_stage_not_found() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    with pytest.raises(Conflict):
        decide(rel, DeployStage("Dev", "tim"), NOW)
    with pytest.raises(NotFound):
        decide(rel, DeployStage("Nope", "tim"), NOW)


def test_duplicate_and_stale_step_messages_decide_nothing() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    first = decide(rel, CompleteStep("Dev", 1, 0, 1, True), NOW)
    assert first.changed
    assert not decide(first.release, CompleteStep("Dev", 1, 0, 1, True), NOW).changed  # duplicate
    assert not decide(first.release, CompleteStep("Dev", 1, 1, 99, True), NOW).changed  # wrong run
    assert not decide(first.release, CompleteStep("Dev", 2, 1, 1, True), NOW).changed  # wrong attempt


def test_defer_sends_a_new_run_and_the_old_message_goes_stale() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    d = decide(rel, DeferStep("Dev", 1, 0, 1, 30, "not yet", {"until": "x"}), NOW)
    assert d.effects == [EnqueueStep("Dev", 1, 0, 2, 30)]
    step = d.release.stages["Dev"].deployments[0].steps[0]
    assert step.state == {"until": "x"} and step.visible_at == (NOW + timedelta(seconds=30)).isoformat()
    assert not decide(d.release, DeferStep("Dev", 1, 0, 1, 30), NOW).changed


def test_poisoned_step_fails_the_deployment_with_the_reason() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    rel = decide(rel, FailStep("Dev", 1, 0, "message poisoned after 5 deliveries: boom"), NOW).release
    dep = rel.stages["Dev"].current
    assert dep is not None and dep.status == "failed"
    assert dep.failure == "step 'Dev-0' failed: message poisoned after 5 deliveries: boom"


def test_abandon_cancels_running_work_and_blocks_deployments() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    rel = decide(rel, Abandon("amita", "wrong build"), NOW).release
    assert rel.status == "abandoned" and statuses(rel)["Dev"] == "canceled"
    assert not decide(rel, CompleteStep("Dev", 1, 0, 1, True), NOW).changed
    with pytest.raises(Conflict):
        decide(rel, DeployStage("QA", "tim"), NOW)
    assert not decide(rel, Abandon("amita"), NOW).changed


def test_sweep_sends_a_claimed_step_again_when_its_heartbeat_stops_then_fails_it() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    rel = decide(rel, ClaimStep("Dev", 1, 0, 1, "host-a", 30), NOW).release
    assert not decide(rel, Sweep(30, 1), NOW + timedelta(seconds=29)).changed  # the claim still holds
    d = decide(rel, Sweep(30, 1), NOW + timedelta(seconds=31))
    assert d.effects == [EnqueueStep("Dev", 1, 0, 2, 0)]  # a new run: host-a's late answer is stale
    assert not decide(d.release, CompleteStep("Dev", 1, 0, 1, True), NOW).changed
    claimed = decide(d.release, ClaimStep("Dev", 1, 0, 2, "host-b", 30), NOW + timedelta(seconds=31)).release
    d2 = decide(claimed, Sweep(30, 1), NOW + timedelta(seconds=62))
    assert d2.release.stages["Dev"].status == "failed"


def test_sweep_sends_an_unclaimed_step_again_for_the_same_run_without_counting_it() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    assert not decide(rel, Sweep(30, 1), NOW + timedelta(seconds=59)).changed  # maybe still in the queue
    d = decide(rel, Sweep(30, 1), NOW + timedelta(seconds=61))
    assert d.effects == [EnqueueStep("Dev", 1, 0, 1, 0)]  # whichever copy is received first runs it
    step = d.release.stages["Dev"].current.steps[0]  # type: ignore[union-attr]
    assert step.redeliveries == 0 and step.visible_at == (NOW + timedelta(seconds=61)).isoformat()
    assert not decide(d.release, Sweep(30, 1), NOW + timedelta(seconds=62)).changed  # once per period
    taken = decide(d.release, ClaimStep("Dev", 1, 0, 1, "first", 30), NOW).release
    assert not decide(taken, ClaimStep("Dev", 1, 0, 1, "second", 30), NOW).changed


def test_a_claim_keeps_its_intent_and_its_holder_renews_it() -> None:
    rel = decide(release(*FORK_JOIN), StartRelease(), NOW).release
    rel = decide(rel, ClaimStep("Dev", 1, 0, 1, "a", 30), NOW).release
    rel = decide(rel, ClaimStep("Dev", 1, 0, 1, "a", 30, {"act": "swap"}), NOW + timedelta(seconds=20)).release
    step = rel.stages["Dev"].current.steps[0]  # type: ignore[union-attr]
    assert step.state["intent"] == {"act": "swap"} and step.claimed_until == (NOW + timedelta(seconds=50)).isoformat()
    assert not decide(rel, ClaimStep("Dev", 1, 0, 1, "b", 30, {"act": "other"}), NOW + timedelta(seconds=40)).changed


def swap_release() -> Release:
    prod = {"name": "Production", "target": TARGET, "trigger": {"type": "afterRelease"},
            "steps": [{"type": "swap", "name": "Swap", "slot": "preprod"},
                      {"type": "http-check", "name": "Check", "postSwap": True},
                      {"type": "wait", "name": "After", "seconds": 0}]}
    return decide(release(prod), StartRelease(), NOW).release


def test_a_failing_post_swap_check_adds_a_swap_back_step_then_fails_with_both_reasons() -> None:
    rel = swap_release()
    rel = decide(rel, CompleteStep("Production", 1, 0, 1, True, "swapped"), NOW).release
    d = decide(rel, CompleteStep("Production", 1, 1, 1, False, "503 from /health"), NOW)
    dep = d.release.stages["Production"].current
    assert dep is not None and [s.type for s in dep.steps] == ["swap", "http-check", "wait", "swap-back"]
    assert [s.status for s in dep.steps] == ["succeeded", "failed", "skipped", "inProgress"]
    assert d.effects == [EnqueueStep("Production", 1, 3, 1, 0.0)] and dep.status == "inProgress"
    done = decide(d.release, CompleteStep("Production", 1, 3, 1, True, "production runs release 6 again"), NOW)
    dep = done.release.stages["Production"].current
    assert dep is not None and dep.status == "failed"
    assert dep.failure == ("post-swap check 'Check' failed: 503 from /health; swapped back automatically: "
                           "production runs release 6 again")


def test_a_failing_check_before_any_swap_just_fails() -> None:
    rel = swap_release()
    d = decide(rel, CompleteStep("Production", 1, 0, 1, False, "preprod does not run release 7"), NOW)
    dep = d.release.stages["Production"].current
    assert dep is not None and dep.status == "failed" and len(dep.steps) == 3


def test_slot_records_come_only_with_an_accepted_completion() -> None:
    rel = swap_release()
    slots = ({"slot": "/x/slots/preprod", "releaseId": 7, "version": "1.1", "how": "swap"},)
    d = decide(rel, CompleteStep("Production", 1, 0, 1, True, "swapped", slots), NOW)
    assert d.slots[0]["by"] == "system" and d.slots[0]["stage"] == "Production"
    assert not decide(d.release, CompleteStep("Production", 1, 0, 1, True, "again", slots), NOW).slots


def test_rollback_is_a_deployment_reason() -> None:
    rel = decide(release(stage("Dev", {"type": "manual"})), DeployStage("Dev", "tim", "rollback"), NOW).release
    assert rel.stages["Dev"].deployments[0].reason == "rollback"

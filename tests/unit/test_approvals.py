"""Approval rules: policies, eligibility, one vote per identity, timeouts, deferral, reassignment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.domain.access import Forbidden, Principal
from shared.domain.errors import Conflict
from shared.domain.release import Release
from shared.domain.transitions import (
    Abandon,
    ArmTimer,
    CastVote,
    CompleteStep,
    Defer,
    DeployStage,
    Reassign,
    Sweep,
    Wake,
    decide,
)
from tests.unit.test_transitions import NOW, TARGET, release

TIM = Principal("tim@contoso.com")
MANAGER = Principal("maria@contoso.com", groups=frozenset({"management"}))
BOSS = Principal("bob@contoso.com", groups=frozenset({"management"}))
ADMIN = Principal("ada@contoso.com", roles=frozenset({"admin"}))
AMITA = Principal("amita")  # created the release in these tests


def prod(pre: dict[str, Any] | None = None, post: dict[str, Any] | None = None) -> Release:
    stage: dict[str, Any] = {"name": "Production", "target": TARGET, "trigger": {"type": "manual"},
                             "steps": [{"type": "wait", "name": "w", "seconds": 0}]}
    if pre:
        stage["preApprovals"] = pre
    if post:
        stage["postApprovals"] = post
    return decide(release(stage), DeployStage("Production", "amita"), NOW).release


def status(rel: Release) -> tuple[str, str]:
    dep = rel.stages["Production"].current
    assert dep is not None
    return rel.stages["Production"].status, dep.phase


def vote(rel: Release, who: Principal, decision: str = "approve", **kw: Any) -> Release:
    return decide(rel, CastVote("Production", 1, kw.pop("kind", "pre"), who, decision, **kw), NOW).release


def test_pre_approval_holds_the_deployment_then_any_one_approver_releases_it() -> None:
    rel = prod({"approvers": ["tim@contoso.com", "management"], "policy": "anyOne"})
    assert status(rel) == ("inProgress", "preApproval")
    d = decide(rel, CastVote("Production", 1, "pre", BOSS, "approve", "ok"), NOW)
    assert status(d.release) == ("inProgress", "steps") and d.effects[0].step == 0  # type: ignore[union-attr]


def test_all_in_any_order_counts_each_identity_once() -> None:
    rel = prod({"approvers": ["tim@contoso.com", "management"], "policy": "allInAnyOrder"})
    rel = vote(rel, MANAGER)
    assert status(rel)[1] == "preApproval"
    with pytest.raises(Conflict):
        vote(rel, MANAGER)  # a second vote by the same person
    with pytest.raises(Forbidden):
        vote(rel, BOSS)  # management is already satisfied: nothing left for bob
    assert status(vote(rel, TIM))[1] == "steps"


def test_in_sequence_the_next_approver_must_decide_first() -> None:
    rel = prod({"approvers": ["tim@contoso.com", "management"], "policy": "allInSequence"})
    with pytest.raises(Forbidden, match="waiting for tim@contoso.com;"):
        vote(rel, MANAGER)
    assert status(vote(vote(rel, TIM), MANAGER))[1] == "steps"


def test_n_of_m() -> None:
    rel = prod({"approvers": ["tim@contoso.com", "management"], "policy": "count", "required": 1})
    assert status(vote(rel, TIM))[1] == "steps"


def test_requester_and_strangers_cannot_approve_and_a_rejection_rejects() -> None:
    rel = prod({"approvers": ["amita", "tim@contoso.com"], "policy": "anyOne"})
    with pytest.raises(Forbidden, match="requested this deployment"):
        vote(rel, AMITA)
    with pytest.raises(Forbidden, match="not an approver"):
        vote(rel, Principal("eve@contoso.com"))
    rejected = vote(rel, TIM, "reject", comment="not today")
    dep = rejected.stages["Production"].current
    assert rejected.stages["Production"].status == "rejected" and dep is not None
    assert dep.failure == "pre-deployment approval: rejected by tim@contoso.com: not today"
    assert dep.steps[0].status == "pending"  # nothing ran


def test_a_decision_on_a_superseded_attempt_is_a_conflict() -> None:
    rel = vote(prod({"approvers": ["tim@contoso.com"]}), TIM, "reject")
    rel = decide(rel, DeployStage("Production", "amita"), NOW).release
    with pytest.raises(Conflict, match="attempt 1 .* not the current one"):
        vote(rel, TIM)


def test_admin_override() -> None:
    rel = prod({"approvers": ["tim@contoso.com"]})
    with pytest.raises(Forbidden):
        vote(rel, MANAGER, override=True)
    assert status(vote(rel, ADMIN, override=True, comment="incident 42"))[1] == "steps"


def test_timeout_rejects_and_an_early_wake_does_nothing() -> None:
    rel = prod({"approvers": ["tim@contoso.com"], "timeoutMinutes": 60})
    assert not decide(rel, Wake("Production", 1), NOW + timedelta(minutes=59)).changed
    late = decide(rel, Wake("Production", 1), NOW + timedelta(minutes=61)).release
    dep = late.stages["Production"].current
    assert late.stages["Production"].status == "rejected" and dep is not None and "timed out" in (dep.failure or "")
    swept = decide(rel, Sweep(900, 3), NOW + timedelta(minutes=61)).release  # a lost timer
    assert swept.stages["Production"].status == "rejected"


def test_deferral_waits_for_its_time_after_approval() -> None:
    rel = prod({"approvers": ["tim@contoso.com"]})
    until = (NOW + timedelta(hours=3)).isoformat()
    rel = decide(rel, Defer("Production", 1, TIM, until, "after the load test"), NOW).release
    d = decide(rel, CastVote("Production", 1, "pre", TIM, "approve"), NOW)
    assert status(d.release)[1] == "deferred" and d.effects == [ArmTimer("Production", 1, until)]
    assert status(decide(d.release, Wake("Production", 1), NOW + timedelta(hours=1)).release)[1] == "deferred"
    woke = decide(d.release, Wake("Production", 1), NOW + timedelta(hours=3))
    assert status(woke.release)[1] == "steps"


def test_reassign_hands_the_decision_to_someone_else() -> None:
    rel = prod({"approvers": ["tim@contoso.com"]})
    rel = decide(rel, Reassign("Production", 1, "pre", TIM, "maria@contoso.com", "on holiday"), NOW).release
    with pytest.raises(Forbidden):
        vote(rel, TIM)
    assert status(vote(rel, MANAGER))[1] == "steps"


def test_post_approval_comes_after_the_steps() -> None:
    rel = prod(post={"approvers": ["tim@contoso.com"]})
    rel = decide(rel, CompleteStep("Production", 1, 0, 1, True), NOW).release
    assert status(rel) == ("inProgress", "postApproval")
    assert vote(rel, TIM, kind="post").stages["Production"].status == "succeeded"


def test_abandon_cancels_pending_approvals() -> None:
    rel = decide(prod({"approvers": ["tim@contoso.com"]}), Abandon("amita"), NOW).release
    dep = rel.stages["Production"].current
    assert dep is not None and dep.approvals["pre"].status == "canceled"
    with pytest.raises(Conflict):
        vote(rel, TIM)


def test_state_round_trips_through_storage_shape() -> None:
    rel = vote(prod({"approvers": ["tim@contoso.com", "management"]}), TIM, comment="fine")
    assert Release.from_dict(rel.to_dict()) == rel


ANN = Principal("ann@contoso.com")


def test_reassigning_to_someone_already_on_the_list_or_who_decided_is_refused() -> None:
    rel = prod({"approvers": ["tim@contoso.com", "ann@contoso.com"], "policy": "allInAnyOrder"})
    with pytest.raises(Conflict, match="already an approver"):
        decide(rel, Reassign("Production", 1, "pre", TIM, "ANN@contoso.com", "ann has it"), NOW)
    rel = prod({"approvers": ["tim@contoso.com", "management"], "policy": "allInAnyOrder"})
    rel = vote(rel, MANAGER)
    with pytest.raises(Conflict, match="already decided"):
        decide(rel, Reassign("Production", 1, "pre", TIM, "maria@contoso.com"), NOW)


def test_one_identity_fills_one_entry_even_when_an_entry_is_listed_twice() -> None:
    rel = prod({"approvers": ["management", "management"], "policy": "allInAnyOrder"})
    rel = vote(rel, MANAGER)
    assert status(rel)[1] == "preApproval"
    with pytest.raises(Conflict, match="already decided"):
        vote(rel, MANAGER)
    assert status(vote(rel, BOSS))[1] == "steps"


def test_an_admin_overriding_their_own_deployment_needs_a_reason_and_is_marked() -> None:
    from shared.domain.errors import Invalid

    requester = Principal("amita", roles=frozenset({"admin"}))
    rel = prod({"approvers": ["tim@contoso.com"]})
    with pytest.raises(Invalid, match="reason"):
        decide(rel, CastVote("Production", 1, "pre", requester, "approve", "  ", override=True), NOW)
    d = decide(rel, CastVote("Production", 1, "pre", requester, "approve", "prod is down", override=True), NOW)
    vote_ = d.release.stages["Production"].current.approvals["pre"].votes[0]  # type: ignore[union-attr]
    assert vote_.override and vote_.self_override
    assert any(e.type == "approvalOverridden" and "self-override" in e.message for e in d.events)
    other = decide(rel, CastVote("Production", 1, "pre", ADMIN, "approve", "ok", override=True), NOW)
    assert not other.release.stages["Production"].current.approvals["pre"].votes[0].self_override  # type: ignore

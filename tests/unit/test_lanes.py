"""Queue policies, Azure DevOps' documented R1…R5 example: five releases reach QA, which has pre-
and post-deployment approvals and runs one deployment at a time."""

from __future__ import annotations

from typing import Any

from shared.domain.access import Principal
from shared.domain.lanes import Lane
from shared.domain.release import Release
from shared.domain.transitions import (
    Abandon,
    CastVote,
    CompleteStep,
    DeployStage,
    LaneGrant,
    LaneMessage,
    LaneSkip,
    decide,
)
from tests.unit.test_transitions import NOW, TARGET

TIM = Principal("tim@contoso.com")


def qa_release(rid: int, policy: str | None, step: str = "wait") -> Release:
    stage: dict[str, Any] = {"name": "QA", "target": TARGET, "trigger": {"type": "manual"},
                             "steps": [{"type": step, "name": "w", "seconds": 0, "slot": "staging"}],
                             "preApprovals": {"approvers": ["tim@contoso.com"]},
                             "postApprovals": {"approvers": ["tim@contoso.com"]},
                             **({"queue": {"parallel": 1, "policy": policy}} if policy else {})}
    return Release.new(id=rid, definition_id="1", revision=1, name=f"R{rid}", created_at=NOW.isoformat(),
                       created_by="amita", reason="manual", description="", artifacts=[],
                       definition={"name": "Fabrikam", "stages": [stage]})


class World:
    """Five releases and one lane, with lane messages delivered as the events queue would."""

    def __init__(self, policy: str | None, step: str = "wait") -> None:
        self.releases = {rid: qa_release(rid, policy, step) for rid in range(1, 6)}
        self.lanes: dict[str, Lane] = {}

    def act(self, rid: int, command: Any) -> None:
        d = decide(self.releases[rid], command, NOW, self.lanes)
        self.releases[rid] = d.release
        self.lanes.update(d.lanes)
        for effect in d.effects:
            if isinstance(effect, LaneMessage):
                cmd = LaneGrant(effect.stage) if effect.grant else LaneSkip(effect.stage, rid)
                self.act(effect.release_id, cmd)

    def state(self, rid: int) -> tuple[str, str]:
        dep = self.releases[rid].stages["QA"].current
        assert dep is not None
        return dep.status, dep.phase

    def pending_approvals(self) -> list[int]:
        return [rid for rid, rel in self.releases.items() if rel.stages["QA"].current is not None
                and any(a.status == "pending" for a in rel.stages["QA"].current.approvals.values())]

    def run_through(self, rid: int) -> None:
        self.act(rid, CastVote("QA", 1, "pre", TIM, "approve"))
        self.act(rid, CompleteStep("QA", 1, 0, 1, True))
        assert self.state(rid) == ("inProgress", "postApproval")
        self.act(rid, CastVote("QA", 1, "post", TIM, "approve"))


def test_all_in_sequence_asks_the_next_approval_only_after_the_previous_release_finished() -> None:
    w = World("sequence")
    for rid in range(1, 6):
        w.act(rid, DeployStage("QA", "amita"))
    assert w.pending_approvals() == [1]
    assert [w.state(r)[0] for r in range(2, 6)] == ["queued"] * 4
    w.run_through(1)
    assert w.releases[1].stages["QA"].status == "succeeded" and w.pending_approvals() == [2]
    for rid in range(2, 6):
        w.run_through(rid)
    assert [w.releases[r].stages["QA"].status for r in range(1, 6)] == ["succeeded"] * 5
    assert w.lanes["QA"] == Lane([], [])


def test_latest_only_skips_the_ones_in_between() -> None:
    w = World("latest")
    for rid in range(1, 6):
        w.act(rid, DeployStage("QA", "amita"))
    assert [w.releases[r].stages["QA"].status for r in range(2, 5)] == ["canceled"] * 3
    assert "skipped: release" in (w.releases[2].stages["QA"].current.failure or "")  # type: ignore[union-attr]
    assert w.state(5) == ("queued", "queued")
    w.run_through(1)
    assert w.pending_approvals() == [5]


def test_abandoning_the_running_release_hands_the_lane_on() -> None:
    w = World("sequence")
    w.act(1, DeployStage("QA", "amita"))
    w.act(2, DeployStage("QA", "amita"))
    w.act(1, Abandon("amita"))
    assert w.pending_approvals() == [2] and w.lanes["QA"].active == [2]
    w.act(2, Abandon("amita"))
    assert w.lanes["QA"] == Lane([], [])


def test_a_stage_that_swaps_deploys_one_release_at_a_time_without_a_queue_policy() -> None:
    """Two releases swapping the same slots at once would swap each other's build out, or overwrite
    the staging slot one of them is about to swap: the stage has a lane of one whatever it says."""
    w = World(None, step="swap")
    for rid in range(1, 4):
        w.act(rid, DeployStage("QA", "amita"))
    assert w.pending_approvals() == [1] and [w.state(r)[0] for r in (2, 3)] == ["queued"] * 2
    w.run_through(1)
    assert w.pending_approvals() == [2]
    unlimited = World(None)
    for rid in range(1, 4):
        unlimited.act(rid, DeployStage("QA", "amita"))
    assert unlimited.pending_approvals() == [1, 2, 3]  # a stage that does not swap has no lane by default


def test_the_sweeper_gives_a_queued_release_the_turn_whose_message_was_lost() -> None:
    from shared.domain.transitions import Sweep

    w = World("sequence")
    w.act(1, DeployStage("QA", "amita"))
    w.act(2, DeployStage("QA", "amita"))
    d = decide(w.releases[1], Abandon("amita"), NOW, w.lanes)  # its lane turn message is lost
    w.releases[1] = d.release
    w.lanes.update(d.lanes)
    assert w.state(2) == ("queued", "queued") and w.lanes["QA"].active == [2]
    swept = decide(w.releases[2], Sweep(30, 3), NOW, w.lanes)
    assert swept.release.stages["QA"].current.status == "inProgress"  # type: ignore[union-attr]
    assert not decide(swept.release, Sweep(30, 3), NOW, w.lanes).changed
    w.act(3, DeployStage("QA", "amita"))
    w.releases[2] = swept.release
    late_turn = decide(swept.release, LaneGrant("QA"), NOW, w.lanes)  # the lost message arrives after all
    assert not late_turn.changed and not late_turn.lanes  # it neither leaves the lane nor lets release 3 in

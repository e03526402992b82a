"""Any interleaving of every command keeps the release's invariants (hypothesis), over a plan with
approvals, gates, windows, a deferral and a lane. A command may be refused only with the domain's
own errors; a KeyError or IndexError is a bug, never a refusal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.access import Forbidden, Principal
from shared.domain.errors import Conflict, Invalid, NotFound
from shared.domain.gates import Reading
from shared.domain.lanes import Lane
from shared.domain.release import Release
from shared.domain.transitions import (
    Abandon,
    CastVote,
    ClaimStep,
    CompleteStep,
    DeferStep,
    DeployStage,
    FailStep,
    GateClaim,
    GateSample,
    IgnoreGate,
    Intervene,
    LaneGrant,
    LaneSkip,
    RecordPreview,
    StartRelease,
    StepCallback,
    Sweep,
    Wake,
    decide,
    reads_lanes,
)
from shared.domain.transitions.commands import Command, Defer, Reassign
from shared.domain.vocabulary import FINISHED, GOOD, Choice, Kind, Reason, Status
from tests.unit.test_transitions import NOW, TARGET, release

TIM = Principal("tim@contoso.com")
AMITA = Principal("amita")
ADMIN = Principal("ops@contoso.com", frozenset(), frozenset({"admin", "releaseManager", "reader"}))
SIGNALS = [{"name": "errors", "type": "metric", "metric": "Http5xx", "aggregation": "Total", "operator": "<=",
            "threshold": 0}]
GATE = {"signals": SIGNALS, "intervalMinutes": 1, "timeoutMinutes": 10}


def stage(name: str, trigger: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "target": {**TARGET, "slot": name.lower()}, "trigger": trigger,
            "steps": [{"type": "wait", "name": f"{name}-{i}", "seconds": 0} for i in range(2)], **extra}


PLAN = (
    stage("Dev", {"type": "afterRelease"}, preApprovals={"approvers": ["tim@contoso.com"], "timeoutMinutes": 30}),
    stage("QA", {"type": "afterStages", "stages": ["Dev"]}, postGates=GATE, queue={"parallel": 1, "policy": "latest"}),
    stage("Preprod", {"type": "afterStages", "stages": ["Dev"]}, preGates=GATE,
          windows=[{"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "16:00", "timeZone": "UTC"}]),
    {**stage("Production", {"type": "afterStages", "stages": ["QA", "Preprod"]},
             postApprovals={"approvers": ["tim@contoso.com", "amita"], "policy": "sequence"}),
     "steps": [{"type": "wait", "name": "Production-0", "seconds": 0},
               {"type": "manual-intervention", "name": "check by hand", "instructions": "See $(Release.ReleaseName)",
                "assignees": ["amita"], "timeoutMinutes": 60},
               {"type": "wait", "name": "Production-2", "seconds": 0}]},
)
STAGES = [s["name"] for s in PLAN] + ["Nowhere"]
REFUSALS = (Conflict, NotFound, Forbidden, Invalid)
"""How the domain says no; anything else escaping `decide` is a bug."""

names = st.sampled_from(STAGES)
attempts = st.integers(1, 3)
kinds = st.sampled_from(list(Kind))
people = st.sampled_from([TIM, AMITA, ADMIN])
tokens = st.sampled_from(["t1", "t2"])
readings = st.tuples(st.sampled_from([Reading("errors", value=0.0), Reading("errors", value=3.0),
                                      Reading("errors", error="throttled"), Reading("errors", inconclusive="no data")]))
later = st.integers(0, 7200).map(lambda s: (NOW + timedelta(seconds=s)).isoformat())
STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    StartRelease: st.builds(StartRelease),
    DeployStage: st.builds(DeployStage, names, st.just("tim"),
                           st.sampled_from([None, Reason.REDEPLOY, Reason.ROLLBACK]),
                           st.sampled_from([None, "incident 42"]), st.booleans(), st.sampled_from([None]) | later),
    Abandon: st.builds(Abandon, st.just("amita")),
    ClaimStep: st.builds(ClaimStep, names, attempts, st.integers(0, 2), st.integers(1, 3), tokens),
    CompleteStep: st.builds(CompleteStep, names, attempts, st.integers(0, 2), st.integers(1, 3), st.booleans()),
    DeferStep: st.builds(DeferStep, names, attempts, st.integers(0, 2), st.integers(1, 3), st.floats(0, 60)),
    FailStep: st.builds(FailStep, names, attempts, st.integers(0, 2), st.just("poisoned")),
    Sweep: st.builds(Sweep, st.just(30.0), st.integers(0, 2)),
    CastVote: st.builds(CastVote, names, attempts, kinds, people, st.sampled_from(list(Choice)), st.just(""),
                        st.booleans()),
    Defer: st.builds(Defer, names, attempts, people, later),
    Reassign: st.builds(Reassign, names, attempts, kinds, people, st.sampled_from(["amita", "bob@contoso.com"])),
    GateClaim: st.builds(GateClaim, names, attempts, kinds, st.integers(1, 4), tokens),
    GateSample: st.builds(GateSample, names, attempts, kinds, st.integers(1, 4), tokens, readings),
    IgnoreGate: st.builds(IgnoreGate, names, kinds, people, st.just("known noise")),
    Wake: st.builds(Wake, names, attempts),
    RecordPreview: st.builds(RecordPreview, names, attempts, st.integers(0, 2), st.just(("+ create x",)),
                             st.sampled_from(["", "what-if failed"])),
    StepCallback: st.builds(StepCallback, names, attempts, st.integers(0, 2), st.just("h"), st.booleans(),
                            st.just("done")),
    Intervene: st.builds(Intervene, names, attempts, st.integers(0, 2), people, st.booleans()),
    LaneGrant: st.builds(LaneGrant, names),
    LaneSkip: st.builds(LaneSkip, names, st.integers(8, 9)),
}
command = st.one_of(*STRATEGIES.values())


def test_the_property_drives_every_command() -> None:
    assert set(STRATEGIES) == set(get_args(Command))


def check_invariants(before: Release, after: Release) -> None:
    for name, run in after.stages.items():
        old = before.stages[name].deployments
        # finished deployments never change; attempts only grow
        for i, dep in enumerate(old):
            if dep.status in FINISHED:
                assert after.stages[name].deployments[i] == dep
        assert len(run.deployments) >= len(old)
        assert sum(d.status == Status.IN_PROGRESS for d in run.deployments) <= 1
        assert [d.attempt for d in run.deployments] == list(range(1, len(run.deployments) + 1))
        live = run.current
        if live is not None and live.status == Status.IN_PROGRESS:
            assert sum(s.status == Status.IN_PROGRESS for s in live.steps) <= 1
    stage_plan = {s.name: s for s in after.plan.stages}
    for name, run in after.stages.items():
        started = run.deployments[len(before.stages[name].deployments):]
        if any(d.reason == "automated" for d in started) and stage_plan[name].after:
            # an automatic start after stages happens only when every upstream stage is good
            assert all(after.stages[up].status in GOOD for up in stage_plan[name].after)
        for dep in started:
            if dep.reason == "automated":  # break-glass is one deployment's, never the next stage's
                assert dep.break_glass is None
    if before.status == "abandoned":
        assert after.status == "abandoned"
        assert all(len(after.stages[n].deployments) == len(before.stages[n].deployments) for n in after.stages)
    assert after.event_seq >= before.event_seq


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(command, st.integers(0, 900)), max_size=50))
def test_any_interleaving_keeps_the_invariants(steps: list[tuple[Command, int]]) -> None:
    rel, now, lanes = release(*PLAN), NOW, dict[str, Lane]()
    for cmd, seconds in steps:
        now += timedelta(seconds=seconds)
        try:
            decision = decide(rel, cmd, now, lanes)
        except REFUSALS:
            continue
        nxt = decision.release
        nxt.event_seq = rel.event_seq + len(decision.events)
        check_invariants(rel, nxt)
        assert decision.changed or nxt == rel  # no silent changes
        assert reads_lanes(cmd) or not decision.lanes  # their writer does not read lanes: they must not change one
        rel, lanes = nxt, {**lanes, **decision.lanes}
    for run in rel.stages.values():
        if run.status == Status.NOT_STARTED:
            assert not run.deployments

"""Any interleaving of commands keeps the release's invariants (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.errors import Conflict
from shared.domain.release import Release
from shared.domain.transitions import (
    Abandon,
    CompleteStep,
    DeferStep,
    DeployStage,
    FailStep,
    StartRelease,
    Sweep,
    decide,
)
from shared.domain.vocabulary import FINISHED, GOOD, Status
from tests.unit.test_transitions import FORK_JOIN, NOW, release

STAGES = [s["name"] for s in FORK_JOIN]

command = st.one_of(
    st.builds(StartRelease),
    st.builds(DeployStage, st.sampled_from(STAGES), st.just("tim")),
    st.builds(CompleteStep, st.sampled_from(STAGES), st.integers(1, 3), st.integers(0, 1), st.integers(0, 4),
              st.booleans()),
    st.builds(DeferStep, st.sampled_from(STAGES), st.integers(1, 3), st.integers(0, 1), st.integers(0, 4),
              st.floats(0, 60)),
    st.builds(FailStep, st.sampled_from(STAGES), st.integers(1, 3), st.integers(0, 1), st.just("poisoned")),
    st.builds(Abandon, st.just("amita")),
    st.builds(Sweep, st.just(30.0), st.integers(0, 2)),
)


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
    if before.status == "abandoned":
        assert after.status == "abandoned"
        assert all(len(after.stages[n].deployments) == len(before.stages[n].deployments) for n in STAGES)
    assert after.event_seq >= before.event_seq


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(command, st.integers(0, 120)), max_size=40))
def test_any_interleaving_keeps_the_invariants(steps: list[tuple[object, int]]) -> None:
    rel, now = release(*FORK_JOIN), NOW
    for cmd, seconds in steps:
        now += timedelta(seconds=seconds)
        try:
            decision = decide(rel, cmd, now)  # type: ignore[arg-type]
        except Conflict:
            continue
        except LookupError:
            continue
        nxt = decision.release
        nxt.event_seq = rel.event_seq + len(decision.events)
        check_invariants(rel, nxt)
        assert decision.changed or nxt == rel  # no silent changes
        rel = nxt
    for run in rel.stages.values():
        if run.status == Status.NOT_STARTED:
            assert not run.deployments

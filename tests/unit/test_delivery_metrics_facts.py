"""The metrics from facts (what the rollup keeps) equal the metrics from the releases themselves, for any history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.delivery_metrics import delivery_metrics, metrics_from_facts, release_facts, stage_names
from shared.domain.release import Release
from shared.domain.vocabulary import Reason, Status
from tests.unit.test_delivery_metrics import SINCE, T0, UNTIL, add, approval, at, dep, release

STATUSES = [Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED, Status.FAILED, Status.REJECTED, Status.CANCELED]
deployments = st.lists(st.tuples(
    st.sampled_from(["Dev", "Production"]), st.sampled_from(STATUSES), st.floats(-600, 4000),
    st.floats(0, 90), st.sampled_from([Reason.AUTOMATED, Reason.ROLLBACK, Reason.MANUAL]),
    st.sampled_from([None, "step failed", "post-swap check failed; swapped back automatically"]),
    st.booleans()), max_size=8)


def history(shapes: list[list[tuple[Any, ...]]]) -> list[Release]:
    made = []
    for rid, shape in enumerate(shapes, start=1):
        rel = release(rid, created=-100 * rid, artifacts=[{"alias": "web", "version": "1", **(
            {"committedAt": at(-100 * rid - 30)} if rid % 2 else {})}])
        for name, status, finished, took, reason, failure, approved in shape:
            approvals = {"pre": approval("pre", "approved", finished - took - 5, [("ana", "approve", finished - took)])}
            add(rel, name, dep(status, finished=finished, queued=finished - took - 10, started=finished - took,
                               reason=reason, failure=failure, steps=[(finished - took, finished)],
                               approvals=approvals if approved else None))
        made.append(rel)
    return made


@settings(max_examples=200, deadline=None)
@given(st.lists(deployments, max_size=6), st.sampled_from([None, "Dev", "Production"]),
       st.floats(0, 2000), st.floats(1, 3000))
def test_facts_give_the_numbers_the_releases_give(shapes: list[list[tuple[Any, ...]]], stage: str | None,
                                                   start: float, length: float) -> None:
    releases = history(shapes)
    facts = [fact for rel in releases for fact in release_facts(rel).values()]
    for since, until in ((SINCE, UNTIL), (T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length))):
        assert metrics_from_facts(facts, stage_names(releases), since=since, until=until, stage=stage) == \
            delivery_metrics(releases, since=since, until=until, stage=stage)


def test_a_fact_key_names_one_deployment_and_folding_again_gives_the_same_facts() -> None:
    rel = add(release(7), "Production", dep("failed", finished=10), dep("succeeded", finished=20, reason="rollback"))
    assert sorted(release_facts(rel)) == ["d|7|1|Production", "d|7|2|Production", "l|7"]
    assert release_facts(rel) == release_facts(Release.from_dict(rel.to_dict()))

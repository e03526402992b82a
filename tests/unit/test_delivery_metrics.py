"""Delivery metrics over hand-built releases: every number below is worked out by hand in the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.approvals import Approval, Vote
from shared.domain.delivery_metrics import delivery_metrics, is_change_failure
from shared.domain.release import Deployment, Release, StepRun

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(days=2)
NULL = {"median": None, "p90": None}


def at(minutes: float) -> str:
    """A stored timestamp `minutes` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat()


def release(rid: int, *, created: float = 0, artifacts: list[dict[str, Any]] | None = None,
            stages: tuple[str, ...] = ("Dev", "Production")) -> Release:
    return Release.new(id=rid, definition_id="d1", revision=1, name=f"Release-{rid}", created_at=at(created),
                       created_by="amita", reason="manual", description="",
                       artifacts=artifacts if artifacts is not None else [{"alias": "web", "version": "1.0"}],
                       definition={"name": "Tailspin", "stages": [{"name": s} for s in stages]})


def dep(status: str, *, finished: float | None, queued: float | None = None, started: float | None = None,
        reason: str = "automated", failure: str | None = None, steps: list[tuple[float, float]] | None = None,
        approvals: dict[str, Approval] | None = None) -> Deployment:
    """A deployment; by default queued and started at its finish, with no timed steps."""
    queued = finished if queued is None else queued
    assert queued is not None
    return Deployment(attempt=0, status=status, reason=reason, requested_by="amita", queued_at=at(queued),
                      started_at=at(queued if started is None else started),
                      finished_at=None if finished is None else at(finished), failure=failure,
                      steps=[StepRun(i, "wait", f"step-{i}", "succeeded", 1, at(s), at(e))
                             for i, (s, e) in enumerate(steps or [])],
                      approvals=approvals or {})


def add(rel: Release, stage: str, *deps: Deployment) -> Release:
    run = rel.stages[stage]
    for d in deps:
        d.attempt = len(run.deployments) + 1
        run.deployments.append(d)
        run.status = d.status
    return rel


def approval(kind: str, status: str, requested: float, votes: list[tuple[str, str, float]]) -> Approval:
    return Approval(kind=kind, status=status, approvers=["ana", "ben"], policy="allInAnyOrder", required=2,
                    requester_cannot_approve=True, requested_at=at(requested), deadline=at(requested + 600),
                    votes=[Vote(by, decision, "", at(when), by) for by, decision, when in votes])


def metrics(releases: list[Release], **kwargs: Any) -> dict[str, Any]:
    return delivery_metrics(releases, since=SINCE, until=UNTIL, **kwargs)


def test_counts_and_frequency_per_day() -> None:
    rel = add(release(1), "Dev",
              dep("succeeded", finished=10), dep("succeeded", finished=100), dep("partiallySucceeded", finished=200),
              dep("failed", finished=300), dep("rejected", finished=400), dep("canceled", finished=500),
              dep("inProgress", queued=600, finished=None))
    dev = metrics([rel])["stages"]["Dev"]
    # Six finished attempts; three good ones over two days; rejected counts as failed but changed nothing.
    assert (dev["deployments"], dev["succeeded"], dev["failed"]) == (6, 3, 2)
    assert dev["deploymentFrequencyPerDay"] == 1.5
    assert dev["changeFailureRate"] == round(1 / 6, 3) == 0.167


def test_change_failure_rate_counts_a_swap_back_and_a_rollback() -> None:
    swapped = "post-swap check 'smoke' failed: HTTP 500; swapped back automatically: slots swapped"
    prod = [dep("succeeded", finished=10), dep("failed", finished=20, failure=swapped),
            dep("succeeded", finished=30, reason="rollback"), dep("succeeded", finished=40)]
    stage = metrics([add(release(1), "Production", *prod)])["stages"]["Production"]
    assert (stage["deployments"], stage["succeeded"], stage["failed"]) == (4, 3, 1)
    assert stage["changeFailureRate"] == 0.5


def test_a_swap_back_or_a_rollback_is_a_failure_whatever_the_status() -> None:
    assert is_change_failure(dep("partiallySucceeded", finished=1, failure="Swapped back by hand"))
    assert is_change_failure(dep("canceled", finished=1, failure="x; swap-back failed: 409"))
    assert is_change_failure(dep("succeeded", finished=1, reason="rollback"))
    assert not is_change_failure(dep("rejected", finished=1, failure="pre-deployment approval: rejected by ana"))
    assert not is_change_failure(dep("succeeded", finished=1, reason="redeploy"))


def test_time_to_restore_runs_to_the_next_good_deployment_of_the_stage_in_any_release() -> None:
    one = add(release(1), "Production", dep("failed", finished=100))
    two = add(release(2), "Production", dep("failed", finished=130), dep("succeeded", finished=160))
    # A good deployment of another stage restores nothing in Production.
    add(two, "Dev", dep("succeeded", finished=110))
    # Restored after the period ends: still a sample, the failure was in the period.
    three = add(release(3), "Production", dep("failed", finished=2000), dep("succeeded", finished=3000))
    stage = metrics([one, two, three])["stages"]["Production"]
    # Samples 60, 30 and 1000 minutes.
    assert stage["timeToRestoreMinutes"] == 60.0
    assert stage["changeFailureRate"] == 0.75  # three failures in four finished in the period
    # Never restored: no sample, rather than a made-up one (60 and 30 stay).
    four = add(release(4), "Production", dep("failed", finished=2500, reason="rollback"))
    assert metrics([one, two, four])["stages"]["Production"]["timeToRestoreMinutes"] == 45.0
    assert metrics([one])["stages"]["Production"]["timeToRestoreMinutes"] is None


def test_a_successful_rollback_restores_rather_than_starting_an_outage() -> None:
    rel = add(release(1), "Production", dep("failed", finished=100), dep("succeeded", finished=130, reason="rollback"),
              dep("succeeded", finished=200))
    stage = metrics([rel])["stages"]["Production"]
    assert stage["changeFailureRate"] == round(2 / 3, 3)
    assert stage["timeToRestoreMinutes"] == 30.0


def test_p90_is_the_nearest_rank() -> None:
    runs = [dep("succeeded", finished=100 * i + i, queued=100 * i, steps=[(100 * i, 100 * i + i)])
            for i in range(1, 11)]
    stage = metrics([add(release(1), "Dev", *runs)])["stages"]["Dev"]
    # Ten samples of 1..10 minutes: rank ceil(0.9 * 10) = 9.
    assert stage["executionMinutes"] == {"median": 5.5, "p90": 9.0}


def test_approval_queue_and_execution_are_measured_apart() -> None:
    pre = approval("pre", "approved", 10, [("ana", "approve", 40), ("ben", "approve", 70)])
    post = approval("post", "approved", 80, [("ana", "approve", 95)])
    # Ten minutes in the lane, 60 for pre-approval, steps 70-75 and 76-80 (the gap is not execution),
    # 15 for post-approval.
    first = dep("succeeded", queued=0, started=10, finished=95, steps=[(70, 75), (76, 80)],
                approvals={"pre": pre, "post": post})
    skipped = approval("pre", "skipped", 200, [])
    second = dep("succeeded", queued=200, started=230, finished=240, steps=[(230, 240)], approvals={"pre": skipped})
    stage = metrics([add(release(1), "Production", first, second)])["stages"]["Production"]
    assert stage["waitMinutes"] == {"approval": {"median": 37.5, "p90": 60.0}, "queue": {"median": 20.0, "p90": 30.0}}
    assert stage["executionMinutes"] == {"median": 9.5, "p90": 10.0}


def test_a_timed_out_approval_waited_until_the_deployment_ended_not_until_its_last_vote() -> None:
    timed_out = approval("pre", "rejected", 0, [("ana", "approve", 5)])
    rejected = approval("pre", "rejected", 0, [("ana", "approve", 5), ("ben", "reject", 8)])
    deps = [dep("rejected", queued=0, started=0, finished=120, approvals={"pre": timed_out}),
            dep("rejected", queued=0, started=0, finished=9, approvals={"pre": rejected})]
    stage = metrics([add(release(1), "Production", *deps)])["stages"]["Production"]
    assert stage["waitMinutes"]["approval"] == {"median": 64.0, "p90": 120.0}
    # Nothing ran: no execution sample rather than a zero.
    assert stage["executionMinutes"] == NULL


def test_queue_wait_takes_off_only_approval_time_inside_it_and_is_never_negative() -> None:
    # Data where the approval fell between queued and started: 30 minutes queued, 20 of them approving.
    inside = dep("succeeded", queued=0, started=30, finished=40,
                 approvals={"pre": approval("pre", "approved", 0, [("ana", "approve", 20)])})
    stage = metrics([add(release(1), "Dev", inside)])["stages"]["Dev"]
    assert stage["waitMinutes"]["queue"] == {"median": 10.0, "p90": 10.0}
    covering = dep("succeeded", queued=0, started=10, finished=60,
                   approvals={"pre": approval("pre", "approved", 0, [("ana", "approve", 50)])})
    stage = metrics([add(release(2), "Dev", covering)])["stages"]["Dev"]
    assert stage["waitMinutes"]["queue"] == {"median": 0.0, "p90": 0.0}
    # The usual order (lane first, approval after started) leaves the whole lane wait as queue.
    after = dep("succeeded", queued=0, started=10, finished=60,
                approvals={"pre": approval("pre", "approved", 10, [("ana", "approve", 50)])})
    stage = metrics([add(release(3), "Dev", after)])["stages"]["Dev"]
    assert stage["waitMinutes"]["queue"] == {"median": 10.0, "p90": 10.0}


def test_lead_time_from_the_earliest_commit_to_the_first_good_production_deployment() -> None:
    a = release(1, created=30, artifacts=[{"alias": "web", "committedAt": at(20)},
                                          {"alias": "api", "committedAt": at(10)}])
    add(a, "Dev", dep("succeeded", finished=60))
    add(a, "Production", dep("succeeded", finished=130), dep("succeeded", finished=400))
    b = release(2, created=110, artifacts=[{"alias": "web", "committedAt": at(100)}])
    add(b, "Production", dep("failed", finished=200), dep("succeeded", finished=250))
    # First good production deployment before the period: its redeploy inside delivers nothing new.
    c = release(3, created=-400, artifacts=[{"alias": "web", "committedAt": at(-500)}])
    add(c, "Production", dep("succeeded", finished=-100), dep("succeeded", finished=500))
    result = metrics([a, b, c])
    assert result["leadTimeMinutes"] == {"median": 135.0, "p90": 150.0}
    assert result["leadTimeFrom"] == "commit"
    assert metrics([a, b, c], production_stage="Dev")["leadTimeMinutes"] == {"median": 50.0, "p90": 50.0}


def test_lead_time_falls_back_to_release_creation_and_says_so() -> None:
    plain = add(release(1, created=40), "Production", dep("succeeded", finished=100))
    assert metrics([plain])["leadTimeMinutes"] == {"median": 60.0, "p90": 60.0}
    assert metrics([plain])["leadTimeFrom"] == "releaseCreated"
    committed = add(release(2, created=40, artifacts=[{"alias": "web", "committedAt": at(0)}]), "Production",
                    dep("succeeded", finished=100))
    assert metrics([plain, committed])["leadTimeFrom"] == "mixed"
    assert metrics([plain, committed])["leadTimeMinutes"] == {"median": 80.0, "p90": 100.0}


def test_lead_time_uses_each_releases_last_stage_by_default() -> None:
    short = add(release(1, stages=("Dev", "Staging")), "Staging", dep("succeeded", finished=30))
    add(short, "Dev", dep("succeeded", finished=10))
    assert metrics([short])["leadTimeMinutes"] == {"median": 30.0, "p90": 30.0}


def test_the_period_is_half_open() -> None:
    rel = add(release(1), "Dev", dep("succeeded", finished=-1), dep("succeeded", finished=0),
              dep("succeeded", finished=2 * 1440 - 1), dep("succeeded", finished=2 * 1440))
    result = metrics([rel])
    assert result["period"] == {"from": "2026-03-02T00:00:00+00:00", "to": "2026-03-04T00:00:00+00:00"}
    assert result["stages"]["Dev"]["deployments"] == 2
    assert result["stages"]["Dev"]["deploymentFrequencyPerDay"] == 1.0


def test_the_stage_filter_keeps_one_stage() -> None:
    rel = add(release(1), "Dev", dep("succeeded", finished=10))
    add(rel, "Production", dep("failed", finished=20), dep("succeeded", finished=30))
    assert list(metrics([rel])["stages"]) == ["Dev", "Production"]
    only = metrics([rel], stage="Production")["stages"]
    assert list(only) == ["Production"]
    assert (only["Production"]["deployments"], only["Production"]["timeToRestoreMinutes"]) == (2, 10.0)


def test_no_releases_give_nulls() -> None:
    assert metrics([]) == {"period": {"from": SINCE.isoformat(), "to": UNTIL.isoformat()}, "stages": {},
                           "leadTimeMinutes": NULL, "leadTimeFrom": None}
    assert metrics([], stage="Production")["stages"] == {"Production": {
        "deployments": 0, "succeeded": 0, "failed": 0, "deploymentFrequencyPerDay": 0.0, "changeFailureRate": None,
        "timeToRestoreMinutes": None, "waitMinutes": {"approval": NULL, "queue": NULL}, "executionMinutes": NULL}}


def test_a_period_needs_zones_and_a_positive_length() -> None:
    with pytest.raises(ValueError, match="time zone"):
        delivery_metrics([], since=datetime(2026, 3, 2), until=UNTIL)
    with pytest.raises(ValueError, match="after since"):
        delivery_metrics([], since=UNTIL, until=SINCE)

"""DORA-style delivery metrics over releases, with waits kept apart from execution.

Pure functions over `Release` objects: no I/O, so the numbers can be checked by hand. A deployment's
wall-clock time mixes waiting (for a lane, for approvers) with doing (the steps); reporting one number
would blame the pipeline for slow approvers, or hide slow steps behind fast approvals, so each part is
measured on its own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.domain.approvals import Approval
from shared.domain.release import Deployment, Release
from shared.domain.vocabulary import GOOD, ApprovalStatus, Choice, Reason, Status

SWAP_BACK_MARKS = ("swapped back", "swap-back")
"""Words of the failure text `transitions.after_step` writes after a post-swap check failed."""


def delivery_metrics(releases: list[Release], *, since: datetime, until: datetime, stage: str | None = None,
                     production_stage: str | None = None) -> dict[str, Any]:
    """Deployment frequency, change failure rate, time to restore, waits, execution and lead time.

    A deployment counts in the period when it finished in [since, until): finishing is when its
    outcome is known, so a period's numbers do not change once the period is over.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    if until <= since:
        raise ValueError("until must be after since")
    days = (until - since).total_seconds() / 86400
    names = [stage] if stage is not None else _stage_names(releases)
    return {
        "period": {"from": since.isoformat(), "to": until.isoformat()},
        "stages": {name: _stage_metrics(releases, name, since, until, days) for name in names},
        **_lead_time(releases, since, until, production_stage),
    }


def _stage_names(releases: Iterable[Release]) -> list[str]:
    """Every stage any release has, in the order first seen (definition order for one definition)."""
    seen: dict[str, None] = {}
    for release in releases:
        for name in release.stages:
            seen.setdefault(name, None)
    return list(seen)


def _stage_metrics(releases: list[Release], name: str, since: datetime, until: datetime,
                   days: float) -> dict[str, Any]:
    every = [d for r in releases if (run := r.stages.get(name)) for d in run.deployments if d.finished_at]
    done = [d for d in every if since <= _at(d.finished_at) < until]
    failures = [d for d in done if is_change_failure(d)]
    succeeded = sum(d.status in GOOD for d in done)
    approval_waits: list[float] = []
    queue_waits: list[float] = []
    executions: list[float] = []
    for dep in done:
        spans = [span for a in dep.approvals.values() if (span := approval_span(a, dep))]
        approval_waits += [(end - start).total_seconds() for start, end in spans]
        queue = queue_wait_seconds(dep, spans)
        if queue is not None:
            queue_waits.append(queue)
        execution = execution_seconds(dep)
        if execution is not None:
            executions.append(execution)
    return {
        "deployments": len(done),
        "succeeded": succeeded,
        "failed": sum(d.status in (Status.FAILED, Status.REJECTED) for d in done),
        "deploymentFrequencyPerDay": round(succeeded / days, 3),
        "changeFailureRate": round(len(failures) / len(done), 3) if done else None,
        "timeToRestoreMinutes": _minutes(_median(_restore_seconds(failures, every))),
        "waitMinutes": {"approval": _summary(approval_waits), "queue": _summary(queue_waits)},
        "executionMinutes": _summary(executions),
    }


def is_change_failure(dep: Deployment) -> bool:
    """A failed deployment, one whose change was swapped back out, or a rollback (the change before it failed)."""
    failure = (dep.failure or "").casefold()
    return (dep.status == Status.FAILED or any(mark in failure for mark in SWAP_BACK_MARKS)
            or dep.reason == Reason.ROLLBACK)


def _restore_seconds(failures: list[Deployment], every: list[Deployment]) -> list[float]:
    """From each failure to the stage's next good deployment, in any release and even after the period.

    A successful rollback is itself the restoration, not an outage to time; failures not yet restored
    give no sample (there is no honest number for them yet).
    """
    good = sorted(_at(d.finished_at) for d in every if d.status in GOOD)
    samples = []
    for dep in failures:
        if dep.status in GOOD:
            continue
        failed_at = _at(dep.finished_at)
        restored = next((t for t in good if t > failed_at), None)
        if restored is not None:
            samples.append((restored - failed_at).total_seconds())
    return samples


def approval_span(approval: Approval, dep: Deployment) -> tuple[datetime, datetime] | None:
    """When the approval waited: from its request until it was decided, timed out or canceled.

    An approval has no decided-at field: the vote that settled it is its last vote. A timeout or
    cancellation leaves no vote, so it ended when the deployment finished. Skipped approvals never
    waited, and pending ones have no end yet.
    """
    if approval.status in (ApprovalStatus.SKIPPED, ApprovalStatus.PENDING):
        return None
    settled_by_vote = approval.status == ApprovalStatus.APPROVED or (
        approval.status == ApprovalStatus.REJECTED and any(v.decision == Choice.REJECT for v in approval.votes))
    if settled_by_vote and approval.votes:
        end = approval.votes[-1].at
    elif dep.finished_at:
        end = dep.finished_at
    else:
        return None
    start = _at(approval.requested_at)
    return start, max(start, _at(end))


def queue_wait_seconds(dep: Deployment, approval_spans: list[tuple[datetime, datetime]]) -> float | None:
    """From queued to started, less any approval wait inside that interval, never negative.

    Today `started_at` is set when the lane lets the deployment in, before approvals are asked for,
    so only the overlap is taken off: subtracting whole approval waits would count them twice.
    None for a deployment that never started (canceled while queued).
    """
    if not dep.started_at:
        return None
    queued, started = _at(dep.queued_at), _at(dep.started_at)
    if started <= queued:
        return 0.0
    overlap = _covered(approval_spans, queued, started)
    return max(0.0, (started - queued).total_seconds() - overlap)


def execution_seconds(dep: Deployment) -> float | None:
    """Time spent running steps: the sum of each timed step, so waits between steps do not count.

    None when no step both started and finished (nothing ran, e.g. rejected before the steps).
    """
    spans = [(_at(s.started_at), _at(s.finished_at)) for s in dep.steps if s.started_at and s.finished_at]
    if not spans:
        return None
    return sum(max(0.0, (end - start).total_seconds()) for start, end in spans)


def _covered(spans: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> float:
    """Seconds of [lo, hi] covered by the union of `spans` (overlapping approvals count once)."""
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in spans if e > lo and s < hi)
    total, cursor = 0.0, lo
    for start, end in clipped:
        start = max(start, cursor)
        if end > start:
            total += (end - start).total_seconds()
            cursor = end
    return total


def _lead_time(releases: list[Release], since: datetime, until: datetime,
               production_stage: str | None) -> dict[str, Any]:
    """From the release's earliest commit to its first good production deployment, if that fell in the period.

    A release deployed to production before the period and redeployed in it delivered nothing new,
    so only its first good deployment counts.
    """
    samples: list[float] = []
    sources: set[str] = set()
    for release in releases:
        target = production_stage or _last_stage(release)
        run = release.stages.get(target) if target else None
        good = sorted(_at(d.finished_at) for d in (run.deployments if run else []) if d.status in GOOD
                      and d.finished_at)
        if not good or not since <= good[0] < until:
            continue
        start, source = _change_start(release)
        samples.append(max(0.0, (good[0] - start).total_seconds()))
        sources.add(source)
    return {"leadTimeMinutes": _summary(samples),
            "leadTimeFrom": (next(iter(sources)) if len(sources) == 1 else "mixed") if sources else None}


def _last_stage(release: Release) -> str | None:
    stages = release.definition.get("stages") or []
    return stages[-1].get("name") if stages else None


def _change_start(release: Release) -> tuple[datetime, str]:
    """The earliest artifact commit time, and whether it came from commits or the release's creation.

    Artifacts without `committedAt` fall back to the release's creation: the change is at least that old.
    """
    created = _at(release.created_at)
    commits = [_at(a["committedAt"]) for a in release.artifacts if a.get("committedAt")]
    if not commits:
        return created, "releaseCreated"
    if len(commits) == len(release.artifacts):
        return min(commits), "commit"
    return min([*commits, created]), "mixed"


# -- the same numbers from facts: what a rollup keeps of each deployment instead of the releases


Fact = dict[str, Any]
"""What the metrics need of one finished deployment (kind `d`) or of one release's lead time (kind `l`):
small, plain JSON, computed once from the release when the deployment is folded."""


def release_facts(release: Release, *, production_stage: str | None = None) -> dict[str, Fact]:
    """Every fact of a release, by a key unique to the deployment (or the release's lead time): folding the
    same release twice yields the same keys, so a rollup keyed by them counts each deployment once."""
    facts: dict[str, Fact] = {}
    for name, run in release.stages.items():
        for dep in run.deployments:
            if not dep.finished_at:
                continue
            spans = [span for a in dep.approvals.values() if (span := approval_span(a, dep))]
            facts[f"d|{release.id}|{dep.attempt}|{name}"] = {
                "k": "d", "stage": name, "at": _at(dep.finished_at).isoformat(), "status": str(dep.status),
                "cf": is_change_failure(dep), "aw": [(end - start).total_seconds() for start, end in spans],
                "qw": queue_wait_seconds(dep, spans), "ex": execution_seconds(dep)}
    lead = _lead_fact(release, production_stage)
    if lead is not None:
        facts[f"l|{release.id}"] = lead
    return facts


def _lead_fact(release: Release, production_stage: str | None) -> Fact | None:
    target = production_stage or _last_stage(release)
    run = release.stages.get(target) if target else None
    good = sorted(_at(d.finished_at) for d in (run.deployments if run else []) if d.status in GOOD and d.finished_at)
    if not good:
        return None
    start, source = _change_start(release)
    return {"k": "l", "at": good[0].isoformat(), "seconds": max(0.0, (good[0] - start).total_seconds()),
            "from": source}


def stage_names(releases: Iterable[Release]) -> list[str]:
    """Every stage any release has, in the order first seen (what `delivery_metrics` lists)."""
    return _stage_names(releases)


def metrics_from_facts(facts: Iterable[Fact], stages: list[str], *, since: datetime, until: datetime,
                       stage: str | None = None) -> dict[str, Any]:
    """`delivery_metrics` from facts: the same answer, given the facts of every deployment finished in the
    period, and of those after it that restore a failure of the period (time to restore looks ahead)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    if until <= since:
        raise ValueError("until must be after since")
    days = (until - since).total_seconds() / 86400
    deployments: dict[str, list[tuple[datetime, Fact]]] = {}
    leads: list[Fact] = []
    for fact in facts:
        if fact.get("k") == "d":
            deployments.setdefault(str(fact["stage"]), []).append((_at(fact["at"]), fact))
        elif fact.get("k") == "l" and since <= _at(fact["at"]) < until:
            leads.append(fact)
    names = [stage] if stage is not None else stages
    sources = {str(f["from"]) for f in leads}
    return {
        "period": {"from": since.isoformat(), "to": until.isoformat()},
        "stages": {name: _stage_from_facts(deployments.get(name, []), since, until, days) for name in names},
        "leadTimeMinutes": _summary([float(f["seconds"]) for f in leads]),
        "leadTimeFrom": (next(iter(sources)) if len(sources) == 1 else "mixed") if sources else None,
    }


def _stage_from_facts(every: list[tuple[datetime, Fact]], since: datetime, until: datetime,
                      days: float) -> dict[str, Any]:
    done = [(at, f) for at, f in every if since <= at < until]
    failures = [(at, f) for at, f in done if f["cf"]]
    succeeded = sum(f["status"] in GOOD for _, f in done)
    good = sorted(at for at, f in every if f["status"] in GOOD)
    restores = []
    for failed_at, fact in failures:
        if fact["status"] in GOOD:
            continue
        restored = next((t for t in good if t > failed_at), None)
        if restored is not None:
            restores.append((restored - failed_at).total_seconds())
    return {
        "deployments": len(done),
        "succeeded": succeeded,
        "failed": sum(f["status"] in (Status.FAILED, Status.REJECTED) for _, f in done),
        "deploymentFrequencyPerDay": round(succeeded / days, 3),
        "changeFailureRate": round(len(failures) / len(done), 3) if done else None,
        "timeToRestoreMinutes": _minutes(_median(restores)),
        "waitMinutes": {"approval": _summary([float(w) for _, f in done for w in f["aw"]]),
                        "queue": _summary([float(f["qw"]) for _, f in done if f["qw"] is not None])},
        "executionMinutes": _summary([float(f["ex"]) for _, f in done if f["ex"] is not None]),
    }


def _summary(seconds: list[float]) -> dict[str, float | None]:
    return {"median": _minutes(_median(seconds)), "p90": _minutes(_p90(seconds))}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    """Nearest rank: an observed value, never an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def _at(stamp: str | None) -> datetime:
    """Parse a stored timestamp; a stamp without a zone is taken as UTC, as everything is stored."""
    assert stamp is not None
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

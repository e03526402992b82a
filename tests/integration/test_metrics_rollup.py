"""Delivery metrics from the rollup's day buckets: the same answers as the whole-history computation, each
deployment counted once whatever crashes or repeats, and a read whose cost does not grow with history."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.approvals import Approval, Vote
from shared.domain.delivery_metrics import release_facts
from shared.domain.release import Deployment, Release, StepRun
from shared.domain.vocabulary import ApprovalStatus, Choice, Kind, Reason, Status, StepStatus
from shared.records import Changes
from shared.services import delivery_metrics, metrics_rollup, releases, retention
from tests.integration.conftest import World, stage

DAY = timedelta(days=1)
STATUSES = [Status.SUCCEEDED] * 6 + [Status.PARTIALLY_SUCCEEDED, Status.FAILED, Status.FAILED, Status.REJECTED,
                                     Status.CANCELED]


class Calls:
    """The store, counting each call by name (and raising at call number `crash_at`, when set)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls, self.crash_at = inner, Counter[str](), 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if self.crash_at and self.calls.total() == self.crash_at:
                raise RuntimeError(f"crash at call {self.crash_at} ({name})")
            return attr(*args, **kwargs)
        return call


def deployment(rnd: random.Random, attempt: int, at: datetime) -> Deployment:
    status = rnd.choice(STATUSES)
    queued = at + timedelta(minutes=rnd.uniform(1, 30))
    started = queued + timedelta(minutes=rnd.uniform(0, 10))
    finished = started + timedelta(minutes=rnd.uniform(1, 40))
    failure = None
    if status == Status.FAILED:
        failure = rnd.choice(["step 'deploy' failed", "post-swap check failed; swapped back automatically"])
    approvals: dict[Kind, Approval] = {}
    if rnd.random() < 0.4:
        decided = queued + timedelta(minutes=rnd.uniform(0, 9))
        approvals[Kind.PRE] = Approval(kind=Kind.PRE, status=ApprovalStatus.APPROVED, approvers=["ana"],
                                       policy="anyOne", required=1,
                                    requester_cannot_approve=False, requested_at=queued.isoformat(),
                                    deadline=(queued + 30 * DAY).isoformat(),
                                    votes=[Vote("ana", Choice.APPROVE, "", decided.isoformat(), "ana")])
    steps = [StepRun(0, "wait", "deploy", StepStatus.SUCCEEDED, 1, started.isoformat(),
                     (started + timedelta(minutes=rnd.uniform(0, 5))).isoformat())]
    return Deployment(attempt=attempt, status=status,
                      reason=Reason.ROLLBACK if rnd.random() < 0.1 else Reason.AUTOMATED,
                      requested_by="amita", queued_at=queued.isoformat(), started_at=started.isoformat(),
                      finished_at=finished.isoformat(), failure=failure, steps=steps, approvals=approvals)


def history(world: World, definition_id: int, count: int, *, days: int = 120, seed: int = 7) -> list[Release]:
    """`count` releases spread over the last `days`, each through Dev then Production (redeploys, failures,
    swap-backs, rollbacks, approvals), written straight to the store: quick to make, whatever the size."""
    rnd = random.Random(seed)
    now = world.clock.now()
    start, made = now - days * DAY, []
    for n in range(count):
        created = start + (days * DAY - timedelta(hours=6)) * n / count
        commit = {"committedAt": (created - timedelta(hours=rnd.uniform(0, 5))).isoformat()} if n % 3 else {}
        rel = Release.new(id=definition_id * 100_000 + n + 1, definition_id=str(definition_id), revision=1,
                          name=f"Release-{n + 1}", created_at=created.isoformat(), created_by="amita",
                          reason="manual", description="", artifacts=[{"alias": "web", "version": f"1.{n}", **commit}],
                          definition={"name": "Tailspin", "stages": [{"name": "Dev"}, {"name": "Production"}]})
        at = created
        for name in ("Dev", "Production"):
            run = rel.stages[name]
            for attempt in range(1, rnd.choice([1, 1, 1, 2, 3]) + 1):
                dep = deployment(rnd, attempt, at)
                run.deployments.append(dep)
                run.status = dep.status
                assert dep.finished_at is not None
                at = datetime.fromisoformat(dep.finished_at)
        world.deps.store.commit(Changes(definition_id, release=rel))
        made.append(rel)
    return made


def fold_all(world: World) -> int:
    """Tick until every definition's pass that began after now has ended; how many ticks it took."""
    began = world.clock.now()
    for ticks in range(1, 200):
        metrics_rollup.tick(world.deps)
        rows, _ = world.deps.store.definitions_page(cursor=None, limit=100)
        states = [metrics_rollup.definition_state(world.deps, int(r["id"]))[0] for r in rows]
        if all(s.get("foldedUntil", "") >= (began - metrics_rollup.MARGIN).isoformat() for s in states):
            return ticks
    raise AssertionError("the rollup never finished its passes")


def windows(world: World) -> list[dict[str, Any]]:
    """Past, present, partial days, whole months, one stage."""
    now = world.clock.now()
    return [{"since": now - 30 * DAY, "until": now}, {"since": now - 7 * DAY, "until": now},
            {"since": now - 100 * DAY, "until": now - 61.5 * DAY}, {"since": now - 366 * DAY, "until": now},
            {"since": now - 45 * DAY, "until": now, "stage": "Production"},
            {"since": now - 90 * DAY + timedelta(hours=7), "until": now - 89 * DAY},
            {"since": datetime(2026, 9, 1, tzinfo=UTC), "until": datetime(2026, 10, 1, tzinfo=UTC)}]


def define(world: World, name: str) -> int:
    return int(world.define([stage("Dev"), stage("Production", {"type": "afterStages", "stages": ["Dev"]},
                                                  slot="production")], name=name)["id"])


def test_the_rollup_answers_as_the_whole_history_does(world: World) -> None:
    did = define(world, "Tailspin")
    history(world, did, 240)
    assert fold_all(world) == 2  # 240 releases, 200 a tick
    checked = 0
    for window in windows(world):
        rolled = delivery_metrics.for_definition(world.deps, did, **window)
        assert rolled == delivery_metrics.exact(world.deps, did, **window), window
        checked += sum(s["deployments"] for s in rolled["stages"].values())
    assert checked > 500
    prod = delivery_metrics.for_definition(world.deps, did, **windows(world)[3])["stages"]["Production"]
    assert prod["changeFailureRate"] and prod["timeToRestoreMinutes"] and prod["waitMinutes"]["approval"]["median"]


def test_a_deployment_finished_since_the_last_pass_is_read_from_the_recent_tail(world: World) -> None:
    did = define(world, "Tailspin")
    history(world, did, 20)
    fold_all(world)
    world.clock.advance(3600)
    world.release(did, "2.0.0")
    world.pump()
    now = world.clock.now()
    window: dict[str, Any] = {"since": now - 30 * DAY, "until": now + timedelta(seconds=1)}
    rolled = delivery_metrics.for_definition(world.deps, did, **window)
    assert rolled == delivery_metrics.exact(world.deps, did, **window)
    assert rolled["stages"]["Production"]["deployments"] >= 1


def test_each_deployment_counts_once_when_a_tick_crashes_anywhere_or_a_pass_runs_again(world: World) -> None:
    did = define(world, "Tailspin")
    history(world, did, 60, days=40)
    window: dict[str, Any] = {"since": world.clock.now() - 45 * DAY, "until": world.clock.now()}
    expected = delivery_metrics.exact(world.deps, did, **window)
    store, crashed = world.deps.store, True
    crash_at = 0
    while crashed:
        crash_at += 1
        calls = Calls(store)
        calls.crash_at = crash_at
        world.deps.store = calls
        try:
            metrics_rollup.tick(world.deps)
            crashed = False
        except RuntimeError:
            pass
        finally:
            world.deps.store = store
        fold_all(world)
        assert delivery_metrics.for_definition(world.deps, did, **window) == expected, f"crash at call {crash_at}"
    assert crash_at > 5  # the crash visited every call of a tick that wrote buckets
    for kind, key in (metrics_rollup.STATE, (metrics_rollup.DEFINITION, str(did))):  # the rollup starts over
        found = store.document(kind, key)
        assert found is not None
        store.delete_document(kind, key, found[1])
    fold_all(world)
    assert delivery_metrics.for_definition(world.deps, did, **window) == expected
    counted = sum(len(body["facts"]) for month in ("2026-10", "2026-11")
                  for body, _ in store.documents(metrics_rollup.bucket_kind(did, month)))
    assert counted == expected_facts(world, did)


def expected_facts(world: World, did: int) -> int:
    every = world.deps.store.releases(did, cursor=None, limit=1000)[0]
    return sum(len(release_facts(r)) for r in every)


def test_a_metrics_read_costs_the_same_at_10_and_at_300_releases(world: World) -> None:
    small, large = define(world, "Small"), define(world, "Large")
    history(world, small, 10)
    history(world, large, 300, seed=8)
    fold_all(world)
    now = world.clock.now()
    window: dict[str, Any] = {"since": now - 30 * DAY, "until": now}

    def calls(read: Any, did: int) -> Counter[str]:
        store, counting = world.deps.store, Calls(world.deps.store)
        world.deps.store = counting
        try:
            read(world.deps, did, **window)
        finally:
            world.deps.store = store
        return counting.calls

    assert calls(delivery_metrics.for_definition, small) == calls(delivery_metrics.for_definition, large)
    assert calls(delivery_metrics.exact, small) != calls(delivery_metrics.exact, large)  # what it replaces grows


def test_the_metrics_of_history_stay_when_retention_deletes_its_releases(world: World) -> None:
    did = define(world, "Tailspin")
    made = history(world, did, 30, days=20)
    fold_all(world)
    window: dict[str, Any] = {"since": world.clock.now() - 30 * DAY, "until": world.clock.now()}
    before = delivery_metrics.for_definition(world.deps, did, **window)
    store = retention.store_of(world.deps)
    for rel in made[:20]:
        loaded = world.deps.store.release(did, rel.id)
        assert loaded is not None
        store.mark_deleting(did, rel.id, loaded[1])
        store.purge_release(did, rel.id)
    world.clock.advance(3600)
    fold_all(world)
    assert delivery_metrics.for_definition(world.deps, did, **window) == before
    assert delivery_metrics.exact(world.deps, did, **window) != before


@pytest.mark.parametrize("count", [0, 1])
def test_a_definition_never_folded_reads_its_window_from_the_tail(world: World, count: int) -> None:
    did = define(world, "Tailspin")
    for n in range(count):
        world.release(did, f"1.{n}.0")
        world.pump()
    now = world.clock.now()
    window: dict[str, Any] = {"since": now - 7 * DAY, "until": now + timedelta(seconds=1)}
    assert delivery_metrics.for_definition(world.deps, did, **window) == \
        delivery_metrics.exact(world.deps, did, **window)


def test_time_to_restore_looks_past_the_period_into_the_next_months(world: World) -> None:
    did = define(world, "Tailspin")
    failed, restored = datetime(2026, 9, 30, 23, 0, tzinfo=UTC), datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    for rid, (status, at) in enumerate([(Status.FAILED, failed), (Status.SUCCEEDED, restored)], start=1):
        rel = Release.new(id=rid, definition_id=str(did), revision=1, name=f"Release-{rid}",
                          created_at=(at - DAY).isoformat(), created_by="amita", reason="manual", description="",
                          artifacts=[{"alias": "web", "version": f"1.{rid}"}],
                          definition={"name": "Tailspin", "stages": [{"name": "Production"}]})
        rel.stages["Production"].deployments.append(Deployment(
            attempt=1, status=status, reason=Reason.AUTOMATED, requested_by="amita",
            queued_at=at.isoformat(), started_at=at.isoformat(), finished_at=at.isoformat()))
        world.deps.store.commit(Changes(did, release=rel))
    fold_all(world)
    window: dict[str, Any] = {"since": datetime(2026, 9, 1, tzinfo=UTC), "until": datetime(2026, 10, 1, tzinfo=UTC)}
    rolled = delivery_metrics.for_definition(world.deps, did, **window)
    assert rolled["stages"]["Production"]["timeToRestoreMinutes"] == (restored - failed).total_seconds() / 60
    assert rolled == delivery_metrics.exact(world.deps, did, **window)


@pytest.mark.azurite
def test_on_table_storage_a_read_answers_as_the_history_does_in_the_same_requests_at_10_and_250(world: World) -> None:
    small, large = define(world, "Small"), define(world, "Large")
    history(world, small, 10)
    history(world, large, 250, seed=8)
    fold_all(world)
    now = world.clock.now()
    window: dict[str, Any] = {"since": now - 60 * DAY, "until": now}

    def requests(did: int) -> Counter[str]:
        world.counter.reset()
        assert delivery_metrics.for_definition(world.deps, did, **window) == \
            delivery_metrics.exact(world.deps, did, **window)
        world.counter.reset()
        delivery_metrics.for_definition(world.deps, did, **window)
        return Counter(world.counter.counts)

    assert requests(small) == requests(large)
    assert requests(large).total() <= 6  # the head, the rollup's state, three months, the tail


def test_a_release_still_deploying_when_the_pass_saw_it_stays_in_the_tail_until_the_next(world: World) -> None:
    did = int(world.define([stage("Dev"), stage("Production", {"type": "manual"}, slot="production")])["id"])
    first = world.release(did, "1.0.0")
    world.pump()
    for n in range(1, 4):  # newer releases, finished: the tail starts at the oldest that may still deploy
        world.clock.advance(6 * 3600)
        rel = world.release(did, f"1.{n}.0")
        world.pump()
        releases.abandon(world.deps, rel.id, by="amita", comment="superseded")
    world.clock.advance(3600)
    fold_all(world)
    world.clock.advance(3600)
    releases.deploy_stage(world.deps, first.id, "Production", by="tim")
    world.pump()
    now = world.clock.now()
    window: dict[str, Any] = {"since": now - 7 * DAY, "until": now + timedelta(seconds=1)}
    rolled = delivery_metrics.for_definition(world.deps, did, **window)
    assert rolled["stages"]["Production"]["succeeded"] == 1
    assert rolled == delivery_metrics.exact(world.deps, did, **window)
    state = metrics_rollup.definition_state(world.deps, did)[0]
    assert state["tailFrom"] < first.created_at

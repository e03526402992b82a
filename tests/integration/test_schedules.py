"""Schedules against Azurite with a fake clock: the right release once per occurrence, through
duplicate ticks, downtime, clock jumps and definition changes; release schedules; queue policies
under a burst of releases."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config import EVENTS_QUEUE
from shared.domain.keys import key_hash
from shared.domain.schedules import specs
from shared.messages import MessageKind
from shared.services import definitions, releases, scheduler
from tests.integration.conftest import World, stage
from tests.integration.test_approvals_api import pump_events
from tests.integration.test_http_api import api  # noqa: F401  (fixture)

LONDON_03 = {"cron": "0 3 * * 1-5", "timeZone": "Europe/London"}


def tailspin(world: World, *schedules: dict[str, Any], **extra: Any) -> int:
    test = stage("Test", {"type": "schedule", "stages": ["Dev"], "schedules": list(schedules or [LONDON_03])})
    return int(world.define([stage("Dev"), test], **extra)["id"])


def set_time(world: World, text: str) -> None:
    world.clock.at = datetime.fromisoformat(text).astimezone(UTC)


def in_test(world: World, definition_id: int) -> list[int]:
    """Releases with a deployment in Test, oldest first."""
    found = releases.newest(world.deps, definition_id, limit=200)
    return sorted(r.id for r in found if r.stages["Test"].deployments)


def release_through_dev(world: World, did: int, version: str) -> int:
    rid = world.release(did, version).id
    world.pump()
    assert world.get(rid).stages["Dev"].status == "succeeded"
    return int(rid)


def test_test_gets_the_newest_release_that_passed_dev_once_each_weekday_at_three(api: World) -> None:  # noqa: F811
    did = tailspin(api)
    first = release_through_dev(api, did, "1.0.0")
    second = release_through_dev(api, did, "1.1.0")
    blocked = api.release(did, "1.2.0").id  # created, but Dev has not run: not eligible
    assert api.get(second).stages["Test"].status == "notStarted"
    set_time(api, "2026-11-24T02:59:00+00:00")
    assert scheduler.tick(api.deps) == []  # not yet
    set_time(api, "2026-11-24T03:00:20+00:00")
    [done] = scheduler.tick(api.deps)
    assert done["result"] == f"deployed release {second}" and done["skipped"] == 0
    assert scheduler.tick(api.deps) == []  # the same minute again: its pointer moved on
    api.pump()
    assert in_test(api, did) == [second] and api.get(second).stages["Test"].status == "succeeded"
    assert api.get(second).stages["Test"].deployments[0].reason == "scheduled"
    assert api.get(first).stages["Test"].status == "notStarted" and api.get(blocked).stages["Test"].deployments == []

    # that pump also ran Dev for the blocked one: the next weekday takes it, the one after has nothing
    set_time(api, "2026-11-25T03:00:05+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == [f"deployed release {blocked}"]
    set_time(api, "2026-11-26T03:00:05+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == ["nothing eligible"]
    assert in_test(api, did) == [second, blocked]


def test_nothing_eligible_means_nothing_happens_and_the_next_day_still_fires(api: World) -> None:  # noqa: F811
    did = tailspin(api)
    set_time(api, "2026-11-24T03:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == ["nothing eligible"]
    rid = release_through_dev(api, did, "2.0.0")
    set_time(api, "2026-11-25T03:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == [f"deployed release {rid}"]
    for day in (26, 27):
        set_time(api, f"2026-11-{day}T03:00:00+00:00")
        assert [d["result"] for d in scheduler.tick(api.deps)] == ["nothing eligible"]
    set_time(api, "2026-11-28T03:00:00+00:00")  # Saturday: not a weekday, the pointer is on Monday
    assert scheduler.tick(api.deps) == []


def test_two_ticks_at_once_and_a_replayed_occurrence_deploy_once(api: World) -> None:  # noqa: F811
    did = tailspin(api)
    rid = release_through_dev(api, did, "3.0.0")
    set_time(api, "2026-11-24T03:00:00+00:00")
    results: list[Any] = []
    ticks = [threading.Thread(target=lambda: results.extend(scheduler.tick(api.deps))) for _ in range(4)]
    for t in ticks:
        t.start()
    for t in ticks:
        t.join()
    assert in_test(api, did) == [rid]
    assert len(api.get(rid).stages["Test"].deployments) == 1
    spec = next(iter(specs(definitions.get(api.deps, did)).values()))
    occurrence = datetime(2026, 11, 24, 3, tzinfo=UTC)
    assert scheduler._deploy(api.deps, did, spec, occurrence).endswith("(before)")  # a late duplicate
    assert len(api.get(rid).stages["Test"].deployments) == 1


def test_three_hours_of_downtime_fire_once_for_the_latest_occurrence_within_grace(api: World) -> None:  # noqa: F811
    hourly = {"cron": "0 * * * *", "timeZone": "UTC"}
    did = tailspin(api, hourly)
    rid = release_through_dev(api, did, "4.0.0")
    set_time(api, "2026-11-23T12:40:00+00:00")  # down since before 10:00: 10, 11 and 12 o'clock were missed
    [done] = scheduler.tick(api.deps)
    assert done["occurrence"] == "2026-11-23T12:00:00+00:00" and done["skipped"] == 2
    assert done["result"] == f"deployed release {rid}"
    assert scheduler.tick(api.deps) == []


def test_an_occurrence_older_than_the_grace_is_skipped_not_fired_late(api: World) -> None:  # noqa: F811
    did = tailspin(api, {"cron": "0 10 * * *", "timeZone": "UTC"})
    release_through_dev(api, did, "5.0.0")
    set_time(api, "2026-11-23T13:05:00+00:00")  # three hours late, one occurrence
    [done] = scheduler.tick(api.deps)
    assert done["result"].startswith("missed") and in_test(api, did) == []
    set_time(api, "2026-11-24T10:00:30+00:00")  # the next day is on time again
    assert scheduler.tick(api.deps)[0]["result"].startswith("deployed release")


def test_clock_jumps_back_and_forward(api: World) -> None:  # noqa: F811
    did = tailspin(api, {"cron": "0 10 * * *", "timeZone": "UTC"})
    release_through_dev(api, did, "6.0.0")
    set_time(api, "2026-11-24T10:00:00+00:00")
    assert len(scheduler.tick(api.deps)) == 1
    set_time(api, "2026-11-24T09:00:00+00:00")  # back an hour (NTP step): the 10:00 is not fired again
    assert scheduler.tick(api.deps) == []
    set_time(api, "2026-11-24T10:00:00+00:00")
    assert scheduler.tick(api.deps) == []
    set_time(api, "2026-11-27T10:20:00+00:00")  # forward three days: once, for the latest
    [done] = scheduler.tick(api.deps)
    assert done["occurrence"] == "2026-11-27T10:00:00+00:00" and done["skipped"] == 2


def test_changing_or_removing_a_schedule_never_fires_the_old_one(api: World) -> None:  # noqa: F811
    did = tailspin(api, {"cron": "0 10 * * *", "timeZone": "UTC"})
    release_through_dev(api, did, "7.0.0")
    body = definitions.get(api.deps, did)
    body = {k: v for k, v in body.items() if k in ("name", "artifacts", "stages", "releaseSchedules")}
    body["stages"][1]["trigger"]["schedules"] = [{"cron": "0 14 * * *", "timeZone": "UTC"}]
    definitions.update(api.deps, did, body, by="amita", if_match=None)
    api.deliver(EVENTS_QUEUE, only=MessageKind.SCHEDULES)
    set_time(api, "2026-11-23T10:00:00+00:00")  # the old time: its pointer is stale
    assert [d["result"] for d in scheduler.tick(api.deps)] == ["stale"]
    set_time(api, "2026-11-23T14:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)][0].startswith("deployed release")
    body["stages"][1]["trigger"] = {"type": "manual"}
    definitions.update(api.deps, did, body, by="amita", if_match=None)
    api.deliver(EVENTS_QUEUE, only=MessageKind.SCHEDULES)
    set_time(api, "2026-11-24T14:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == ["removed"]
    assert [api.deps.store.schedule_state(did, key) for key in ("stage|" + key_hash("Test")[:16] + "|0",)] == [None]
    assert api.deps.store.due_schedules(datetime(2099, 1, 1, tzinfo=UTC)) == []


def test_release_schedules_create_once_per_occurrence_and_only_if_something_changed(api: World) -> None:  # noqa: F811
    schedules = [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "time": "03:00", "timeZone": "Europe/London",
                  "onlyIfChanged": True}]
    did = int(api.define([stage("Dev")], releaseSchedules=schedules)["id"])
    set_time(api, "2026-11-24T03:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)][0].startswith("no release")  # no build yet
    api.release(did, "1.0.0")  # registers a build of tailspin-web
    set_time(api, "2026-11-25T03:00:00+00:00")
    [created] = scheduler.tick(api.deps)
    assert created["result"].startswith("created release")
    rid = int(created["result"].rsplit(" ", 1)[1])
    assert api.get(rid).reason == "schedule" and api.get(rid).artifacts[0]["version"] == "1.0.0"
    set_time(api, "2026-11-26T03:00:00+00:00")
    assert [d["result"] for d in scheduler.tick(api.deps)] == ["unchanged since the last scheduled release"]
    api.release(did, "1.1.0")
    set_time(api, "2026-11-27T03:00:00+00:00")
    assert scheduler.tick(api.deps)[0]["result"].startswith("created release")


def test_the_stage_preview_names_the_schedule_and_its_next_time(api: World) -> None:  # noqa: F811
    from shared.domain.waiting import preview

    did = tailspin(api)
    rid = release_through_dev(api, did, "8.0.0")
    got = preview(api.get(rid), "Test", api.clock.now())
    assert got["waitsOn"] == "schedule" and got["nextDeployAt"] == "2026-11-24T03:00:00+00:00"
    assert "0 3 * * 1-5 Europe/London" in str(got["waitingFor"])


@pytest.mark.parametrize("policy", ["sequence", "latest"])
def test_twenty_releases_in_one_minute_under_each_queue_policy(api: World, policy: str) -> None:  # noqa: F811
    test = {**stage("Test", {"type": "afterStages", "stages": ["Dev"]}), "queue": {"parallel": 1, "policy": policy}}
    # Dev only looks, so it runs all twenty side by side and they reach Test at once (a stage that
    # deploys to its slot would hand them on one at a time); each step through the queue, so that the
    # twenty are in flight together rather than each going on to Test in its own handler.
    api.deps.settings = dataclasses.replace(api.deps.settings, step_continue_seconds=0)
    did = int(api.define([stage("Dev", steps=[{"type": "http-check", "path": "/health"}]), test])["id"])
    rids = []
    for i in range(20):
        rids.append(api.release(did, f"9.0.{i}").id)
        api.clock.advance(2)
    for _ in range(30):
        api.pump()
        pump_events(api)
    statuses = {rid: api.get(rid).stages["Test"].status for rid in rids}
    if policy == "sequence":
        assert set(statuses.values()) == {"succeeded"}
        starts = [api.get(rid).stages["Test"].deployments[0].started_at for rid in rids]
        assert starts == sorted(starts)  # one after the other, in order
    else:
        assert statuses[rids[0]] == "succeeded" and statuses[rids[-1]] == "succeeded"
        assert all(statuses[rid] == "canceled" for rid in rids[1:-1]), statuses
        failure = api.get(rids[5]).stages["Test"].deployments[0].failure
        assert failure and "newer" in failure

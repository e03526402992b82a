"""Schedule occurrences on the wall clock of a time zone: daylight saving both ways, coalescing."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

from shared.domain.schedules import latest_due, next_occurrence, occurrences, release_schedule_cron, valid_cron


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def take(cron: str, zone: str, after: str, n: int) -> list[str]:
    return [a.isoformat() for a in islice(occurrences(cron, zone, at(after)), n)]


def test_weekdays_at_three_london_time_in_winter_and_summer() -> None:
    assert take("0 3 * * 1-5", "Europe/London", "2026-11-20T12:00:00+00:00", 3) == [
        "2026-11-23T03:00:00+00:00", "2026-11-24T03:00:00+00:00", "2026-11-25T03:00:00+00:00"]
    assert take("0 3 * * 1-5", "Europe/London", "2026-07-03T12:00:00+00:00", 1) == ["2026-07-06T02:00:00+00:00"]


def test_spring_forward_a_time_in_the_gap_fires_once_after_it() -> None:
    # 29 March 2026: London clocks go from 01:00 to 02:00; 01:30 does not exist that day.
    assert take("30 1 * * *", "Europe/London", "2026-03-27T12:00:00+00:00", 3) == [
        "2026-03-28T01:30:00+00:00", "2026-03-29T01:30:00+00:00", "2026-03-30T00:30:00+00:00"]


def test_fall_back_a_time_that_happens_twice_fires_once_the_first_time() -> None:
    # 25 October 2026: London clocks go from 02:00 back to 01:00; 01:30 happens twice.
    assert take("30 1 * * *", "Europe/London", "2026-10-23T12:00:00+00:00", 3) == [
        "2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
    # asked from inside the repeated hour, it does not fire the same wall-clock time again
    assert next_occurrence("30 1 * * *", "Europe/London", at("2026-10-25T01:10:00+00:00")) == \
        at("2026-10-26T01:30:00+00:00")


def test_every_fifteen_minutes_across_the_fall_back_hour_keeps_real_time_order() -> None:
    got = take("*/15 * * * *", "Europe/London", "2026-10-25T00:40:00+00:00", 6)
    assert got == sorted(got) and len(set(got)) == 6
    assert got[0] == "2026-10-25T00:45:00+00:00"


def test_missed_occurrences_coalesce_into_the_latest() -> None:
    latest, skipped = latest_due("0 * * * *", "UTC", at("2026-01-01T00:00:00+00:00"), at("2026-01-01T03:10:00+00:00"))
    assert (latest, skipped) == (at("2026-01-01T03:00:00+00:00"), 3)
    assert latest_due("0 * * * *", "UTC", at("2026-01-01T00:00:00+00:00"), at("2026-01-01T00:30:00+00:00")) == (
        at("2026-01-01T00:00:00+00:00"), 0)


def test_release_schedules_are_cron_and_bad_crons_are_refused() -> None:
    assert release_schedule_cron({"days": ["Mon", "Fri"], "time": "03:15"}) == "15 3 * * 1,5"
    assert valid_cron("0 3 * * 1-5") and not valid_cron("0 3 * *") and not valid_cron("0 0 3 * * 1-5")
    assert not valid_cron("61 3 * * *")

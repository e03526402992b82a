"""Deployment windows and freezes."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.windows import next_opening

WORKDAYS = {"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "16:00", "timeZone": "Europe/London"}
YEAR_END = {"from": "12-20", "to": "01-03", "reason": "year-end freeze", "timeZone": "Europe/London"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_inside_a_window_is_now() -> None:
    now = at("2026-11-24T10:00:00+00:00")  # a Tuesday, 10:00 London
    assert next_opening(now, [WORKDAYS], []) == (now, "")


def test_friday_waits_for_monday_morning_london_time() -> None:
    opening, why = next_opening(at("2026-11-27T10:00:00+00:00"), [WORKDAYS], [])
    assert opening == at("2026-11-30T09:00:00+00:00") and why == "outside its deployment windows"


def test_summer_time_is_respected() -> None:
    opening, _ = next_opening(at("2026-07-03T12:00:00+00:00"), [WORKDAYS], [])  # a Friday in BST
    assert opening == at("2026-07-06T08:00:00+00:00")


def test_the_year_end_freeze_crosses_the_new_year() -> None:
    opening, why = next_opening(at("2026-12-28T10:00:00+00:00"), [WORKDAYS], [YEAR_END])
    assert opening == at("2027-01-04T09:00:00+00:00") and why == "outside its deployment windows"
    opening, why = next_opening(at("2026-12-21T10:00:00+00:00"), [], [YEAR_END])
    assert opening == at("2027-01-04T00:00:00+00:00") and why == "frozen: year-end freeze"


def test_a_one_off_freeze() -> None:
    freeze = {"start": "2026-11-24T00:00:00+00:00", "end": "2026-11-25T12:00:00+00:00", "reason": "audit"}
    assert next_opening(at("2026-11-24T10:00:00+00:00"), [], [freeze])[0] == at("2026-11-25T12:00:00+00:00")

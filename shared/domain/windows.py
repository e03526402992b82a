"""Deployment windows and freezes: when a stage may start deploying.

Windows are days and hours in a time zone ("Mon-Thu 09:00-16:00 Europe/London"); freezes are
one-off ranges (ISO times) or yearly ranges ("12-20" to "01-03"), each with a reason. A deployment
outside every window, or inside a freeze, waits for the next opening.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours) % 24, int(minutes))


def in_window(at: datetime, window: dict[str, Any]) -> bool:
    local = at.astimezone(ZoneInfo(window.get("timeZone", "UTC")))
    start, end = _clock(window["start"]), window["end"]
    end_time = time(23, 59, 59, 999999) if end == "24:00" else _clock(end)
    return DAYS[local.weekday()] in window["days"] and start <= local.time() < end_time


def next_window_start(at: datetime, window: dict[str, Any]) -> datetime:
    zone = ZoneInfo(window.get("timeZone", "UTC"))
    local = at.astimezone(zone)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        start = datetime.combine(day, _clock(window["start"]), zone)
        if DAYS[day.weekday()] in window["days"] and start > at:
            return start
    raise ValueError("a window needs at least one day")


def freeze_end(at: datetime, freeze: dict[str, Any]) -> datetime | None:
    """When the freeze holding `at` ends, or None when `at` is not frozen by it."""
    if "start" in freeze:
        start, end = datetime.fromisoformat(freeze["start"]), datetime.fromisoformat(freeze["end"])
        return end if start <= at < end else None
    zone = ZoneInfo(freeze.get("timeZone", "UTC"))
    local = at.astimezone(zone)
    for year in (local.year - 1, local.year):
        begin = _month_day(year, freeze["from"], zone)
        finish = _month_day(year, freeze["to"], zone) + timedelta(days=1)
        if finish <= begin:  # crosses the new year
            finish = _month_day(year + 1, freeze["to"], zone) + timedelta(days=1)
        if begin <= at < finish:
            return finish
    return None


def _month_day(year: int, text: str, zone: ZoneInfo) -> datetime:
    month, day = (int(x) for x in text.split("-"))
    return datetime.combine(date(year, month, day), time(0, 0), zone)


def next_opening(now: datetime, windows: list[dict[str, Any]], freezes: list[dict[str, Any]]) -> tuple[datetime, str]:
    """The first time at or after `now` when the stage may deploy, and why it waits until then."""
    at, why = now, ""
    for _ in range(400):
        frozen = next(((end, f) for f in freezes if (end := freeze_end(at, f)) is not None), None)
        if frozen is not None:
            at, why = frozen[0], f"frozen: {frozen[1].get('reason', 'freeze')}"
            continue
        if windows and not any(in_window(at, w) for w in windows):
            at, why = min(next_window_start(at, w) for w in windows), "outside its deployment windows"
            continue
        return at, why
    raise ValueError("no opening in the next 400 tries: check the windows and freezes")

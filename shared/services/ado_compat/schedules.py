"""Slipway's schedules as Azure DevOps' ReleaseSchedule: days as ScheduleDays (monday=1 … sunday=64,
NODE l.3807 in ../shared/ado-samples/ENUMS.md), written as the flag names .NET writes for a combination
("monday, friday"), a time of day, and the time zone. Slipway keeps IANA zone names (Europe/London)
where Azure DevOps keeps Windows ones; they are shown as they are. A stage schedule whose cron is not
"minute hour * * days" has no ReleaseSchedule equivalent and is left out."""

from __future__ import annotations

import re
from typing import Any

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CRON = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* (\*|[0-7](?:-[0-7])?(?:,[0-7](?:-[0-7])?)*)$")


def days_to_release(mask: int) -> str:
    if mask == 127:
        return "all"
    names = [d for i, d in enumerate(DAYS) if mask & (1 << i)]
    return ", ".join(names) if names else "none"


def release_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    """A release schedule ({days: [Mon…], time: HH:MM, timeZone, onlyIfChanged})."""
    mask = sum(1 << SHORT.index(d) for d in schedule.get("days", []) if d in SHORT)
    hours, _, minutes = str(schedule.get("time", "00:00")).partition(":")
    return {"daysToRelease": days_to_release(mask), "startHours": int(hours), "startMinutes": int(minutes or 0),
            "timeZoneId": schedule.get("timeZone", "UTC"),
            "scheduleOnlyWithChanges": bool(schedule.get("onlyIfChanged"))}


def cron_schedule(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A stage schedule ({cron, timeZone}) when its cron is a time of day on some weekdays."""
    found = CRON.match(str(spec.get("cron", "")).strip())
    if found is None or int(found[1]) > 59 or int(found[2]) > 23:
        return None
    mask = 127 if found[3] == "*" else 0
    if found[3] != "*":
        for part in found[3].split(","):
            low, _, high = part.partition("-")
            for day in range(int(low), int(high or low) + 1):
                mask |= 1 << ((day - 1) % 7)  # cron: 0 and 7 are Sunday, 1 is Monday
    return {"daysToRelease": days_to_release(mask), "startHours": int(found[2]), "startMinutes": int(found[1]),
            "timeZoneId": spec.get("timeZone", "UTC"), "scheduleOnlyWithChanges": False}

"""When schedules fire, and which release a scheduled stage deploys.

Occurrences are computed in the schedule's IANA time zone on wall-clock time, then turned into
UTC. Daylight saving: a time that does not exist that day (the spring gap) fires at the same
wall-clock offset after the gap, once (01:30 in London on the last Sunday of March fires at 02:30
BST); a time that happens twice (the autumn overlap) fires once, the first time.

A stage's schedule deploys the newest release that satisfies the stage's upstream condition (every
stage in `stages` succeeded, or partially when allowed) and is newer than every release the stage
has deployed already; with none, nothing happens. Azure DevOps instead redeploys "the most
recently available release" whatever it has passed and whether or not it already ran there; we do
not, so a schedule never redeploys what is there, never goes back to an older release, and never
skips a stage the team meant as a quality bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain.keys import key_hash
from shared.domain.plan import SCHEDULE, StagePlan
from shared.domain.release import Release
from shared.domain.vocabulary import ReleaseStatus, Status

DAY_NUMBERS = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}


def valid_cron(expression: str) -> bool:
    """Five fields (minute hour day-of-month month day-of-week), as Azure DevOps YAML schedules take."""
    from croniter import croniter  # imported when used: it costs the app's cold start otherwise

    return len(expression.split()) == 5 and croniter.is_valid(expression)


def release_schedule_cron(schedule: dict[str, Any]) -> str:
    """A definition's release schedule (days and a time) as a cron expression."""
    hours, minutes = (int(x) for x in schedule["time"].split(":"))
    days = ",".join(str(DAY_NUMBERS[d]) for d in schedule["days"])
    return f"{minutes} {hours} * * {days}"


def occurrences(cron: str, zone: str, after: datetime) -> Iterator[datetime]:
    """Every occurrence strictly after `after`, in UTC, in order."""
    from croniter import croniter

    tz = ZoneInfo(zone)
    local = after.astimezone(tz).replace(tzinfo=None)
    wall = croniter(cron, local - timedelta(hours=3))  # start early: the overlap hour maps back in time
    last = after
    while True:
        naive = wall.get_next(datetime)
        at = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if at > last:
            last = at
            yield at


def next_occurrence(cron: str, zone: str, after: datetime) -> datetime:
    return next(occurrences(cron, zone, after))


def latest_due(cron: str, zone: str, first: datetime, now: datetime, *, limit: int = 100_000) -> tuple[datetime, int]:
    """The last occurrence in [first, now] and how many earlier ones it stands for (missed while
    the host was down); `first` is an occurrence that is due."""
    latest, skipped = first, 0
    for at in occurrences(cron, zone, first):
        if at > now or skipped >= limit:
            break
        latest, skipped = at, skipped + 1
    return latest, skipped


def upstream_done(release: Release, stage: StagePlan) -> bool:
    return all(release.stages[up].status == Status.SUCCEEDED
               or (stage.allow_partial and release.stages[up].status == Status.PARTIALLY_SUCCEEDED)
               for up in stage.after if up in release.stages)


def eligible(release: Release, stage_name: str) -> bool:
    """May the stage's schedule deploy this release: active, upstream done, never deployed there."""
    stage = release.plan.stage(stage_name)
    run = release.stages.get(stage_name)
    return (stage is not None and run is not None and stage.trigger == SCHEDULE
            and release.status != ReleaseStatus.ABANDONED and not run.deployments and upstream_done(release, stage))


@dataclass(frozen=True)
class Spec:
    """One schedule of a definition, as its current revision declares it."""

    key: str
    kind: str  # stage | release
    cron: str
    zone: str
    stage: str = ""
    only_if_changed: bool = False


def specs(definition: dict[str, Any]) -> dict[str, Spec]:
    found: dict[str, Spec] = {}
    for stage in definition.get("stages", []):
        trigger = stage.get("trigger") or {}
        if trigger.get("type") == SCHEDULE:
            for i, item in enumerate(trigger.get("schedules", [])):
                key = f"stage|{key_hash(stage['name'])[:16]}|{i}"
                found[key] = Spec(key, "stage", item["cron"], item.get("timeZone", "UTC"), stage["name"])
    for i, item in enumerate(definition.get("releaseSchedules", [])):
        found[f"release|{i}"] = Spec(f"release|{i}", "release", release_schedule_cron(item),
                                     item.get("timeZone", "UTC"), only_if_changed=bool(item.get("onlyIfChanged")))
    return found

"""When releases are created and stages deploy.

- A stage's `conditions` (ENUMS.md, prior-art.md §2.2): the `ReleaseStarted` event → afterRelease;
  `environmentState` conditions → afterStages on all of them (a join), with partial success when the
  value's partial bit is set; none → manual. Its `schedules` (`ReleaseSchedule`: a `daysToRelease` mask,
  `startHours`, `startMinutes`, a Windows `timeZoneId`) → a schedule trigger with a cron and an IANA zone.
- The definition's `triggers`: artifactSource → the artifact's continuous deployment with its branch
  filters; schedule → `releaseSchedules`; pull-request and other sources have no Slipway equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.ado_import.enums import (
    CONDITION_TYPE,
    PARTIALLY_SUCCEEDED,
    RELEASE_TRIGGER_TYPE,
    SCHEDULE_DAYS,
    STAGE_STATE,
    SUCCEEDED,
)
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED
from shared.domain.ado_import.reading import Path, flag, get, mapping, refuse, sequence, text, whole
from shared.domain.ado_import.report import Report
from shared.domain.ado_import.zones import iana_zone

DAYS = ((1, "Mon", 1), (2, "Tue", 2), (4, "Wed", 3), (8, "Thu", 4), (16, "Fri", 5), (32, "Sat", 6), (64, "Sun", 0))
"""ScheduleDays bit → Slipway's day name → cron's day of the week (0 is Sunday)."""
ALL_DAYS = 127
MAX_UPSTREAM = 20
MAX_SCHEDULES = 10


@dataclass(frozen=True)
class Schedule:
    hours: int
    minutes: int
    days: int
    """ScheduleDays mask."""
    zone: str
    notes: tuple[str, ...]
    only_with_changes: bool
    windows_zone: str = ""
    """The Windows time zone id it was given as, when that differs from `zone`."""

    @property
    def zone_shown(self) -> str:
        return self.zone + (f" ({self.windows_zone})" if self.windows_zone else "")

    @property
    def cron(self) -> str | None:
        return cron_days(self.days) and f"{self.minutes} {self.hours} * * {cron_days(self.days)}"

    @property
    def day_names(self) -> list[str]:
        return [name for bit, name, _ in DAYS if self.days & bit]


def cron_days(mask: int) -> str | None:
    """The day-of-week field of a cron for a ScheduleDays mask; None for no day."""
    if mask & ALL_DAYS == ALL_DAYS:
        return "*"
    numbers = sorted(number for bit, _, number in DAYS if mask & bit)
    return ",".join(str(n) for n in numbers) or None


def read_schedule(value: Any, path: Path) -> Schedule | None:
    """A `ReleaseSchedule`; None when it names no day."""
    data = mapping(value, path, required=True)
    hours, minutes = whole(get(data, "startHours")), whole(get(data, "startMinutes"))
    hours, minutes = hours or 0, minutes or 0
    if not 0 <= hours <= 23:
        refuse((*path, "startHours"), "must be an hour from 0 to 23")
    if not 0 <= minutes <= 59:
        refuse((*path, "startMinutes"), "must be a minute from 0 to 59")
    days = SCHEDULE_DAYS.flags(get(data, "daysToRelease"))
    if days is None or not days & ALL_DAYS:
        return None
    raw_zone = text(get(data, "timeZoneId")).strip() or "UTC"
    zone = iana_zone(raw_zone)
    notes = () if zone is not None else (f"time zone '{raw_zone[:64]}' is not one Slipway knows: it runs in UTC",)
    return Schedule(hours, minutes, days & ALL_DAYS, zone or "UTC", notes,
                    flag(get(data, "scheduleOnlyWithChanges")),
                    raw_zone if zone is not None and zone.casefold() != raw_zone.casefold() else "")


@dataclass
class Upstream:
    path: Path
    name: str
    stage: str
    partial: bool
    only_partial: bool
    other_bits: int


@dataclass
class StageTrigger:
    """What a stage's conditions and schedules say, before it is written as a trigger."""

    after_release: list[tuple[Path, str]] = field(default_factory=list)
    upstream: list[Upstream] = field(default_factory=list)
    schedules: list[tuple[Path, Schedule]] = field(default_factory=list)


def stage_trigger(env: dict[str, Any], path: Path, stage: str, became: str, stages: dict[str, str],
                  report: Report) -> dict[str, Any]:
    """The trigger of one stage, with each of its conditions and schedules reported. `stages` maps Azure
    DevOps stage names (case-folded) to Slipway's."""
    found = StageTrigger()
    conditions = sequence(get(env, "conditions"), (*path, "conditions"))
    for k, item in enumerate(conditions):
        _condition(mapping(item, (*path, "conditions", k), required=True), (*path, "conditions", k), stage,
                   stages, found, report)
    for k, item in enumerate(sequence(get(env, "schedules"), (*path, "schedules"))):
        where = (*path, "schedules", k)
        schedule = read_schedule(item, where)
        if schedule is None:
            report.add(where, "schedule", f"schedule of {stage}", DROPPED, "", "it names no day of the week.")
        elif len(found.schedules) >= MAX_SCHEDULES:
            report.add(where, "schedule", f"schedule of {stage}", DROPPED, "",
                       f"Slipway takes at most {MAX_SCHEDULES} schedules per stage.")
        else:
            found.schedules.append((where, schedule))
    ups = list(dict.fromkeys(u.stage for u in found.upstream))
    if len(ups) > MAX_UPSTREAM:
        refuse((*path, "conditions"), f"Slipway waits for at most {MAX_UPSTREAM} stages")
    partial = any(u.partial for u in found.upstream)
    trigger: dict[str, Any]
    if found.schedules:
        trigger = {"type": "schedule", "stages": ups,
                   "schedules": [{"cron": s.cron, "timeZone": s.zone} for _, s in found.schedules]}
    elif ups:
        trigger = {"type": "afterStages", "stages": ups}
    elif found.after_release:
        trigger = {"type": "afterRelease"}
    else:
        trigger = {"type": "manual"}
    if partial and ups:
        trigger["allowPartialSuccess"] = True
    _report(found, trigger, path, stage, became, bool(conditions), report)
    return trigger


def _condition(data: dict[str, Any], where: Path, stage: str, stages: dict[str, str], found: StageTrigger,
               report: Report) -> None:
    kind = CONDITION_TYPE.parse(get(data, "conditionType"))
    name = text(get(data, "name")).strip()
    if kind == "event" and name.casefold() == "releasestarted":
        found.after_release.append((where, name))
    elif kind == "environmentState":
        upstream = stages.get(name.casefold())
        raw = get(data, "value")
        mask = SUCCEEDED if text(raw).strip() == "" else STAGE_STATE.flags(raw)
        if upstream is None:
            report.add(where, "condition", name, DROPPED, "", f"no stage of the definition is named '{name}'.")
        elif upstream == stage:
            report.add(where, "condition", name, DROPPED, "", "a stage cannot wait for itself.")
        elif mask is None or not mask & (SUCCEEDED | PARTIALLY_SUCCEEDED):
            report.add(where, "condition", name, DROPPED, "",
                       f"it triggers on stage states ({text(raw)[:40]}) Slipway does not trigger on: Slipway "
                       f"waits for success or partial success.")
        else:
            found.upstream.append(Upstream(where, name, upstream, bool(mask & PARTIALLY_SUCCEEDED),
                                           not mask & SUCCEEDED, mask & ~(SUCCEEDED | PARTIALLY_SUCCEEDED)))
    elif kind == "artifact":
        report.add(where, "condition", name or "artifact filter", DROPPED, "",
                   f"Slipway has no artifact filters on stages (this one: {text(get(data, 'value'))[:200]}): the "
                   f"stage deploys whatever the release holds; filter branches on the artifact's trigger instead.")
    else:
        report.add(where, "condition", name or "condition", DROPPED, "",
                   f"a condition of type {text(get(data, 'conditionType')) or 'none'} named '{name}' has no "
                   f"Slipway trigger.")


def _report(found: StageTrigger, trigger: dict[str, Any], path: Path, stage: str, became: str,
            had_conditions: bool, report: Report) -> None:
    at = f"{became}.trigger"
    ups = trigger.get("stages", [])
    for where, name in found.after_release:
        if ups:
            report.add(where, "condition", name, CHANGED, at, "the stage also waits for other stages: Slipway "
                                                              "starts it after them, not when the release starts.")
        elif trigger["type"] == "schedule":
            report.add(where, "condition", name, MAPPED, at, "the stage deploys on its schedule, whatever stages "
                                                             "ran before (schedule trigger without stages).")
        else:
            report.add(where, "condition", name, MAPPED, at, "afterRelease: the stage deploys when a release is "
                                                             "created.")
    for upstream in found.upstream:
        notes = [f"waits for stage {upstream.stage}" + (" (with the others: a join)" if len(ups) > 1 else "")]
        outcome = MAPPED
        if trigger.get("allowPartialSuccess") and not upstream.partial:
            notes.append("partial success of this stage also triggers, as another condition allows it")
            outcome = CHANGED
        if upstream.only_partial:
            notes.append("full success triggers too (Azure DevOps triggered on partial success only)")
            outcome = CHANGED
        if upstream.other_bits:
            notes.append("other states in its value are not triggers in Slipway")
            outcome = CHANGED
        report.add(upstream.path, "condition", upstream.name, outcome, f"{at}.stages[{ups.index(upstream.stage)}]",
                   "; ".join(notes) + ".")
    for k, (where, schedule) in enumerate(found.schedules):
        report.add(where, "schedule", f"schedule of {stage}", CHANGED if schedule.notes else MAPPED,
                   f"{at}.schedules[{k}]",
                   "; ".join([f"cron {schedule.cron} in {schedule.zone_shown}", *schedule.notes]) + ".")
    if not had_conditions and not found.schedules:
        report.add((*path, "conditions"), "trigger", f"trigger of {stage}", MAPPED, at,
                   "manual: the stage deploys only when someone deploys it.")


@dataclass
class ReleaseTriggers:
    schedules: list[dict[str, Any]] = field(default_factory=list)
    continuous: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Slipway artifact alias → its `trigger`."""


def release_triggers(value: Any, path: Path, aliases: dict[str, str], positions: dict[str, int],
                     report: Report) -> ReleaseTriggers:
    """The definition's release triggers. `aliases` maps Azure DevOps aliases (case-folded) to Slipway's,
    `positions` Slipway aliases to their index in `artifacts`."""
    out = ReleaseTriggers()
    for k, item in enumerate(sequence(value, path)):
        where = (*path, k)
        data = mapping(item, where, required=True)
        kind = RELEASE_TRIGGER_TYPE.parse(get(data, "triggerType"))
        if kind == "artifactSource":
            _continuous(data, where, aliases, positions, out, report)
        elif kind == "schedule":
            _release_schedule(data, where, out, report)
        elif kind == "pullRequest":
            report.add(where, "trigger", "pull-request release trigger", DROPPED, "",
                       "Slipway does not create releases for pull requests: deploy pull-request builds from the "
                       "build pipeline, or create a release of the build by hand.")
        else:
            report.add(where, "trigger", f"{kind or text(get(data, 'triggerType')) or 'unknown'} release trigger",
                       DROPPED, "", "Slipway creates releases from builds registered by its webhook (continuous "
                                    "deployment), on a schedule or by hand.")
    return out


def _continuous(data: dict[str, Any], where: Path, aliases: dict[str, str], positions: dict[str, int],
                out: ReleaseTriggers, report: Report) -> None:
    alias_text = text(get(data, "artifactAlias")).strip()
    alias = aliases.get(alias_text.casefold())
    label = f"continuous deployment of {alias_text or '(no artifact)'}"
    if alias is None:
        report.add(where, "trigger", label, DROPPED, "", f"the definition has no artifact '{alias_text}'.")
        return
    include: list[str] = []
    exclude: list[str] = []
    notes: list[str] = []
    enabled = True
    for k, item in enumerate(sequence(get(data, "triggerConditions"), (*where, "triggerConditions"))):
        condition = mapping(item, (*where, "triggerConditions", k), required=True)
        branch = text(get(condition, "sourceBranch")).strip()[:256]
        if flag(get(condition, "useBuildDefinitionBranch")):
            enabled = False
            notes.append("it followed the build pipeline's default branch, which the definition does not name: "
                         "the trigger is off until you name the branch in `branches.include`")
        elif branch.startswith("-") and len(branch) > 1:
            exclude.append(branch[1:])
        elif branch:
            include.append(branch)
        else:
            include.append("*")
        if sequence(get(condition, "tags"), (*where, "triggerConditions", k, "tags")):
            notes.append("Slipway filters builds by branch, not by tag: the tag filter was dropped")
        if flag(get(condition, "createReleaseOnBuildTagging")):
            notes.append("Slipway does not create releases when a build is tagged")
    trigger = out.continuous.setdefault(alias, {"enabled": enabled, "branches": {"include": [], "exclude": []}})
    trigger["enabled"] = trigger["enabled"] and enabled
    trigger["branches"]["include"] = list(dict.fromkeys([*trigger["branches"]["include"], *(include or ["*"])]))
    trigger["branches"]["exclude"] = list(dict.fromkeys([*trigger["branches"]["exclude"], *exclude]))
    shown = ", ".join(trigger["branches"]["include"])
    report.add(where, "trigger", label, CHANGED if notes else MAPPED, f"artifacts[{positions[alias]}].trigger",
               "; ".join([f"a build of {alias} on {shown} creates a release", *dict.fromkeys(notes)]) + ".")


def _release_schedule(data: dict[str, Any], where: Path, out: ReleaseTriggers, report: Report) -> None:
    schedule = read_schedule(get(data, "schedule"), (*where, "schedule"))
    if schedule is None:
        report.add(where, "trigger", "scheduled release", DROPPED, "", "its schedule names no day of the week.")
        return
    if len(out.schedules) >= MAX_SCHEDULES:
        report.add(where, "trigger", "scheduled release", DROPPED, "",
                   f"Slipway takes at most {MAX_SCHEDULES} release schedules.")
        return
    entry: dict[str, Any] = {"days": schedule.day_names, "time": f"{schedule.hours:02d}:{schedule.minutes:02d}",
                             "timeZone": schedule.zone}
    if schedule.only_with_changes:
        entry["onlyIfChanged"] = True
    report.add(where, "trigger", "scheduled release", CHANGED if schedule.notes else MAPPED,
               f"releaseSchedules[{len(out.schedules)}]",
               "; ".join([f"a release every {', '.join(schedule.day_names)} at {entry['time']} {schedule.zone_shown}",
                          *schedule.notes]) + ".")
    out.schedules.append(entry)

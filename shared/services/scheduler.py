"""Schedules: stage schedules (deploy the newest eligible release) and release schedules (create a
release), fired by a minute tick through a due index.

Each schedule has a state row (partition `schedule`) holding its next occurrence, and a pointer in
the due index (partition `due|YYYYMMDDHHMM`, the UTC minute of that occurrence). A tick reads the
due index up to the current minute in one range query, so its cost depends on what is due, not on
how many definitions exist. A pointer whose state row names another time is stale and dropped, so
re-saving a definition never fires a schedule twice.

One release or deployment per occurrence: the occurrence is an idempotency key written in the same
transaction as the release or deployment it caused, so a tick that runs twice, or two ticks at
once, act once. Missed occurrences (the host was down): a schedule fires once for all the
occurrences it missed, for the latest of them, if that is at most `schedule_grace_minutes` old;
older ones are skipped and logged, never fired hours late.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.domain.errors import Conflict, Invalid, NotFound
from shared.domain.schedules import Spec, eligible, latest_due, next_occurrence, specs
from shared.domain.transitions.commands import DeployStage
from shared.domain.vocabulary import Reason
from shared.messages import RegisterSchedules
from shared.records import DueSchedule
from shared.schemas.release import ReleaseIn
from shared.services import definitions, releases
from shared.services.apply import apply
from shared.services.deps import Deps

logger = logging.getLogger(__name__)
SCAN = 20
"""How many of the newest releases a stage schedule looks through for one it may deploy."""


def register(deps: Deps, definition_id: int) -> int:
    """Put every schedule of the definition's current revision in the due index (after it is
    created or changed). Schedules that did not change keep their next occurrence."""
    try:
        definition = definitions.get(deps, definition_id)
    except NotFound:
        return 0
    now = deps.clock.now()
    for spec in specs(definition).values():
        state = deps.store.schedule_state(definition_id, spec.key)
        if state and (state["cron"], state["timeZone"]) == (spec.cron, spec.zone) and \
                datetime.fromisoformat(state["nextAt"]) > now:
            continue
        _arm(deps, definition_id, spec, next_occurrence(spec.cron, spec.zone, now), state)
    return len(specs(definition))


def on_changed(deps: Deps, msg: RegisterSchedules, delivery: str = "") -> str:
    """The reaction to a definition created or changed (its outbox sent the message)."""
    return f"registered {register(deps, msg.definition_id)} schedules of definition {msg.definition_id}"


def _arm(deps: Deps, definition_id: int, spec: Spec, at: datetime, state: dict[str, Any] | None,
         **carry: Any) -> None:
    old = {k: v for k, v in (state or {}).items() if k in ("lastVersions", "lastFired", "lastResult")}
    deps.store.arm_schedule(definition_id, spec.key, at, {**old, **carry, "kind": spec.kind, "stage": spec.stage,
                                                          "cron": spec.cron, "timeZone": spec.zone})


def tick(deps: Deps) -> list[dict[str, Any]]:
    """Fire what is due now. Returns what each due schedule did (for the invocation log and tests)."""
    now = deps.clock.now()
    done = []
    for entry in deps.store.due_schedules(now):
        if datetime.fromisoformat(entry.at) > now:
            continue
        try:
            done.append(_process(deps, entry, now))
        except Exception:  # one broken schedule must not stop the others; its entry stays for the next tick
            logger.exception("schedule %s failed; the next tick tries again", entry.name)
    return done


def _process(deps: Deps, entry: DueSchedule, now: datetime) -> dict[str, Any]:
    did = entry.definition_id
    state = deps.store.schedule_state(did, entry.key)
    if state is None or state["nextAt"] != entry.at:  # left behind when the schedule was armed again
        deps.store.disarm(entry)
        return {"schedule": entry.name, "result": "stale"}
    try:
        spec = specs(definitions.get(deps, did)).get(entry.key)
    except NotFound:
        spec = None
    if spec is None or (spec.cron, spec.zone) != (state["cron"], state["timeZone"]):
        if spec is None:  # the definition or this schedule is gone
            deps.store.drop_schedule(did, entry.key)
        else:  # changed, and its registration has not happened yet (the outbox is a minute behind)
            _arm(deps, did, spec, next_occurrence(spec.cron, spec.zone, now), state)
        deps.store.disarm(entry)
        return {"schedule": entry.name, "result": "removed" if spec is None else "rescheduled"}
    occurrence, missed = latest_due(spec.cron, spec.zone, datetime.fromisoformat(entry.at), now)
    carry: dict[str, Any] = {}
    if now - occurrence > timedelta(minutes=deps.settings.schedule_grace_minutes):
        result = f"missed: the occurrence at {occurrence.isoformat()} is too old to fire"
        logger.warning("schedule %s of definition %s: %s (%s earlier ones too)", spec.key, did, result, missed)
    elif spec.kind == "stage":
        result = _deploy(deps, did, spec, occurrence)
    else:
        result, carry = _create(deps, did, spec, occurrence, state)
    carry.update(lastFired=occurrence.isoformat(), lastResult=result)
    _arm(deps, did, spec, next_occurrence(spec.cron, spec.zone, now), state, **carry)
    deps.store.disarm(entry)
    return {"schedule": entry.name, "definitionId": did, "occurrence": occurrence.isoformat(),
            "skipped": missed, "result": result}


def _occurrence_key(spec: Spec, occurrence: datetime) -> str:
    return f"schedule|{spec.key}|{occurrence.isoformat()}"


def _deploy(deps: Deps, definition_id: int, spec: Spec, occurrence: datetime) -> str:
    key = _occurrence_key(spec, occurrence)
    earlier = deps.store.idempotent_result(definition_id, key)
    if earlier is not None:
        return f"deployed release {earlier} (before)"
    for release in releases.newest(deps, definition_id, limit=SCAN):
        if spec.stage in release.stages and release.stages[spec.stage].deployments:
            break  # the stage has this release or a newer one: never go back to an older one
        if not eligible(release, spec.stage):
            continue
        try:
            apply(deps, definition_id, release.id, DeployStage(spec.stage, "schedule", Reason.SCHEDULED),
                  idempotency=(key, str(release.id)))
        except Conflict:
            earlier = deps.store.idempotent_result(definition_id, key)
            if earlier is None:
                raise
            return f"deployed release {earlier} (by another tick)"
        return f"deployed release {release.id}"
    return "nothing eligible"


def _create(deps: Deps, definition_id: int, spec: Spec, occurrence: datetime,
            state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    definition = definitions.get(deps, definition_id)
    versions = {a["alias"]: (deps.store.latest_artifact(a["source"]) or {}).get("version")
                for a in definition.get("artifacts", [])}
    fingerprint = json.dumps({"revision": definition["revision"], "versions": versions}, sort_keys=True)
    if spec.only_if_changed and state.get("lastVersions") == fingerprint:
        return "unchanged since the last scheduled release", {}
    body = ReleaseIn(definitionId=definition_id, description=f"Scheduled release ({occurrence.isoformat()})")
    try:
        release, created = releases.create(deps, body, by="schedule", reason="schedule",
                                           idempotency_key=_occurrence_key(spec, occurrence))
    except Invalid as exc:  # no build of some artifact yet
        return f"no release: {exc}", {}
    return f"{'created' if created else 'had created'} release {release.id}", {"lastVersions": fingerprint}

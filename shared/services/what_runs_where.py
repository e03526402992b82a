"""What runs where: per stage, the release and versions Slipway put in its slot, and on request
whether the slot still runs that (drift, e.g. after a manual swap in the portal)."""

from __future__ import annotations

from typing import Any

from shared.domain.plan import environment_target
from shared.domain.stage_order import pipeline_order
from shared.domain.target import Target
from shared.ports import TargetError
from shared.services import definitions
from shared.services.deps import Deps
from shared.services.steps.context import slot_record
from shared.services.views import now_running


def what_runs_where(deps: Deps, definition_id: int, *, verify: bool = False) -> dict[str, Any]:
    """Per stage in pipeline order: `recorded`, the slot's last record as read (after a first swap the
    slot that gave up its build records `releaseId: None`), and `nowRunning`, the release it runs (None
    for a slot without a release of Slipway's: nothing to link to)."""
    definition = definitions.get(deps, definition_id)
    records = {r["slot"].lower(): r for r in deps.store.slot_records(definition_id)}
    stages = []
    by_name = {s["name"]: s for s in definition["stages"]}
    for name in pipeline_order(definition["stages"]):
        stage = by_name[name]
        target = Target.from_dict(environment_target(stage))
        recorded = records.get(target.resource_id.lower())
        entry: dict[str, Any] = {"stage": stage["name"], "site": target.site, "slot": target.slot or "production",
                                 "recorded": recorded, "nowRunning": now_running(recorded)}
        if verify:
            entry.update(_verify(deps, target, entry["recorded"]))
        stages.append(entry)
    return {"definitionId": definition_id, "stages": stages,
            "slots": sorted(records.values(), key=lambda r: r["slot"])}


def _verify(deps: Deps, target: Target, recorded: dict[str, Any] | None) -> dict[str, Any]:
    try:
        actual = slot_record(target, deps.app_service.read_slot(target).app_settings, "observed", deps.clock.now())
    except TargetError as exc:
        return {"actual": None, "drift": None, "verifyError": str(exc)}
    if recorded is None:
        drift = actual["releaseId"] is not None
    else:
        drift = (actual["releaseId"], actual["sha256"]) != (recorded.get("releaseId"), recorded.get("sha256"))
    return {"actual": {k: actual[k] for k in ("releaseId", "version", "sha256")}, "drift": drift}

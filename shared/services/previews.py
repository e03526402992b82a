"""What a deployment's infrastructure steps would change (ARM what-if), worked out while it waits for
its pre-deployment approval, so approvers see it on the release page, the approval page and in the
approval mail before they decide. Computed once per step and kept on the deployment; a what-if that
fails is kept as its reason (approvers then know they decide without it)."""

from __future__ import annotations

from typing import Any

from shared.domain.plan import PREVIEWED
from shared.domain.release import Release
from shared.domain.transitions.commands import RecordPreview
from shared.domain.vocabulary import StepStatus
from shared.messages import PreviewStage
from shared.ports import TargetError
from shared.services.apply import apply
from shared.services.deps import Deps
from shared.services.steps.arm import describe, preview


def on_preview(deps: Deps, msg: PreviewStage, delivery: str = "") -> str:
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release"
    found = ensure(deps, loaded[0], msg.stage, msg.attempt)
    return f"{len(found)} step(s) previewed"


def ensure(deps: Deps, release: Release, stage: str, attempt: int) -> dict[str, dict[str, Any]]:
    """The previews of the deployment's infrastructure steps, working out those not recorded yet."""
    run = release.stages.get(stage)
    plan = release.plan.stage(stage)
    if run is None or plan is None or not 0 < attempt <= len(run.deployments):
        return {}
    dep = run.deployments[attempt - 1]
    found = dict(dep.previews)
    for step in plan.steps:
        key = str(step.index)
        if step.type not in PREVIEWED or key in found or dep.steps[step.index].status != StepStatus.PENDING:
            continue
        try:
            lines, error = describe(preview(deps, release, plan, step)), ""
        except TargetError as exc:
            lines, error = [], f"what-if failed: {exc}"
        apply(deps, int(release.definition_id), release.id, RecordPreview(stage, attempt, step.index, tuple(lines),
                                                                          error))
        found[key] = {"error": error} if error else {"changes": lines}
    return found


def lines_for(release: Release, stage: str, previews: dict[str, dict[str, Any]]) -> list[str]:
    """The previews as text, step by step, for a mail."""
    plan = release.plan.stage(stage)
    out = []
    for key, found in sorted(previews.items(), key=lambda kv: int(kv[0])):
        name = plan.steps[int(key)].name if plan and int(key) < len(plan.steps) else f"step {key}"
        out.append(f"{name}:")
        out.extend(f"  {line}" for line in found.get("changes") or [found.get("error") or "no changes"])
    return out

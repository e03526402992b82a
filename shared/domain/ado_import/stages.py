"""Environments → stages in rank order, each with its name, target, trigger, steps, approvals, gates,
queue and variables; what has no Slipway equivalent (owner, retention, notifications) is reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.ado_import.approvals import approvals
from shared.domain.ado_import.context import Context
from shared.domain.ado_import.gates import GateSide, gates
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED
from shared.domain.ado_import.names import printable, unique
from shared.domain.ado_import.phases import read_phases, steps
from shared.domain.ado_import.reading import Path, flag, get, mapping, refuse, sequence, text, whole
from shared.domain.ado_import.targets import stage_target
from shared.domain.ado_import.task_model import StageTasks
from shared.domain.ado_import.triggers import stage_trigger
from shared.domain.ado_import.variables import variable_groups, variables

MAX_STAGES = 50


@dataclass(frozen=True)
class Planned:
    path: Path
    env: dict[str, Any]
    name: str
    """As Azure DevOps names it."""
    slipway: str
    rank: int


def plan(value: Any, path: Path) -> list[Planned]:
    """The environments in rank order (document order among equal ranks), with valid, unique names."""
    listed = sequence(value, path, required=True)
    if not listed:
        refuse(path, "a definition needs at least one stage")
    if len(listed) > MAX_STAGES:
        refuse(path, f"Slipway takes at most {MAX_STAGES} stages")
    found = []
    for i, item in enumerate(listed):
        where = (*path, i)
        env = mapping(item, where, required=True)
        name = get(env, "name")
        if not isinstance(name, str) or not printable(name):
            refuse((*where, "name"), "a stage needs a name")
        found.append((whole(get(env, "rank")) or 0, i, where, env, name.strip()))
    taken: set[str] = set()
    return [Planned(where, env, name, unique(printable(name), taken), rank)
            for rank, _, where, env, name in sorted(found, key=lambda f: (f[0], f[1]))]


def stage(planned: Planned, position: int, names: dict[str, str], ctx: Context) -> dict[str, Any]:
    env, path = planned.env, planned.path
    became = f"stages[{position}]"
    declared = variables(get(env, "variables"), (*path, "variables"), f"{became}.variables", ctx.report)
    groups = variable_groups(get(env, "variableGroups"), (*path, "variableGroups"), f"{became}.variableGroups",
                             ctx.report)
    scope = ctx.scope.child(declared.scope)
    phases = read_phases(env, path)
    target = stage_target([t for p in phases for t in p.tasks], scope, ctx.options.target)
    tasks = StageTasks(scope, target, planned.slipway, ctx.has_artifacts)
    out: dict[str, Any] = {"name": planned.slipway, "target": target.as_dict(),
                           "trigger": stage_trigger(env, path, planned.slipway, became, names, ctx.report),
                           "steps": steps(phases, tasks, became, ctx)}
    for key, field, pre in (("preDeployApprovals", "preApprovals", True), ("postDeployApprovals", "postApprovals",
                                                                            False)):
        found = approvals(get(env, key), (*path, key), pre, planned.slipway, f"{became}.{field}", ctx.report)
        if found is not None:
            out[field] = found
    for key, field, pre in (("preDeploymentGates", "preGates", True), ("postDeploymentGates", "postGates", False)):
        side = GateSide((*path, key), pre, planned.slipway, f"{became}.{field}", scope, ctx.report, ctx.refusals,
                        ctx.options.strict)
        found = gates(get(env, key), side)
        if found is not None:
            out[field] = found
    queue = _queue(env, path, became, planned.slipway, ctx)
    if queue is not None:
        out["queue"] = queue
    if declared.slipway:
        out["variables"] = declared.slipway
    if groups:
        out["variableGroups"] = groups
    _options(env, path, planned.slipway, ctx)
    _stage_entry(planned, became, target.placeholders, target.as_dict(), ctx)
    return out


def _stage_entry(planned: Planned, became: str, placeholders: list[str], target: dict[str, str],
                 ctx: Context) -> None:
    env = planned.env
    notes = [f"stage {planned.slipway} deploys to {target['site']}"
             + (f" slot {target['slot']}" if target.get("slot") else "")
             + f" in {target['resourceGroup']}"]
    outcome = MAPPED
    if planned.slipway != planned.name:
        notes.append(f"renamed from '{planned.name}' (a stage name has at most 64 printable characters and differs "
                     f"from the others)")
        outcome = CHANGED
    if placeholders:
        notes.append(f"its target's {', '.join(placeholders)} could not be read from the tasks (Azure DevOps names a "
                     f"subscription by service connection, apps often by variable): replace the REPLACE-ME values, "
                     f"or import with a default target")
        outcome = CHANGED
    owner = get(env, "owner")
    who = text(get(owner, "uniqueName") or get(owner, "displayName")).strip() if isinstance(owner, dict) else ""
    if who:
        notes.append(f"owner {who}: Slipway has no stage owners; make them an approver if they signed off")
    if sequence(get(env, "demands"), (*planned.path, "demands")):
        notes.append("its agent demands were dropped: Slipway has no agents")
    ctx.report.add(planned.path, "stage", planned.name, outcome, became, "; ".join(notes) + ".")


def _queue(env: dict[str, Any], path: Path, became: str, name: str, ctx: Context) -> dict[str, Any] | None:
    """executionPolicy → queue: concurrencyCount 0 is no limit; with a limit, queueDepthCount 0 deploys all
    in sequence and 1 the latest only (prior-art.md §2.6, an inferred reading of the two counts)."""
    where = (*path, "executionPolicy")
    policy = mapping(get(env, "executionPolicy"), where)
    if not policy:
        return None
    count = whole(get(policy, "concurrencyCount")) or 0
    depth = whole(get(policy, "queueDepthCount")) or 0
    label = f"deployment queue of {name}"
    if count <= 0:
        ctx.report.add(where, "option", label, MAPPED, became, "no limit on parallel deployments.")
        return None
    queue = {"parallel": min(count, 100), "policy": "latest" if depth == 1 else "sequence"}
    notes = [f"{queue['parallel']} at a time, " + ("the latest release only" if depth == 1 else "all in sequence"),
             "a stage that changes its slot deploys one release at a time whatever its queue says"]
    if count > 100 or depth > 1:
        notes.append("Slipway allows at most 100 at a time and no queue depth beyond 'latest'")
    ctx.report.add(where, "option", label, CHANGED if count > 100 or depth > 1 else MAPPED, f"{became}.queue",
                   "; ".join(notes) + ".")
    return queue


def _options(env: dict[str, Any], path: Path, name: str, ctx: Context) -> None:
    """Stage options, retention and redeploy triggers: what Slipway does not have."""
    where = (*path, "environmentOptions")
    options = mapping(get(env, "environmentOptions"), where)
    lost = []
    kind = text(get(options, "emailNotificationType")).strip()
    if kind and kind.casefold() != "never":
        lost.append(f"email notifications ({kind} to {text(get(options, 'emailRecipients')) or 'nobody'}): "
                    f"Slipway mails approvers and assignees; follow failures with its events or Application "
                    f"Insights alerts")
    timeout = whole(get(options, "timeoutInMinutes")) or 0
    if timeout > 0:
        lost.append(f"a {timeout}-minute deployment timeout (each Slipway step has its own)")
    for key, what in (("enableAccessToken", "the job's OAuth token"), ("publishDeploymentStatus",
                      "deployment status published to Azure Boards"), ("badgeEnabled", "the status badge"),
                      ("autoLinkWorkItems", "work item links"), ("pullRequestDeploymentEnabled",
                      "pull-request deployments"), ("skipArtifactsDownload", "skipping the artifact download")):
        if flag(get(options, key)):
            lost.append(what)
    if lost:
        ctx.report.add(where, "option", f"options of {name}", DROPPED, "", "; ".join(lost) + ".")
    retention = get(env, "retentionPolicy")
    if isinstance(retention, dict) and retention:
        days, keep = whole(get(retention, "daysToKeep")), whole(get(retention, "releasesToKeep"))
        ctx.report.add((*path, "retentionPolicy"), "option", f"retention of {name}", DROPPED, "",
                       f"Slipway has no retention yet and keeps every release (Azure DevOps kept {days} days, at "
                       f"least {keep} releases).")
    redeploy = sequence(get(env, "environmentTriggers"), (*path, "environmentTriggers"))
    if redeploy:
        ctx.report.add((*path, "environmentTriggers"), "option", f"redeploy triggers of {name}", DROPPED, "",
                       "Slipway does not redeploy a stage when a deployment group changes or on rollback triggers: "
                       "redeploy it by hand or from a script.")

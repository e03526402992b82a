"""Approvals and manual interventions in Azure DevOps' shapes (ReleaseApproval, ManualIntervention).

Azure DevOps keeps one approval per approver (../shared/ado-samples/runtime/spec-approvals-1.json);
Slipway keeps one approval per side of a deployment, with its approver entries and votes. So each
entry is one ReleaseApproval, its id naming (release, stage, attempt, side, entry).
"""

from __future__ import annotations

from typing import Any

from shared.domain.approvals import Approval
from shared.domain.release import Deployment, StepRun
from shared.domain.vocabulary import Kind
from shared.services.ado_compat import ids, refs, statuses
from shared.services.ado_compat.context import ReleaseContext

APPROVAL_TYPE = {Kind.PRE: "preDeploy", Kind.POST: "postDeploy"}  # ApprovalType (NODE l.226)
SIDE = {Kind.PRE: ids.PRE, Kind.POST: ids.POST}


def approval_entries(ctx: ReleaseContext, stage: str, dep: Deployment, kind: Kind) -> list[dict[str, Any]]:
    approval = dep.approvals.get(kind)
    if approval is None:
        return []
    return [approval_entry(ctx, stage, dep, approval, i) for i in range(len(approval.approvers))]


def approval_entry(ctx: ReleaseContext, stage: str, dep: Deployment, approval: Approval, entry: int) -> dict[str, Any]:
    kind = Kind(approval.kind)
    number = ids.approval_id(ctx.release.id, ctx.index(stage), dep.attempt, SIDE[kind], entry)
    vote = statuses.entry_vote(approval, entry)
    override = next((v for v in approval.votes if v.override), None)
    decided = vote or (override if approval.status != "pending" else None)
    history = [{"approver": refs.identity(h.get("to")), "changedBy": refs.identity(h.get("by")),
                "comments": str(h.get("comment", "")), "createdOn": refs.when(h.get("at")),
                "modifiedOn": refs.when(h.get("at")), "revision": n + 1}
               for n, h in enumerate(approval.history) if h.get("action") == "reassign"
               and h.get("to") == approval.approvers[entry]]
    return {
        "id": number, "revision": 1 + len(history) + (1 if decided else 0),
        "approver": refs.identity(approval.approvers[entry]),
        "approvedBy": refs.identity(decided.by) if decided else None,
        "approvalType": APPROVAL_TYPE[kind], "status": statuses.approval_entry(approval, entry),
        "comments": decided.comment if decided else "",
        "createdOn": refs.when(approval.requested_at),
        "modifiedOn": refs.latest(approval.requested_at, decided.at if decided else None,
                                  *(h.get("at") for h in approval.history)),
        "isAutomated": False, "isNotificationOn": True, "trialNumber": 1, "attempt": dep.attempt,
        "rank": entry + 1 if approval.policy == "allInSequence" else 1, "history": history,
        "release": ctx.release_ref, "releaseDefinition": ctx.definition_ref,
        "releaseEnvironment": ctx.environment_ref(stage), "url": ctx.site.api(f"approvals/{number}"),
    }


def all_approvals(ctx: ReleaseContext) -> list[dict[str, Any]]:
    """Every approval entry of the release, newest attempt first within each stage."""
    return [entry for stage, run in ctx.release.stages.items() for dep in reversed(run.deployments)
            for kind in (Kind.PRE, Kind.POST) for entry in approval_entries(ctx, stage, dep, kind)]


def interventions(ctx: ReleaseContext, stage: str, dep: Deployment) -> list[dict[str, Any]]:
    return [intervention(ctx, stage, dep, step) for step in dep.steps if "intervention" in step.state]


def all_interventions(ctx: ReleaseContext) -> list[dict[str, Any]]:
    return [found for stage, run in ctx.release.stages.items() for dep in run.deployments
            for found in interventions(ctx, stage, dep)]


def intervention(ctx: ReleaseContext, stage: str, dep: Deployment, step: StepRun) -> dict[str, Any]:
    state = step.state["intervention"]
    number = ids.intervention_id(ctx.release.id, ctx.index(stage), dep.attempt, step.index)
    assignees = list(state.get("assignees") or [])
    return {
        "id": number, "name": step.name, "status": statuses.INTERVENTION.get(str(state.get("status")), "unknown"),
        "approver": refs.identity(state.get("by") or (assignees[0] if assignees else None)),
        "instructions": str(state.get("instructions", "")), "comments": str(state.get("comment", "")),
        "createdOn": refs.when(step.started_at), "modifiedOn": refs.latest(step.started_at, state.get("at")),
        "taskInstanceId": refs.guid("task", f"{ctx.release.id}/{stage}/{dep.attempt}/{step.index}"),
        "release": ctx.release_ref, "releaseDefinition": ctx.definition_ref,
        "releaseEnvironment": ctx.environment_ref(stage),
        "url": ctx.site.api(f"releases/{ctx.release.id}/manualInterventions/{number}"),
    }

"""Releases, their environments (stages) and deployments in Azure DevOps' shapes (Release,
ReleaseEnvironment, DeploymentAttempt, ReleaseGates, Deployment), as
../shared/ado-samples/runtime/spec-release-1.json, spec-environment-patch-1.json and
spec-deployments-1.json show them. A Slipway deployment is one agentless phase whose tasks are its
steps: the phase's id is the deployment's, a task's id its step's position (1, 2, …)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.release import Deployment, StageRun, deferred_until
from shared.domain.variables import is_secret
from shared.domain.vocabulary import GATE_PASSED, GOOD, Kind, Reason, Status
from shared.services.ado_compat import definitions, ids, refs, statuses
from shared.services.ado_compat.approval_views import SIDE, approval_entries, interventions
from shared.services.ado_compat.context import ReleaseContext
from shared.services.ado_compat.schedules import cron_schedule
from shared.services.artifacts import without_query

REASON = {Reason.AUTOMATED: "automated", Reason.MANUAL: "manual", Reason.REDEPLOY: "manual",
          Reason.ROLLBACK: "manual", Reason.SCHEDULED: "scheduled"}
"""DeploymentReason (NODE l.1320): a person's redeploy or rollback is `manual` (Azure DevOps'
`redeployTrigger` is its deployment-group redeploy trigger, which Slipway has not)."""
RELEASE_REASONS = {"manual", "continuousIntegration", "schedule", "pullRequest"}


def release(ctx: ReleaseContext, *, environments: bool = True) -> dict[str, Any]:
    rel = ctx.release
    primary = next((a for a in rel.artifacts if a.get("isPrimary")), None)
    shown: dict[str, Any] = {
        "id": rel.id, "name": rel.name, "status": str(rel.status), "reason": rel.reason
        if rel.reason in RELEASE_REASONS else "none", "description": rel.description,
        "createdOn": refs.when(rel.created_at), "modifiedOn": modified(ctx),
        "createdBy": refs.identity(rel.created_by), "createdFor": refs.identity(rel.created_by),
        "modifiedBy": refs.identity(rel.created_by),
        "variables": variables(rel.definition.get("variables") or {}, rel.variables), "variableGroups": [],
        "artifacts": [artifact(a) for a in rel.artifacts], "releaseDefinition": ctx.definition_ref,
        "releaseDefinitionRevision": rel.revision, "definitionSnapshotRevision": rel.revision,
        "releaseNameFormat": rel.definition.get("releaseNameFormat", "Release-$(rev:r)"), "keepForever": False,
        "triggeringArtifactAlias": primary.get("alias") if primary and rel.reason == "continuousIntegration"
        else None, "logsContainerUrl": ctx.site.api(f"releases/{rel.id}/logs"), "tags": [], "properties": {},
        "projectReference": refs.project(ctx.site), "url": ctx.site.api(f"releases/{rel.id}"), "_links": {},
    }
    if environments:
        shown["environments"] = [environment(ctx, name) for name in rel.stages]
    return shown


def modified(ctx: ReleaseContext) -> str | None:
    stamps: list[str | None] = [ctx.release.created_at]
    for run in ctx.release.stages.values():
        for dep in run.deployments:
            stamps += [dep.queued_at, dep.started_at, dep.finished_at]
            stamps += [v.at for a in dep.approvals.values() for v in a.votes]
    return refs.latest(*stamps)


def variables(declared: dict[str, Any], given: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The definition's variables with the release's values; a secret is flagged, never shown."""
    shown = definitions.variables(declared)
    for name, value in given.items():
        known = next((k for k in shown if k.casefold() == name.casefold()), name)
        shown[known] = {"isSecret": True} if is_secret(value) else {"value": value, "isSecret": False}
    return shown


def artifact(art: dict[str, Any]) -> dict[str, Any]:
    """An artifact version as Azure DevOps' Build artifact: the build number is the version, the build id
    Slipway's `buildId` (else the version)."""
    source, version = str(art.get("source", "")), str(art.get("version", ""))
    reference: dict[str, dict[str, str]] = {
        "definition": {"id": source, "name": source},
        "version": {"id": str(art.get("buildId") or version), "name": version}}
    if art.get("branch"):
        reference["branch"] = {"id": str(art["branch"]), "name": str(art["branch"])}
    if art.get("commit"):
        reference["sourceVersion"] = {"id": str(art["commit"]), "name": str(art["commit"])}
    if art.get("packageUrl"):
        reference["artifactSourceVersionUrl"] = {"id": without_query(str(art["packageUrl"])), "name": ""}
    return {"alias": art.get("alias"), "type": "Build", "sourceId": source, "isPrimary": bool(art.get("isPrimary")),
            "isRetained": False, "definitionReference": reference}


def environment(ctx: ReleaseContext, stage: str) -> dict[str, Any]:
    rel, index = ctx.release, ctx.index(stage)
    config, run = ctx.stages[index], rel.stages[stage]
    current = run.current
    deferred = deferred_until(current) if current is not None and current.status == Status.IN_PROGRESS else None
    trigger = config.get("trigger") or {}
    return {
        "id": ctx.environment_id(stage), "releaseId": rel.id, "name": stage, "status": statuses.environment(run),
        "rank": index + 1, "definitionEnvironmentId": ids.definition_environment_id(ctx.definition_id, index),
        "createdOn": refs.when(rel.created_at),
        "modifiedOn": refs.latest(rel.created_at, *(t for d in run.deployments
                                                  for t in (d.queued_at, d.started_at, d.finished_at))),
        "variables": variables(config.get("variables") or {}, {}), "variableGroups": [],
        "preDeployApprovals": [a for d in run.deployments for a in approval_entries(ctx, stage, d, Kind.PRE)],
        "postDeployApprovals": [a for d in run.deployments for a in approval_entries(ctx, stage, d, Kind.POST)],
        "preApprovalsSnapshot": definitions.approvals(config.get("preApprovals"), "pre"),
        "postApprovalsSnapshot": definitions.approvals(config.get("postApprovals"), "post"),
        "preDeploymentGatesSnapshot": definitions.gates(config.get("preGates")),
        "postDeploymentGatesSnapshot": definitions.gates(config.get("postGates")),
        "deploySteps": [attempt(ctx, stage, d) for d in run.deployments],
        "conditions": [{**c, "result": _met(ctx, c)} for c in definitions.conditions(config)],
        "deployPhasesSnapshot": [definitions.deploy_phase(config)], "workflowTasks": [], "demands": [],
        "environmentOptions": dict(definitions.ENVIRONMENT_OPTIONS), "owner": None,
        "schedules": [s for s in (cron_schedule(c) for c in trigger.get("schedules") or []) if s],
        "release": ctx.release_ref, "releaseDefinition": ctx.definition_ref,
        "releaseCreatedBy": refs.identity(rel.created_by), "releaseDescription": rel.description,
        "triggerReason": trigger_reason(trigger, run), "scheduledDeploymentTime": refs.when(deferred),
        "timeToDeploy": time_to_deploy(current),
    }


def _met(ctx: ReleaseContext, condition: dict[str, Any]) -> bool:
    if condition["conditionType"] == "event":
        return True
    upstream = ctx.release.stages.get(condition["name"])
    return upstream is not None and upstream.status in GOOD


def trigger_reason(trigger: dict[str, Any], run: StageRun) -> str:
    dep = run.current
    if dep is not None and dep.reason != Reason.AUTOMATED:
        return "Scheduled" if dep.reason == Reason.SCHEDULED else "Manual"
    kind = trigger.get("type", "manual")
    if kind == "afterRelease":
        return "After release creation"
    if kind == "afterStages":
        return "After successful deployment of " + ", ".join(trigger.get("stages", []))
    return "Scheduled" if kind == "schedule" else "Manual"


def time_to_deploy(dep: Deployment | None) -> float:
    """Minutes from the attempt's start to its end (0 while it has not ended)."""
    if dep is None or not dep.started_at or not dep.finished_at:
        return 0.0
    spent = datetime.fromisoformat(dep.finished_at) - datetime.fromisoformat(dep.started_at)
    return round(spent.total_seconds() / 60, 2)


def attempt(ctx: ReleaseContext, stage: str, dep: Deployment) -> dict[str, Any]:
    number = ids.deployment_id(ctx.release.id, ctx.index(stage), dep.attempt)
    status, operation = statuses.deployment(dep)
    plan = refs.guid("plan", f"{ctx.release.id}/{stage}/{dep.attempt}")
    return {
        "id": number, "deploymentId": number, "attempt": dep.attempt, "reason": REASON[dep.reason],
        "status": status, "operationStatus": operation, "hasStarted": dep.started_at is not None,
        "queuedOn": refs.when(dep.queued_at), "lastModifiedOn": refs.latest(dep.queued_at, dep.started_at,
                                                                           dep.finished_at),
        "requestedBy": refs.identity(dep.requested_by), "requestedFor": refs.identity(ctx.release.created_by),
        "lastModifiedBy": refs.identity(dep.requested_by), "runPlanId": plan, "errorLog": dep.failure or "",
        "preDeploymentGates": gates(ctx, stage, dep, Kind.PRE),
        "postDeploymentGates": gates(ctx, stage, dep, Kind.POST),
        "releaseDeployPhases": [phase(ctx, stage, dep, number, plan)], "tasks": [], "issues": [],
    }


def phase(ctx: ReleaseContext, stage: str, dep: Deployment, number: int, plan: str) -> dict[str, Any]:
    env = ctx.environment_id(stage)
    tasks: list[dict[str, Any]] = [
        {"id": s.index + 1, "rank": s.index + 1, "name": s.name, "status": statuses.TASK[s.status],
         "startTime": refs.when(s.started_at), "finishTime": refs.when(s.finished_at),
         "dateStarted": refs.when(s.started_at), "dateEnded": refs.when(s.finished_at), "agentName": "Slipway",
         "percentComplete": 100 if s.finished_at else 0, "issues": [],
         "timelineRecordId": refs.guid("record", f"{plan}/{s.index}"),
         "logUrl": ctx.site.api(f"releases/{ctx.release.id}/environments/{env}/deployPhases/{number}/tasks/"
                                f"{s.index + 1}/logs")}
        for s in dep.steps]
    job = {"id": 1, "rank": 1, "name": "Slipway", "status": statuses.PHASE.get(dep.status, "inProgress"),
           "startTime": refs.when(dep.started_at), "finishTime": refs.when(dep.finished_at), "issues": [],
           "agentName": "Slipway", "timelineRecordId": refs.guid("record", plan)}
    return {"id": number, "phaseId": "1", "name": "Slipway", "rank": 1, "phaseType": "runOnServer",
            "status": statuses.PHASE.get(dep.status, "inProgress"), "startedOn": refs.when(dep.started_at),
            "runPlanId": plan, "errorLog": dep.failure or "",
            "deploymentJobs": [{"job": job, "tasks": tasks}] if dep.started_at else [],
            "manualInterventions": interventions(ctx, stage, dep)}


def gates(ctx: ReleaseContext, stage: str, dep: Deployment, kind: Kind) -> dict[str, Any] | None:
    """ReleaseGates of one side, once its gate started (spec-gate-ignore-1.json); None before."""
    run = dep.gates.get(kind)
    if run is None:
        return None
    config = ctx.stages[ctx.index(stage)].get("preGates" if kind == Kind.PRE else "postGates") or {}
    sampled = [str(s.get("at")) for s in run.samples if s.get("at")]
    ignored = [{"name": str(s.get("name")), "lastModifiedOn": refs.latest(*sampled, run.started_at)}
               for s in config.get("signals", [])] if run.ignored_by else []
    return {"id": ids.gate_id(ctx.release.id, ctx.index(stage), dep.attempt, SIDE[kind]),
            "status": statuses.gate(run), "startedOn": refs.when(run.started_at),
            "lastModifiedOn": refs.latest(run.started_at, *sampled), "succeedingSince": refs.when(run.green_since),
            "stabilizationCompletedOn": refs.when(run.evaluate_from) if run.status in GATE_PASSED else None,
            "runPlanId": refs.guid("gate", f"{ctx.release.id}/{stage}/{dep.attempt}/{kind}"),
            "ignoredGates": ignored, "deploymentJobs": []}


def deployment(ctx: ReleaseContext, stage: str, dep: Deployment) -> dict[str, Any]:
    """One attempt as GET _apis/Release/deployments lists it."""
    rel, index = ctx.release, ctx.index(stage)
    status, operation = statuses.deployment(dep)
    return {
        "id": ids.deployment_id(rel.id, index, dep.attempt), "attempt": dep.attempt,
        "release": {**ctx.release_ref, "artifacts": [artifact(a) for a in rel.artifacts],
                    "createdOn": refs.when(rel.created_at), "createdBy": refs.identity(rel.created_by),
                    "description": rel.description, "reason": rel.reason if rel.reason in RELEASE_REASONS else "none",
                    "releaseDefinition": ctx.definition_ref},
        "releaseDefinition": ctx.definition_ref, "releaseEnvironment": ctx.environment_ref(stage),
        "projectReference": refs.project(ctx.site),
        "definitionEnvironmentId": ids.definition_environment_id(ctx.definition_id, index),
        "reason": REASON[dep.reason], "deploymentStatus": status, "operationStatus": operation,
        "requestedBy": refs.identity(dep.requested_by), "requestedFor": refs.identity(rel.created_by),
        "lastModifiedBy": refs.identity(dep.requested_by),
        "queuedOn": refs.when(dep.queued_at), "startedOn": refs.when(dep.started_at),
        "completedOn": refs.when(dep.finished_at),
        "lastModifiedOn": refs.latest(dep.queued_at, dep.started_at, dep.finished_at),
        "scheduledDeploymentTime": refs.when(deferred_until(dep)), "conditions": [],
        "preDeployApprovals": approval_entries(ctx, stage, dep, Kind.PRE),
        "postDeployApprovals": approval_entries(ctx, stage, dep, Kind.POST), "_links": {},
    }

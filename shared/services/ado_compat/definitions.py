"""A Slipway definition in Azure DevOps' ReleaseDefinition shape (GET _apis/Release/definitions/{id}).

Stages are environments (rank = order); triggers are conditions (after release: the `ReleaseStarted`
event; after stages: `environmentState` with value 4 = succeeded, 132 = succeeded or partially
succeeded, as ../shared/ado-samples/ENUMS.md reads the EnvironmentStatus mask); approvals and gates
keep their options; variables never show a secret's value. The shape follows the 7.1 swagger
(MicrosoftDocs/vsts-rest-api-specs, specification/release/7.1/release.json: ReleaseDefinition) and
the portal's exports in ../shared/ado-samples/definitions/.
"""

from __future__ import annotations

from typing import Any

from shared.domain.plan import Plan
from shared.domain.secrets import redacted
from shared.domain.variables import is_secret
from shared.records import Head
from shared.services.ado_compat import ids, refs
from shared.services.ado_compat.schedules import cron_schedule, release_schedule
from shared.services.ado_compat.tasks import signal_task, step_task

SUCCEEDED, PARTIALLY_SUCCEEDED = 4, 128  # EnvironmentStatus (NODE l.1534)
ENVIRONMENT_OPTIONS = {"emailNotificationType": "OnlyOnFailure", "emailRecipients": "release.creator",
                       "skipArtifactsDownload": False, "timeoutInMinutes": 0, "enableAccessToken": False,
                       "publishDeploymentStatus": False, "badgeEnabled": False, "autoLinkWorkItems": False,
                       "pullRequestDeploymentEnabled": False}
"""What Slipway does, in Azure DevOps' options: it mails whoever asked for a deployment that failed."""


def summary(site: refs.Site, row: dict[str, Any]) -> dict[str, Any]:
    """A definition as a list shows it (from the index: no read of its body)."""
    definition_id = int(row["id"])
    return {"id": definition_id, "name": row["name"], "path": "\\", "revision": int(row.get("revision") or 1),
            "modifiedOn": refs.when(row.get("updatedAt")), "isDeleted": False, "source": "restApi",
            "projectReference": refs.project(site), "url": site.api(f"definitions/{definition_id}"), "_links": {}}


def definition(site: refs.Site, head: Head, body: dict[str, Any]) -> dict[str, Any]:
    shown = redacted(body)
    definition_id = int(head.id)
    plan = Plan.from_dict(shown)
    return {
        "id": definition_id, "name": shown.get("name"), "description": shown.get("description", ""), "path": "\\",
        "revision": head.revision, "source": "restApi", "isDeleted": False, "tags": [], "properties": {},
        "releaseNameFormat": shown.get("releaseNameFormat", "Release-$(rev:r)"),
        "createdOn": refs.when(head.created_at), "modifiedOn": refs.when(shown.get("modifiedOn") or head.updated_at),
        "modifiedBy": refs.identity(shown.get("modifiedBy")), "createdBy": None,
        "variables": variables(shown.get("variables") or {}), "variableGroups": [],
        "artifacts": [artifact(a) for a in shown.get("artifacts", [])],
        "triggers": triggers(shown),
        "environments": [environment(definition_id, i, stage, plan.stages[i].limit)
                         for i, stage in enumerate(shown.get("stages", []))],
        "projectReference": refs.project(site), "url": site.api(f"definitions/{definition_id}"), "_links": {},
    }


def variables(declared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ConfigurationVariableValue each; a Key Vault reference is a secret: flagged, its reference not shown."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in declared.items():
        value, settable = (spec, False) if isinstance(spec, str) else (str(spec.get("value", "")),
                                                                        bool(spec.get("allowOverride")))
        out[name] = ({"isSecret": True, "allowOverride": settable} if is_secret(value)
                     else {"value": value, "isSecret": False, "allowOverride": settable})
    return out


def artifact(art: dict[str, Any]) -> dict[str, Any]:
    source = str(art.get("source", ""))
    return {"alias": art.get("alias"), "type": "Build", "sourceId": source, "isPrimary": bool(art.get("isPrimary")),
            "isRetained": False,
            "definitionReference": {"definition": {"id": source, "name": source},
                                    "defaultVersionType": {"id": "latestType", "name": "Latest"}}}


def triggers(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Continuous deployment by artifact (included branches: Azure DevOps' trigger conditions have no
    exclusions) and the release schedules."""
    found: list[dict[str, Any]] = []
    for art in body.get("artifacts", []):
        trigger = art.get("trigger")
        if trigger and trigger.get("enabled", True):
            branches = (trigger.get("branches") or {}).get("include") or ["*"]
            found.append({"triggerType": "artifactSource", "artifactAlias": art.get("alias"),
                          "triggerConditions": [{"sourceBranch": b, "tags": [], "useBuildDefinitionBranch": False,
                                                 "createReleaseOnBuildTagging": False} for b in branches]})
    found += [{"triggerType": "schedule", "schedule": release_schedule(s)} for s in body.get("releaseSchedules", [])]
    return found


def conditions(stage: dict[str, Any]) -> list[dict[str, Any]]:
    trigger = stage.get("trigger") or {"type": "manual"}
    if trigger.get("type") == "afterRelease":
        return [{"name": "ReleaseStarted", "conditionType": "event", "value": ""}]
    if trigger.get("type") == "afterStages":
        mask = SUCCEEDED | (PARTIALLY_SUCCEEDED if trigger.get("allowPartialSuccess") else 0)
        return [{"name": name, "conditionType": "environmentState", "value": str(mask)}
                for name in trigger.get("stages", [])]
    return []


def environment(definition_id: int, index: int, stage: dict[str, Any], limit: int) -> dict[str, Any]:
    trigger = stage.get("trigger") or {}
    schedules = [s for s in (cron_schedule(c) for c in trigger.get("schedules") or []) if s is not None]
    return {
        "id": ids.definition_environment_id(definition_id, index), "name": stage["name"], "rank": index + 1,
        "variables": variables(stage.get("variables") or {}), "variableGroups": [],
        "preDeployApprovals": approvals(stage.get("preApprovals"), "pre"),
        "postDeployApprovals": approvals(stage.get("postApprovals"), "post"),
        "preDeploymentGates": gates(stage.get("preGates")), "postDeploymentGates": gates(stage.get("postGates")),
        "deployPhases": [deploy_phase(stage)], "conditions": conditions(stage), "schedules": schedules,
        "environmentOptions": dict(ENVIRONMENT_OPTIONS), "demands": [], "environmentTriggers": [],
        "executionPolicy": {"concurrencyCount": limit,
                            "queueDepthCount": 1 if (stage.get("queue") or {}).get("policy") == "latest" else 0},
        "properties": {}, "runOptions": {},
    }


def deploy_phase(stage: dict[str, Any]) -> dict[str, Any]:
    """Slipway runs no agents: every stage is one agentless (`runOnServer`) phase of its steps."""
    target = stage.get("target") or {}
    return {"rank": 1, "phaseType": "runOnServer", "name": "Slipway", "refName": "slipway",
            "deploymentInput": {"parallelExecution": {"parallelExecutionType": "none"}, "timeoutInMinutes": 0,
                                "jobCancelTimeoutInMinutes": 1, "condition": "succeeded()", "overrideInputs": {}},
            "workflowTasks": [step_task(s, target) for s in stage.get("steps", [])]}


def approvals(settings: dict[str, Any] | None, side: str) -> dict[str, Any]:
    """Approvers with their ranks: in sequence, increasing ranks; otherwise all rank 1, with the count
    needed (0 = all of them, Azure DevOps' reading). No approvers: one automated approval, as Azure
    DevOps shows it."""
    if not settings:
        return {"approvals": [{"id": 0, "rank": 1, "isAutomated": True, "isNotificationOn": False}],
                "approvalOptions": None}
    policy = settings.get("policy", "allInAnyOrder")
    approvers = list(settings.get("approvers", []))
    required = {"anyOne": 1, "count": int(settings.get("required") or 0)}.get(policy, 0)
    order = settings.get("order") or ("beforeGates" if side == "pre" else "afterGates")
    return {"approvals": [{"id": 0, "rank": i + 1 if policy == "allInSequence" else 1, "isAutomated": False,
                           "isNotificationOn": True, "approver": refs.identity(a)} for i, a in enumerate(approvers)],
            "approvalOptions": {"requiredApproverCount": required,
                                "releaseCreatorCanBeApprover": not settings.get("requesterCannotApprove", True),
                                "autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped":
                                    bool(settings.get("skipIfApprovedInPreviousStage")),
                                "enforceIdentityRevalidation": False,
                                "timeoutInMinutes": int(settings.get("timeoutMinutes") or 30 * 24 * 60),
                                "executionOrder": "beforeGates" if order == "beforeGates" else "afterSuccessfulGates"}}


def gates(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Gate options in whole minutes, as the model types them; the signals are the gate's tasks."""
    if not settings:
        return {"id": 0, "gatesOptions": None, "gates": []}
    return {"id": 0,
            "gatesOptions": {"isEnabled": True, "timeout": round(float(settings.get("timeoutMinutes", 60))),
                             "samplingInterval": round(float(settings.get("intervalMinutes", 5))),
                             "stabilizationTime": round(float(settings.get("delayMinutes", 0))),
                             "minimumSuccessDuration": round(float(settings.get("minimumSuccessMinutes", 0)))},
            "gates": [{"tasks": [signal_task(s) for s in settings.get("signals", [])]}]}

"""Slipway's statuses in Azure DevOps' words (camelCase, as its REST answers carry them).

The names are Azure DevOps' enums as ../shared/ado-samples/ENUMS.md cites them: microsoft/azure-devops-node-api
`api/interfaces/ReleaseInterfaces.ts` (EnvironmentStatus, DeploymentStatus, DeploymentOperationStatus,
ApprovalStatus, GateStatus, TaskStatus, DeployPhaseStatus, ManualInterventionStatus) and the 7.1 swagger
(MicrosoftDocs/vsts-rest-api-specs, specification/release/7.1/release.json). Where Slipway has a word
Azure DevOps lacks, the nearest one is chosen and the reason is written beside it.
"""

from __future__ import annotations

from shared.domain.approvals import Approval, Vote
from shared.domain.gates import GateRun
from shared.domain.release import Deployment, StageRun
from shared.domain.vocabulary import ApprovalStatus, Choice, GateStatus, Phase, Status, StepStatus

ENVIRONMENT = {Status.NOT_STARTED: "notStarted", Status.QUEUED: "queued", Status.IN_PROGRESS: "inProgress",
               Status.SUCCEEDED: "succeeded", Status.PARTIALLY_SUCCEEDED: "partiallySucceeded",
               Status.CANCELED: "canceled", Status.REJECTED: "rejected", Status.FAILED: "rejected"}
"""EnvironmentStatus has no `failed`: Azure DevOps shows an environment whose deployment failed as rejected."""

WAITING_FOR_TIME = (Phase.DEFERRED, Phase.WINDOW)


def environment(run: StageRun) -> str:
    """A stage held until a time (deferred, outside its windows) is `scheduled`, as Azure DevOps shows a
    deployment with a scheduled time."""
    dep = run.current
    if run.status == Status.IN_PROGRESS and dep is not None and dep.phase in WAITING_FOR_TIME:
        return "scheduled"
    return ENVIRONMENT[run.status]


OPERATION_IN_PROGRESS = {Phase.QUEUED: ("notDeployed", "queued"), Phase.PRE_GATE: ("notDeployed", "evaluatingGates"),
                         Phase.PRE_APPROVAL: ("notDeployed", "pending"), Phase.WINDOW: ("notDeployed", "scheduled"),
                         Phase.DEFERRED: ("notDeployed", "deferred"), Phase.STEPS: ("inProgress", "phaseInProgress"),
                         Phase.INTERVENTION: ("inProgress", "manualInterventionPending"),
                         Phase.POST_GATE: ("inProgress", "evaluatingGates"),
                         Phase.POST_APPROVAL: ("inProgress", "pending")}


def deployment(dep: Deployment) -> tuple[str, str]:
    """(deploymentStatus, operationStatus) of one attempt. DeploymentStatus has no rejected or canceled:
    an attempt stopped before any step ran was not deployed, one stopped after is failed."""
    ran = any(s.started_at for s in dep.steps)
    if dep.status == Status.QUEUED:
        return "notDeployed", "queued"
    if dep.status == Status.IN_PROGRESS:
        return OPERATION_IN_PROGRESS[dep.phase]
    if dep.status == Status.SUCCEEDED:
        return "succeeded", "phaseSucceeded"
    if dep.status == Status.PARTIALLY_SUCCEEDED:
        return "partiallySucceeded", "phasePartiallySucceeded"
    if dep.status == Status.FAILED:
        return "failed", "phaseFailed"
    if dep.status == Status.REJECTED:
        failed_gate = any(g.status in (GateStatus.FAILED, GateStatus.ERRORED) for g in dep.gates.values())
        return ("failed" if ran else "notDeployed"), ("gateFailed" if failed_gate else "rejected")
    return ("failed", "phaseCanceled") if ran else ("notDeployed", "canceled")


DEPLOYMENT_FILTER = {"notDeployed", "inProgress", "succeeded", "partiallySucceeded", "failed"}
"""What `deploymentStatus=` may name (besides `all` and `undefined`, which filter nothing)."""

PHASE = {Status.QUEUED: "notStarted", Status.IN_PROGRESS: "inProgress", Status.SUCCEEDED: "succeeded",
         Status.PARTIALLY_SUCCEEDED: "partiallySucceeded", Status.FAILED: "failed", Status.REJECTED: "failed",
         Status.CANCELED: "canceled"}
"""DeployPhaseStatus of the one phase a Slipway deployment is."""

TASK = {StepStatus.PENDING: "pending", StepStatus.IN_PROGRESS: "inProgress", StepStatus.SUCCEEDED: "succeeded",
        StepStatus.FAILED: "failed", StepStatus.CANCELED: "canceled", StepStatus.SKIPPED: "skipped"}
"""TaskStatus of a step."""

GATE = {GateStatus.WAITING: "pending", GateStatus.EVALUATING: "inProgress", GateStatus.SUCCEEDED: "succeeded",
        GateStatus.FAILED: "failed", GateStatus.ERRORED: "failed", GateStatus.IGNORED: "succeeded",
        GateStatus.CANCELED: "canceled"}
"""GateStatus: an ignored gate let the deployment past, as a succeeded one does (its ignoredGates say so);
an errored one (signals unreadable) stopped it, as a failed one does."""


def gate(run: GateRun) -> str:
    return GATE[run.status]


INTERVENTION = {"pending": "pending", "resumed": "approved", "rejected": "rejected", "canceled": "canceled"}
"""ManualInterventionStatus: a resumed intervention is `approved`."""


def entry_vote(approval: Approval, entry: int) -> Vote | None:
    """The vote cast for approver entry `entry` (an entry listed twice takes its votes in turn)."""
    name = approval.approvers[entry]
    same = [i for i, a in enumerate(approval.approvers) if a == name]
    votes = [v for v in approval.votes if not v.override and v.entry == name]
    turn = same.index(entry)
    return votes[turn] if turn < len(votes) else None


def approval_entry(approval: Approval, entry: int) -> str:
    """ApprovalStatus of one approver entry: Azure DevOps keeps one approval per approver. An admin's
    override decides every entry left; an entry nobody decided is `skipped` once the approval was settled
    without it (any one of several, or someone else's rejection), `canceled` with its release."""
    vote = entry_vote(approval, entry)
    if vote is not None:
        return "approved" if vote.decision == Choice.APPROVE else "rejected"
    if approval.status == ApprovalStatus.PENDING:
        return "pending"
    override = next((v for v in approval.votes if v.override), None)
    if override is not None:
        return "approved" if override.decision == Choice.APPROVE else "rejected"
    return "canceled" if approval.status == ApprovalStatus.CANCELED else "skipped"


APPROVAL_FILTER = {"pending", "approved", "rejected", "reassigned", "canceled", "skipped"}

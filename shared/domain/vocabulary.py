"""Slipway's words for states, places and happenings, each with what it means.

Every word is stored as the string shown (Azure DevOps' name where it has one). A `StrEnum` member
*is* its string, so rows written before these types existed read back unchanged and JSON carries
the same text; `Status("failed") is Status.FAILED`.
"""

from __future__ import annotations

from enum import StrEnum


class ReleaseStatus(StrEnum):
    """A release as a whole (Azure DevOps' ReleaseStatus)."""

    ACTIVE = "active"
    """It may still deploy to its stages."""
    ABANDONED = "abandoned"
    """Someone gave it up: nothing of it deploys any more, what was running was canceled."""


class ReleaseReason(StrEnum):
    """Why a release was created."""

    MANUAL = "manual"
    """A person or a pipeline asked for it (POST /releases, the dashboard, the CLI)."""
    CONTINUOUS_INTEGRATION = "continuousIntegration"
    """A build of an artifact with a continuous-deployment trigger arrived."""
    SCHEDULE = "schedule"
    """A release schedule of the definition fired."""


class Status(StrEnum):
    """A stage of a release, and each deployment attempt on it (Azure DevOps' names)."""

    NOT_STARTED = "notStarted"
    """Nothing was deployed to the stage for this release yet."""
    QUEUED = "queued"
    """Waiting for room in the stage's lane (its queue policy)."""
    IN_PROGRESS = "inProgress"
    """Between its start and its end: held by an approval, gate, window or deferral, or running steps."""
    SUCCEEDED = "succeeded"
    """Every step succeeded and every approval and gate after them passed."""
    PARTIALLY_SUCCEEDED = "partiallySucceeded"
    """It ended, but a step marked continueOnError failed."""
    CANCELED = "canceled"
    """Stopped before its end: the release was abandoned, or a newer release took its place in the lane."""
    REJECTED = "rejected"
    """A business decision stopped it: an approver rejected it, an approval timed out, a pre-deployment gate
    failed."""
    FAILED = "failed"
    """A step failed (technical), a post-deployment gate failed, or a gate could not read its signals."""


FINISHED = frozenset({Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED, Status.CANCELED, Status.REJECTED, Status.FAILED})
"""Statuses that never change again."""
GOOD = frozenset({Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED})
"""Statuses that let downstream stages start (partial success only where a stage allows it)."""


class StepStatus(StrEnum):
    """One step of one deployment attempt."""

    PENDING = "pending"
    """Not started yet."""
    IN_PROGRESS = "inProgress"
    """Its message is out, or it waits to run again (a check not passing yet)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    """Its deployment was canceled while it ran."""
    SKIPPED = "skipped"
    """An earlier step failed, so it never ran."""


STEP_FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELED})


class Phase(StrEnum):
    """Where an in-progress (or queued) deployment stands: the hold it waits in, or its steps."""

    QUEUED = "queued"
    """In the stage's lane, behind other releases."""
    PRE_GATE = "preGate"
    """Its pre-deployment gate samples health signals."""
    PRE_APPROVAL = "preApproval"
    """Its pre-deployment approval waits for people."""
    WINDOW = "window"
    """Outside the stage's deployment windows, or inside a freeze, until the next opening."""
    DEFERRED = "deferred"
    """Deferred by an approver, or asked not to run before a time."""
    STEPS = "steps"
    """Running its steps, one message each."""
    INTERVENTION = "manualIntervention"
    """A manual-intervention step waits for a person to resume or reject it."""
    POST_GATE = "postGate"
    """Its post-deployment gate samples health signals."""
    POST_APPROVAL = "postApproval"
    """Its post-deployment approval waits for people."""

    @staticmethod
    def gate(kind: Kind) -> Phase:
        return Phase.PRE_GATE if kind == Kind.PRE else Phase.POST_GATE

    @staticmethod
    def approval(kind: Kind) -> Phase:
        return Phase.PRE_APPROVAL if kind == Kind.PRE else Phase.POST_APPROVAL


class Kind(StrEnum):
    """Which side of the steps an approval or a gate stands on (the API's `kind`)."""

    PRE = "pre"
    """Before the steps: nothing is deployed until it passes."""
    POST = "post"
    """After the steps: the deployment succeeds only when it passes."""


class Reason(StrEnum):
    """Why a deployment attempt was started."""

    AUTOMATED = "automated"
    """Its trigger fired: after the release was created, or after its upstream stages."""
    MANUAL = "manual"
    """A person deployed the stage for the first time."""
    REDEPLOY = "redeploy"
    """A person deployed the stage again."""
    ROLLBACK = "rollback"
    """A person deployed an earlier release again to undo a newer one."""
    SCHEDULED = "scheduled"
    """The stage's schedule fired."""



class ApprovalStatus(StrEnum):
    PENDING = "pending"
    """Waiting for votes."""
    APPROVED = "approved"
    REJECTED = "rejected"
    """Someone eligible rejected it, or it timed out."""
    CANCELED = "canceled"
    """Its release was abandoned while it waited."""
    SKIPPED = "skipped"
    """The same approver approved the previous stage (an option of the stage)."""


class Choice(StrEnum):
    """What an approver chose."""

    APPROVE = "approve"
    REJECT = "reject"


class GateStatus(StrEnum):
    WAITING = "waiting"
    """Before its first sample (the gate's delay)."""
    EVALUATING = "evaluating"
    """Taking samples."""
    SUCCEEDED = "succeeded"
    """Every signal passed in one sample, for the steady duration."""
    FAILED = "failed"
    """The signals said no: a limit of failed or inconclusive samples, or the timeout."""
    ERRORED = "errored"
    """The signals could not be read: too many samples in a row errored. A technical failure, kept apart
    from a failed gate as Argo Rollouts and Kargo keep them."""
    IGNORED = "ignored"
    """An admin let the deployment past it (audited)."""
    CANCELED = "canceled"
    """Its release was abandoned while it ran."""


GATE_RUNNING = frozenset({GateStatus.WAITING, GateStatus.EVALUATING})
GATE_PASSED = frozenset({GateStatus.SUCCEEDED, GateStatus.IGNORED})


class Verdict(StrEnum):
    """One signal's, or one sample's, verdict."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    """The provider answered with nothing to judge (an empty series, no rows)."""
    ERROR = "error"
    """The provider failed, throttled, timed out or answered something unreadable: never a pass."""


class EventType(StrEnum):
    """What a release's history records: one event per thing that happened, never changed."""

    RELEASE_CREATED = "releaseCreated"
    RELEASE_ABANDONED = "releaseAbandoned"
    GLASS_BROKEN = "glassBroken"
    """An admin deployed outside the windows and freezes, with a reason."""
    UPSTREAM_OVERRIDDEN = "upstreamOverridden"
    """An admin deployed a manual stage by hand before the release passed the stages it requires, with a reason."""
    DEPLOYMENT_QUEUED = "deploymentQueued"
    DEPLOYMENT_STARTED = "deploymentStarted"
    DEPLOYMENT_WAITING_FOR_WINDOW = "deploymentWaitingForWindow"
    DEPLOYMENT_DEFERRED = "deploymentDeferred"
    """An approver deferred the deployment to a time."""
    DEFERRAL_ENDED = "deferralEnded"
    DEPLOYMENT_SUCCEEDED = "deploymentSucceeded"
    DEPLOYMENT_PARTIALLY_SUCCEEDED = "deploymentPartiallySucceeded"
    DEPLOYMENT_CANCELED = "deploymentCanceled"
    DEPLOYMENT_REJECTED = "deploymentRejected"
    DEPLOYMENT_FAILED = "deploymentFailed"
    APPROVAL_REQUESTED = "approvalRequested"
    APPROVAL_APPROVED = "approvalApproved"
    APPROVAL_REJECTED = "approvalRejected"
    APPROVAL_OVERRIDDEN = "approvalOverridden"
    """An admin decided in place of the approvers, with a reason."""
    APPROVAL_REASSIGNED = "approvalReassigned"
    APPROVAL_SKIPPED = "approvalSkipped"
    APPROVAL_TIMED_OUT = "approvalTimedOut"
    APPROVAL_COMPLETED = "approvalCompleted"
    GATE_STARTED = "gateStarted"
    GATE_SAMPLE = "gateSample"
    GATE_SUCCEEDED = "gateSucceeded"
    GATE_FAILED = "gateFailed"
    GATE_ERRORED = "gateErrored"
    GATE_IGNORED = "gateIgnored"
    STEP_SUCCEEDED = "stepSucceeded"
    STEP_FAILED = "stepFailed"
    STEP_DEFERRED = "stepDeferred"
    """A step runs again later (a check not passing yet, a wait, a throttled call)."""
    STEP_REDELIVERED = "stepRedelivered"
    """A step's message stayed unanswered past its lease and was sent again."""
    SLOT_CHANGED = "slotChanged"
    """A step changed what runs in a slot (a deployment, a swap)."""
    SWAP_BACK_STARTED = "swapBackStarted"
    INTERVENTION_PENDING = "manualInterventionPending"
    INTERVENTION_RESUMED = "manualInterventionResumed"
    INTERVENTION_REJECTED = "manualInterventionRejected"
    VARIABLES_REFRESHED = "variablesRefreshed"
    """A deployment asked for the linked variable groups' current values: the release keeps them from then on."""
    STEP_STOPPED = "stepStopped"
    """What an engine ran for a step was stopped (the release was abandoned while it ran)."""

    @staticmethod
    def deployment_ended(status: Status) -> EventType:
        """The event of a deployment that ended with `status`."""
        return EventType(f"deployment{status[0].upper()}{status[1:]}")


NOTIFIED = frozenset({EventType.APPROVAL_REQUESTED, EventType.APPROVAL_REASSIGNED, EventType.DEPLOYMENT_REJECTED,
                      EventType.DEPLOYMENT_FAILED, EventType.INTERVENTION_PENDING})
"""Events that send mail: to the approvers (a reassigned entry's new approver too), or to whoever asked for
the deployment."""

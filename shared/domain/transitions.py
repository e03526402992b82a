"""The release state machine: given a release, a command and `now`, decide what happens.

`decide` never does I/O. It returns the new release, the events to append to its history and the
effects to carry out (step messages to enqueue). Commands that arrive from queues are safe to
repeat: a stale or duplicate one decides nothing. Commands from people that do not fit the
current state raise `Conflict`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain import approvals, gates
from shared.domain.access import ADMIN, Forbidden, Principal
from shared.domain.errors import Conflict, FieldError, Invalid, NotFound
from shared.domain.gate_transitions import EnqueueGate, GateClaim, GateMoves, GateSample, IgnoreGate, may_claim
from shared.domain.lanes import Lane, limit_of
from shared.domain.plan import AFTER_RELEASE, SWAP_TYPES, StagePlan
from shared.domain.release import (
    ABANDONED,
    CANCELED,
    FAILED,
    FINISHED,
    GOOD,
    IN_PROGRESS,
    NOT_STARTED,
    PARTIALLY_SUCCEEDED,
    PENDING,
    QUEUED,
    REJECTED,
    SKIPPED,
    SUCCEEDED,
    Deployment,
    Release,
    StepRun,
    deferred_until,
)
from shared.domain.windows import next_opening

SWAP_BACK = "swap-back"
"""A step the engine adds itself when a post-swap check fails."""


# ---- commands -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StartRelease:
    """Fire the stages whose trigger is `afterRelease` (right after creation)."""


@dataclass(frozen=True)
class DeployStage:
    """Deploy a stage now, whatever its trigger: a manual deployment, a redeploy, or a rollback
    (an earlier release deployed again)."""

    stage: str
    by: str
    reason: str | None = None
    break_glass: str | None = None
    """An admin deploys outside the windows and freezes, with this reason (audited)."""
    admin: bool = False
    not_before: str | None = None
    """Run the steps no earlier than this (approvals are asked now): the same deferral an approver sets."""


@dataclass(frozen=True)
class CompleteStep:
    stage: str
    attempt: int
    step: int
    run: int
    succeeded: bool
    message: str = ""
    slots: tuple[dict[str, Any], ...] = ()
    """What the step left in which slot: {"slot": resource id, "releaseId", "version", "how"}."""
    state: dict[str, Any] = field(default_factory=dict)
    """The step's scratch data to keep (a swap remembers what the target ran before)."""


@dataclass(frozen=True)
class ClaimStep:
    """A step handler takes a run of a step that toggles something (a swap) before acting, so that
    the same message delivered twice at once never swaps twice."""

    stage: str
    attempt: int
    step: int
    run: int
    token: str
    lease_seconds: float = 120.0


@dataclass(frozen=True)
class DeferStep:
    """Run the step again after `delay_seconds` (a check not yet passing, a wait, a throttled call)."""

    stage: str
    attempt: int
    step: int
    run: int
    delay_seconds: float
    message: str = ""
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FailStep:
    """A step's message was poisoned or its run can no longer go on: fail it with the reason."""

    stage: str
    attempt: int
    step: int
    reason: str


@dataclass(frozen=True)
class Decide:
    """An approver's (or, with `override`, an admin's) decision on a pending approval."""

    stage: str
    attempt: int
    kind: str
    who: Principal
    decision: str
    comment: str = ""
    override: bool = False


@dataclass(frozen=True)
class Defer:
    """An approver defers the deployment: it starts no earlier than `until` once approved."""

    stage: str
    attempt: int
    who: Principal
    until: str
    comment: str = ""


@dataclass(frozen=True)
class Reassign:
    stage: str
    attempt: int
    kind: str
    who: Principal
    to: str
    comment: str = ""


@dataclass(frozen=True)
class Wake:
    """A durable timer fired: an approval may have timed out, a deferral may be over."""

    stage: str
    attempt: int


@dataclass(frozen=True)
class LaneGrant:
    """The stage's lane has room for this release now: its queued deployment goes ahead."""

    stage: str


@dataclass(frozen=True)
class LaneSkip:
    """A newer release took this queued deployment's place (policy `latest`)."""

    stage: str
    newer: int


@dataclass(frozen=True)
class Abandon:
    by: str
    comment: str = ""


@dataclass(frozen=True)
class Sweep:
    """Redeliver step messages that stayed unanswered past their lease; fail them after `max_redeliveries`."""

    lease_seconds: float
    max_redeliveries: int


Command = (StartRelease | DeployStage | CompleteStep | DeferStep | FailStep | Abandon | Sweep | Decide | Defer
           | Reassign | Wake | LaneGrant | LaneSkip | GateClaim | GateSample | IgnoreGate | ClaimStep)


# ---- results --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    type: str
    at: str
    stage: str | None = None
    attempt: int | None = None
    step: int | None = None
    message: str = ""
    by: str | None = None


@dataclass(frozen=True)
class EnqueueStep:
    """Send the message that runs one step, visible after `delay_seconds`."""

    stage: str
    attempt: int
    step: int
    run: int
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class ArmTimer:
    """Wake the deployment at `due` (an approval's timeout, the end of a deferral)."""

    stage: str
    attempt: int
    due: str


@dataclass(frozen=True)
class LaneMessage:
    """Tell another release of the same definition that the lane granted or skipped its deployment."""

    release_id: int
    stage: str
    action: str
    """grant | skip"""


@dataclass
class Decision:
    release: Release
    events: list[Event] = field(default_factory=list)
    effects: list[EnqueueStep | ArmTimer | LaneMessage | EnqueueGate] = field(default_factory=list)
    lanes: dict[str, Lane] = field(default_factory=dict)
    """Lanes this decision changed, to write with it (ETag-guarded)."""
    slots: list[dict[str, Any]] = field(default_factory=list)
    """Slot contents to record (what runs where), from the steps this decision accepted."""

    touched: bool = False
    """A change that tells no one (a gate sample claimed): still written."""

    @property
    def changed(self) -> bool:
        return bool(self.events or self.effects or self.touched)


# ---- the rules ------------------------------------------------------------------------------

def decide(release: Release, command: Command, now: datetime, lanes: dict[str, Lane] | None = None) -> Decision:
    """`lanes` are the current lanes of the definition's stages that limit parallel deployments."""
    d = _Decider(copy.deepcopy(release), now, copy.deepcopy(lanes or {}))
    match command:
        case StartRelease():
            d.start_release()
        case DeployStage():
            d.deploy_stage(command)
        case CompleteStep():
            d.complete_step(command)
        case DeferStep():
            d.defer_step(command)
        case FailStep():
            d.fail_step(command)
        case Abandon():
            d.abandon(command)
        case Sweep():
            d.sweep(command)
        case Decide():
            d.decide(command)
        case Defer():
            d.defer(command)
        case Reassign():
            d.reassign(command)
        case Wake():
            d.wake(command.stage, command.attempt)
        case LaneGrant():
            d.lane_grant(command.stage)
        case LaneSkip():
            d.lane_skip(command)
        case GateClaim():
            d.gate_claim(command)
        case ClaimStep():
            d.claim_step(command)
        case GateSample():
            d.gate_sample(command)
        case IgnoreGate():
            d.ignore_gate(command)
    return d.decision


class _Decider(GateMoves):
    def __init__(self, release: Release, now: datetime, lanes: dict[str, Lane]) -> None:
        self.release = release
        self.now = now
        self.lanes = lanes
        self.break_glass: str | None = None
        self.not_before: str | None = None
        self.stamp = now.isoformat()
        self.decision = Decision(release)
        self.plan = release.plan

    def emit(self, type: str, **kw: Any) -> None:
        self.decision.events.append(Event(type, self.stamp, **kw))

    def timer(self, stage: str, attempt: int, due: str) -> ArmTimer:
        return ArmTimer(stage, attempt, due)

    # -- people and triggers

    def start_release(self) -> None:
        if self.release.status == ABANDONED or any(s.deployments for s in self.release.stages.values()):
            return  # abandoned, or already started: a repeated start decides nothing
        for stage in self.plan.stages:
            if stage.trigger == AFTER_RELEASE:
                self.start_deployment(stage, reason="automated", by="system")

    def deploy_stage(self, cmd: DeployStage) -> None:
        stage = self.plan.stage(cmd.stage)
        if stage is None:
            raise NotFound(f"release {self.release.id} has no stage '{cmd.stage}'")
        if self.release.status == ABANDONED:
            raise Conflict(f"release {self.release.id} is abandoned")
        run = self.release.stages[stage.name]
        if run.current is not None and run.current.status in (IN_PROGRESS, QUEUED):
            raise Conflict(f"stage '{stage.name}' is already {run.current.status} (attempt {run.current.attempt})")
        reason = cmd.reason or ("redeploy" if run.deployments else "manual")
        if cmd.break_glass and not cmd.admin:
            raise Forbidden(f"{cmd.by} may not break the glass: it needs the admin role")
        self.break_glass = cmd.break_glass
        self.not_before = cmd.not_before
        self.start_deployment(stage, reason=reason, by=cmd.by)

    def abandon(self, cmd: Abandon) -> None:
        if self.release.status == ABANDONED:
            return
        self.release.status = ABANDONED
        for run in self.release.stages.values():
            dep = run.current
            if dep is not None and dep.status == QUEUED:
                queue = self.lane(run.name).queued
                if self.release.id in queue:
                    queue.remove(self.release.id)
                self.finish_deployment(run.name, dep, CANCELED, failure="release abandoned", cascade=False)
                continue
            if dep is not None and dep.status == IN_PROGRESS:
                for step in dep.steps:
                    if step.status in (PENDING, IN_PROGRESS):
                        step.status, step.finished_at = CANCELED, self.stamp
                for approval in dep.approvals.values():
                    if approval.status == approvals.PENDING:
                        approval.status = approvals.CANCELED
                for gate in dep.gates.values():
                    if gate.status in (gates.WAITING, gates.EVALUATING):
                        gate.status, gate.claim = gates.CANCELED, None
                self.finish_deployment(run.name, dep, CANCELED, failure="release abandoned", cascade=False)
        self.emit("releaseAbandoned", by=cmd.by, message=cmd.comment)

    # -- step messages

    def current_step(self, stage: str, attempt: int, index: int, run: int | None) -> tuple[Deployment, StepRun] | None:
        """The step a message names, if that message is still the live one; None for stale messages."""
        stage_run = self.release.stages.get(stage)
        dep = stage_run.current if stage_run else None
        if dep is None or dep.attempt != attempt or dep.status != IN_PROGRESS:
            return None
        step = dep.step(index)
        if step is None or step.status != IN_PROGRESS or (run is not None and step.run != run):
            return None
        return dep, step

    def claim_step(self, cmd: ClaimStep) -> None:
        found = self.current_step(cmd.stage, cmd.attempt, cmd.step, cmd.run)
        if found is None:
            return
        step = found[1]
        if not may_claim(step.claim, step.claimed_until, cmd.token, self.now):
            return
        step.claim = cmd.token
        step.claimed_until = (self.now + timedelta(seconds=cmd.lease_seconds)).isoformat()
        self.decision.touched = True

    def complete_step(self, cmd: CompleteStep) -> None:
        found = self.current_step(cmd.stage, cmd.attempt, cmd.step, cmd.run)
        if found is None:
            return
        dep, step = found
        step.status = SUCCEEDED if cmd.succeeded else FAILED
        step.finished_at, step.message = self.stamp, cmd.message
        if cmd.state:
            step.state = dict(cmd.state)
        self.emit("stepSucceeded" if cmd.succeeded else "stepFailed", stage=cmd.stage, attempt=dep.attempt,
                  step=step.index, message=cmd.message)
        for slot in cmd.slots:
            by = "Slipway (automatic swap-back)" if step.type == SWAP_BACK else dep.requested_by
            record = {**slot, "stage": cmd.stage, "attempt": dep.attempt, "by": by, "at": self.stamp}
            self.decision.slots.append(record)
            self.emit("slotChanged", stage=cmd.stage, attempt=dep.attempt, step=step.index, by=by,
                      message=f"{slot['slot'].rsplit('/', 1)[-1]} now runs release {slot.get('releaseId')} "
                              f"({slot.get('version')}) after {slot.get('how')}")
        self.after_step(cmd.stage, dep, step)

    def defer_step(self, cmd: DeferStep) -> None:
        found = self.current_step(cmd.stage, cmd.attempt, cmd.step, cmd.run)
        if found is None:
            return
        dep, step = found
        step.state = dict(cmd.state)
        step.message = cmd.message
        self.send(cmd.stage, dep, step, cmd.delay_seconds)
        self.emit("stepDeferred", stage=cmd.stage, attempt=dep.attempt, step=step.index, message=cmd.message)

    def fail_step(self, cmd: FailStep) -> None:
        found = self.current_step(cmd.stage, cmd.attempt, cmd.step, None)
        if found is None:
            return
        dep, step = found
        step.status, step.finished_at, step.message = FAILED, self.stamp, cmd.reason
        self.emit("stepFailed", stage=cmd.stage, attempt=dep.attempt, step=step.index, message=cmd.reason)
        self.finish_deployment(cmd.stage, dep, FAILED, failure=f"step '{step.name}' failed: {cmd.reason}")

    def sweep(self, cmd: Sweep) -> None:
        for name, run in self.release.stages.items():
            dep = run.current
            if dep is None or dep.status != IN_PROGRESS:
                continue
            if dep.phase != "steps":
                self.wake(name, dep.attempt)  # a lost timer: approvals time out, deferrals end
                continue
            for step in dep.steps:
                if step.status != IN_PROGRESS or step.visible_at is None:
                    continue
                overdue = datetime.fromisoformat(step.visible_at) + timedelta(seconds=cmd.lease_seconds)
                if self.now < overdue:
                    continue
                if step.redeliveries >= cmd.max_redeliveries:
                    self.fail_step(FailStep(name, dep.attempt, step.index,
                                            f"no progress after {step.redeliveries} redeliveries"))
                else:
                    step.redeliveries += 1
                    self.send(name, dep, step, 0)
                    self.emit("stepRedelivered", stage=name, attempt=dep.attempt, step=step.index,
                              message=f"no answer since {step.visible_at}")

    # -- shared moves

    def start_deployment(self, stage: StagePlan, *, reason: str, by: str) -> None:
        run = self.release.stages[stage.name]
        dep = Deployment(attempt=len(run.deployments) + 1, status=IN_PROGRESS, reason=reason, requested_by=by,
                         queued_at=self.stamp, started_at=self.stamp,
                         steps=[StepRun(s.index, s.type, s.name) for s in stage.steps])
        dep.break_glass = self.break_glass
        dep.not_before = self.not_before
        if dep.break_glass:
            self.emit("glassBroken", stage=stage.name, attempt=dep.attempt, by=by, message=dep.break_glass)
        run.deployments.append(dep)
        run.status = IN_PROGRESS
        if self.must_queue(stage, dep):
            return
        self.emit("deploymentStarted", stage=stage.name, attempt=dep.attempt, by=by, message=reason)
        self.proceed(stage, dep)

    def lane(self, stage: str) -> Lane:
        """The stage's lane, marked as changed by this decision."""
        lane = self.lanes.setdefault(stage, Lane())
        self.decision.lanes[stage] = lane
        return lane

    def must_queue(self, stage: StagePlan, dep: Deployment) -> bool:
        limit = limit_of(stage.queue)
        if not limit:
            return False
        lane, me = self.lane(stage.name), self.release.id
        if me in lane.active:
            return False
        if len(lane.active) < limit and not lane.queued:
            lane.active.append(me)
            return False
        if (stage.queue or {}).get("policy") == "latest":
            for older in lane.queued:
                self.decision.effects.append(LaneMessage(older, stage.name, "skip"))
            lane.queued.clear()
        lane.queued.append(me)
        dep.status, dep.phase, dep.started_at = QUEUED, "queued", None
        self.release.stages[stage.name].status = QUEUED
        self.emit("deploymentQueued", stage=stage.name, attempt=dep.attempt,
                  message=f"{len(lane.active)} deployment(s) running; at most {limit} at a time")
        return True

    def lane_grant(self, stage_name: str) -> None:
        stage, run = self.plan.stage(stage_name), self.release.stages.get(stage_name)
        dep = run.current if run else None
        if stage is None or dep is None or dep.status != QUEUED:
            lane = self.lanes.get(stage_name)
            if lane is not None and self.release.id in lane.active:  # granted to one that left: pass it on
                self.leave_lane(stage_name)
            return
        dep.status, dep.started_at = IN_PROGRESS, self.stamp
        run.status = IN_PROGRESS  # type: ignore[union-attr]
        self.emit("deploymentStarted", stage=stage_name, attempt=dep.attempt, by=dep.requested_by,
                  message="its turn in the stage's queue")
        self.proceed(stage, dep)

    def lane_skip(self, cmd: LaneSkip) -> None:
        run = self.release.stages.get(cmd.stage)
        dep = run.current if run else None
        if dep is None or dep.status != QUEUED:
            return
        self.finish_deployment(cmd.stage, dep, CANCELED, cascade=False,
                               failure=f"skipped: release {cmd.newer} is newer (the stage deploys the latest only)")

    def leave_lane(self, stage: str) -> None:
        lane = self.lanes.get(stage)
        if lane is None or self.release.id not in lane.active:
            return
        lane = self.lane(stage)
        lane.active.remove(self.release.id)
        if lane.queued:
            nxt = lane.queued.pop(0)
            lane.active.append(nxt)
            self.decision.effects.append(LaneMessage(nxt, stage, "grant"))

    def proceed(self, stage: StagePlan, dep: Deployment) -> None:
        if self.gate_pending(stage, dep, "pre", "beforeApprovals"):
            return
        if stage.pre_approvals and "pre" not in dep.approvals and not self.skip_pre_approval(stage, dep):
            self.request_approval(stage.name, dep, "pre", stage.pre_approvals)
        else:
            self.begin_steps(stage.name, dep)

    def begin_steps(self, stage: str, dep: Deployment) -> None:
        if self.outside_window(stage, dep):
            return
        until = deferred_until(dep)
        if until and self.now < datetime.fromisoformat(until):
            dep.phase = "deferred"
            self.decision.effects.append(ArmTimer(stage, dep.attempt, until))
            return
        plan = self.plan.stage(stage)
        if plan is not None and self.gate_pending(plan, dep, "pre", "afterApprovals"):
            return
        dep.phase = "steps"
        if dep.steps:
            self.start_step(stage, dep, dep.steps[0])
        else:
            self.steps_done(stage, dep)

    def outside_window(self, stage: str, dep: Deployment) -> bool:
        """Hold the deployment until its stage's next opening, unless the glass was broken."""
        plan = self.plan.stage(stage)
        if plan is None or not (plan.windows or plan.freezes) or dep.break_glass:
            return False
        if dep.reason == "rollback" and plan.rollback_ignores_windows:
            return False
        opening, why = next_opening(self.now, list(plan.windows), list(plan.freezes))
        if opening <= self.now:
            dep.opens_at = dep.waits_for = None
            return False
        if dep.phase != "window" or dep.opens_at != opening.isoformat():
            self.emit("deploymentWaitingForWindow", stage=stage, attempt=dep.attempt,
                      message=f"{why}; opens {opening.isoformat()}")
        dep.phase, dep.opens_at, dep.waits_for = "window", opening.isoformat(), why
        self.decision.effects.append(ArmTimer(stage, dep.attempt, opening.isoformat()))
        return True

    def steps_done(self, stage: str, dep: Deployment) -> None:
        plan = self.plan.stage(stage)
        if plan is not None and self.gate_pending(plan, dep, "post", "beforeApprovals"):
            return
        if plan is not None and plan.post_approvals and "post" not in dep.approvals:
            self.request_approval(stage, dep, "post", plan.post_approvals)
            return
        if plan is not None and self.gate_pending(plan, dep, "post", "afterApprovals"):
            return
        partial = any(s.status == FAILED for s in dep.steps)
        self.finish_deployment(stage, dep, PARTIALLY_SUCCEEDED if partial else SUCCEEDED)

    def request_approval(self, stage: str, dep: Deployment, kind: str, settings: dict[str, Any]) -> None:
        minutes = settings.get("timeoutMinutes") or approvals.DEFAULT_TIMEOUT_MINUTES
        deadline = (self.now + timedelta(minutes=minutes)).isoformat()
        policy = settings.get("policy", "allInAnyOrder")
        approvers = list(settings.get("approvers", []))
        dep.approvals[kind] = approvals.Approval(
            kind=kind, status=approvals.PENDING, approvers=approvers, policy=policy,
            required=int(settings.get("required") or len(approvers)),
            requester_cannot_approve=settings.get("requesterCannotApprove", True), requested_at=self.stamp,
            deadline=deadline)
        dep.phase = f"{kind}Approval"
        self.emit("approvalRequested", stage=stage, attempt=dep.attempt,
                  message=f"{kind}-deployment approval by {', '.join(approvers)} ({policy}); times out {deadline}")
        self.decision.effects.append(ArmTimer(stage, dep.attempt, deadline))

    def skip_pre_approval(self, stage: StagePlan, dep: Deployment) -> bool:
        """Skip when the same approver approved the previous stage (an option; automatic starts only)."""
        settings = stage.pre_approvals or {}
        if not settings.get("skipIfApprovedInPreviousStage") or dep.reason != "automated":
            return False
        voters = {v.by.casefold() for up in stage.after for d in self.release.stages[up].deployments[-1:]
                  for a in d.approvals.values() for v in a.votes if v.decision == "approve"}
        if voters & {a.casefold() for a in settings.get("approvers", [])}:
            dep.approvals["pre"] = approvals.Approval(
                kind="pre", status=approvals.SKIPPED, approvers=list(settings.get("approvers", [])),
                policy=settings.get("policy", "allInAnyOrder"), required=0, requester_cannot_approve=False,
                requested_at=self.stamp, deadline=self.stamp)
            self.emit("approvalSkipped", stage=stage.name, attempt=dep.attempt,
                      message="the same approver approved the previous stage")
            return True
        return False

    # -- approvals

    def live_approval(self, stage: str, attempt: int, kind: str) -> tuple[Deployment, approvals.Approval]:
        run = self.release.stages.get(stage)
        if run is None:
            raise NotFound(f"release {self.release.id} has no stage '{stage}'")
        if self.release.status == ABANDONED:
            raise Conflict(f"release {self.release.id} is abandoned")
        dep = run.current
        if dep is None or dep.attempt != attempt:
            raise Conflict(f"attempt {attempt} of stage '{stage}' is not the current one"
                           + (f" (attempt {dep.attempt} is)" if dep else ""))
        approval = dep.approvals.get(kind)
        if approval is None or approval.status != approvals.PENDING or dep.status != IN_PROGRESS:
            raise Conflict(f"stage '{stage}' has no pending {kind}-deployment approval")
        return dep, approval

    def decide(self, cmd: Decide) -> None:
        dep, approval = self.live_approval(cmd.stage, cmd.attempt, cmd.kind)
        if cmd.decision not in ("approve", "reject"):
            raise Conflict("decision must be approve or reject")
        requesters = {self.release.created_by, dep.requested_by}
        own = cmd.override and cmd.who.name.casefold() in {r.casefold() for r in requesters if r}
        if cmd.override:
            if not cmd.who.has(ADMIN):
                raise Forbidden(f"{cmd.who.name} may not override approvals: it needs the admin role")
            if not cmd.comment.strip():
                raise Invalid([FieldError("reason", "an override needs its reason (it is audited)")])
            entry = "override"
        else:
            entry = approvals.check_voter(approval, cmd.who, requesters)
        approval.votes.append(approvals.Vote(cmd.who.name, cmd.decision, cmd.comment, self.stamp, entry,
                                             cmd.override, own))
        kind = {"approve": "approvalApproved", "reject": "approvalRejected"}[cmd.decision]
        note = " (self-override: the admin requested this deployment)" if own else ""
        self.emit("approvalOverridden" if cmd.override else kind, stage=cmd.stage,
                  attempt=dep.attempt, by=cmd.who.name, message=f"{cmd.kind}{note}: {cmd.comment}".rstrip(": "))
        self.settle(cmd.stage, dep, approval)

    def settle(self, stage: str, dep: Deployment, approval: approvals.Approval, reason: str | None = None) -> None:
        verdict = approvals.REJECTED if reason else approvals.outcome(approval)
        if verdict is None:
            return
        approval.status = verdict
        if verdict == approvals.REJECTED:
            vote = next((v for v in approval.votes if v.decision == "reject"), None)
            why = reason or (f"rejected by {vote.by}" + (f": {vote.comment}" if vote and vote.comment else "")
                             if vote else "rejected")
            if reason:
                self.emit("approvalTimedOut", stage=stage, attempt=dep.attempt, message=why)
            self.finish_deployment(stage, dep, REJECTED, failure=f"{approval.kind}-deployment approval: {why}")
            return
        self.emit("approvalCompleted", stage=stage, attempt=dep.attempt, message=f"{approval.kind}: approved")
        if approval.kind == "pre":
            self.begin_steps(stage, dep)
        else:
            self.steps_done(stage, dep)

    def defer(self, cmd: Defer) -> None:
        dep, approval = self.live_approval(cmd.stage, cmd.attempt, "pre")
        if not any(cmd.who.is_(a) for a in approval.approvers) and not cmd.who.has(ADMIN):
            raise Forbidden(f"{cmd.who.name} is not an approver of this stage")
        approval.deferred_until = cmd.until
        approval.history.append({"action": "defer", "by": cmd.who.name, "at": self.stamp, "until": cmd.until,
                                 "comment": cmd.comment})
        del approval.history[:-approvals.HISTORY_KEPT]
        self.emit("deploymentDeferred", stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
                  message=f"until {cmd.until}: {cmd.comment}".rstrip(": "))

    def reassign(self, cmd: Reassign) -> None:
        dep, approval = self.live_approval(cmd.stage, cmd.attempt, cmd.kind)
        mine = [a for a in approval.waiting_for() if cmd.who.is_(a)]
        if not mine and not cmd.who.has(ADMIN):
            raise Forbidden(f"{cmd.who.name} has no open approval here to reassign")
        entry = mine[0] if mine else approval.waiting_for()[0]
        approvals.check_reassign(approval, cmd.to)
        approval.approvers[approval.approvers.index(entry)] = cmd.to
        approval.history.append({"action": "reassign", "by": cmd.who.name, "at": self.stamp, "from": entry,
                                 "to": cmd.to, "comment": cmd.comment})
        del approval.history[:-approvals.HISTORY_KEPT]
        self.emit("approvalReassigned", stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
                  message=f"{entry} -> {cmd.to}: {cmd.comment}".rstrip(": "))

    def wake(self, stage: str, attempt: int) -> None:
        run = self.release.stages.get(stage)
        dep = run.current if run else None
        if dep is None or dep.attempt != attempt or dep.status != IN_PROGRESS:
            return
        if dep.phase in ("preApproval", "postApproval"):
            approval = dep.approvals[dep.phase.removesuffix("Approval")]
            if approval.status == approvals.PENDING and self.now >= datetime.fromisoformat(approval.deadline):
                self.settle(stage, dep, approval, reason=f"timed out at {approval.deadline}")
        elif dep.phase == "window":
            if dep.opens_at is None or self.now >= datetime.fromisoformat(dep.opens_at):
                self.begin_steps(stage, dep)
        elif dep.phase in ("preGate", "postGate"):
            self.gate_deadline(stage, dep)
        elif dep.phase == "deferred":
            until = deferred_until(dep)
            if until is None or self.now >= datetime.fromisoformat(until):
                self.emit("deferralEnded", stage=stage, attempt=dep.attempt, message=f"deferred until {until}")
                self.begin_steps(stage, dep)

    def start_step(self, stage: str, dep: Deployment, step: StepRun) -> None:
        step.status, step.started_at = IN_PROGRESS, self.stamp
        self.send(stage, dep, step, 0)

    def send(self, stage: str, dep: Deployment, step: StepRun, delay: float) -> None:
        step.run += 1
        step.claim = step.claimed_until = None  # a claim holds one run
        step.visible_at = (self.now + timedelta(seconds=delay)).isoformat()
        self.decision.effects.append(EnqueueStep(stage, dep.attempt, step.index, step.run, delay))

    def after_step(self, stage: str, dep: Deployment, step: StepRun) -> None:
        stage_plan = self.plan.stage(stage)
        assert stage_plan is not None
        if step.type == SWAP_BACK:
            outcome = "swapped back automatically" if step.status == SUCCEEDED else "swap-back failed"
            self.finish_deployment(stage, dep, FAILED, failure=f"{dep.failure}; {outcome}: {step.message}")
            return
        config = stage_plan.steps[step.index].config
        swapped = [s for s in dep.steps[:step.index] if s.type in SWAP_TYPES and s.status == SUCCEEDED]
        if step.status == FAILED and config.get("postSwap") and swapped:
            for rest in dep.steps[step.index + 1:]:
                rest.status = SKIPPED
            dep.failure = f"post-swap check '{step.name}' failed: {step.message}"
            back = StepRun(len(dep.steps), SWAP_BACK, "Swap back", state={"swapStep": swapped[-1].index})
            dep.steps.append(back)
            self.emit("swapBackStarted", stage=stage, attempt=dep.attempt, step=back.index, message=dep.failure)
            self.start_step(stage, dep, back)
            return
        if step.status == FAILED and not stage_plan.steps[step.index].continue_on_error:
            for rest in dep.steps[step.index + 1:]:
                rest.status = SKIPPED
            self.finish_deployment(stage, dep, FAILED, failure=f"step '{step.name}' failed: {step.message}")
            return
        nxt = dep.step(step.index + 1)
        if nxt is not None:
            self.start_step(stage, dep, nxt)
            return
        self.steps_done(stage, dep)

    def finish_deployment(self, stage: str, dep: Deployment, status: str, *, failure: str | None = None,
                          cascade: bool = True) -> None:
        dep.status, dep.finished_at, dep.failure = status, self.stamp, failure
        self.release.stages[stage].status = status
        self.leave_lane(stage)
        self.emit(f"deployment{status[0].upper()}{status[1:]}", stage=stage, attempt=dep.attempt,
                  message=failure or "")
        if cascade and status in GOOD and self.release.status != ABANDONED:
            self.fire_downstream(stage)

    def fire_downstream(self, upstream: str) -> None:
        """Start each stage waiting on `upstream` once all its upstream stages are good (the join)."""
        for stage in self.plan.downstream_of(upstream):
            if self.release.stages[stage.name].status != NOT_STARTED:
                continue
            if all(self.upstream_ok(stage, up) for up in stage.after):
                self.start_deployment(stage, reason="automated", by="system")

    def upstream_ok(self, stage: StagePlan, upstream: str) -> bool:
        status = self.release.stages[upstream].status
        return status == SUCCEEDED or (status == PARTIALLY_SUCCEEDED and stage.allow_partial)


def is_finished(status: str) -> bool:
    return status in FINISHED

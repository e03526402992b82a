"""How approvals hold a deployment: requested when the deployment reaches them, decided by votes,
deferred or reassigned by approvers, overridden by admins, rejected when they time out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain import approvals
from shared.domain.access import ADMIN, Forbidden
from shared.domain.errors import Conflict, FieldError, Invalid, NotFound
from shared.domain.plan import PREVIEWED, StagePlan
from shared.domain.release import Deployment
from shared.domain.transitions.commands import CastVote, Defer, Reassign
from shared.domain.transitions.flow import Flow
from shared.domain.transitions.results import PreviewSteps
from shared.domain.vocabulary import (
    ApprovalStatus,
    Choice,
    EventType,
    Kind,
    Phase,
    Reason,
    ReleaseStatus,
    Status,
)


def settings_of(stage: StagePlan, kind: Kind) -> dict[str, Any] | None:
    return stage.pre_approvals if kind == Kind.PRE else stage.post_approvals


def pre_approval(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    """The pre-deployment approval's hold (skipped when the stage allows it and the same approver
    approved the previous stage)."""
    if settings_of(stage, Kind.PRE) and Kind.PRE not in dep.approvals and skip_pre_approval(flow, stage, dep):
        return False
    return _hold(flow, stage, dep, Kind.PRE)


def post_approval(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    return _hold(flow, stage, dep, Kind.POST)


def _hold(flow: Flow, stage: StagePlan, dep: Deployment, kind: Kind) -> bool:
    settings = settings_of(stage, kind)
    if not settings:
        return False
    approval = dep.approvals.get(kind)
    if approval is None:
        request(flow, stage.name, dep, kind, settings)
        return True
    return approval.status == ApprovalStatus.PENDING


def request(flow: Flow, stage: str, dep: Deployment, kind: Kind, settings: dict[str, Any]) -> None:
    minutes = settings.get("timeoutMinutes") or approvals.DEFAULT_TIMEOUT_MINUTES
    deadline = (flow.now + timedelta(minutes=minutes)).isoformat()
    policy = settings.get("policy", "allInAnyOrder")
    approvers = list(settings.get("approvers", []))
    dep.approvals[kind] = approvals.Approval(
        kind=kind, status=ApprovalStatus.PENDING, approvers=approvers, policy=policy,
        required=int(settings.get("required") or len(approvers)),
        requester_cannot_approve=settings.get("requesterCannotApprove", True), requested_at=flow.stamp,
        deadline=deadline)
    dep.phase = Phase.approval(kind)
    if kind == Kind.PRE and any(s.type in PREVIEWED for s in flow.stage(stage).steps):
        flow.decision.effects.append(PreviewSteps(stage, dep.attempt))
    flow.emit(EventType.APPROVAL_REQUESTED, stage=stage, attempt=dep.attempt,
              message=f"{kind}-deployment approval by {', '.join(approvers)} ({policy}); times out {deadline}")
    flow.arm_timer(stage, dep.attempt, deadline)


def skip_pre_approval(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    """Skip when the same approver approved the previous stage (an option; automatic starts only)."""
    settings = stage.pre_approvals or {}
    if not settings.get("skipIfApprovedInPreviousStage") or dep.reason != Reason.AUTOMATED:
        return False
    voters = {v.by.casefold() for up in stage.after for d in flow.release.stages[up].deployments[-1:]
              for a in d.approvals.values() for v in a.votes if v.decision == Choice.APPROVE}
    if not voters & {a.casefold() for a in settings.get("approvers", [])}:
        return False
    dep.approvals[Kind.PRE] = approvals.Approval(
        kind=Kind.PRE, status=ApprovalStatus.SKIPPED, approvers=list(settings.get("approvers", [])),
        policy=settings.get("policy", "allInAnyOrder"), required=0, requester_cannot_approve=False,
        requested_at=flow.stamp, deadline=flow.stamp)
    flow.emit(EventType.APPROVAL_SKIPPED, stage=stage.name, attempt=dep.attempt,
              message="the same approver approved the previous stage")
    return True


def live_approval(flow: Flow, stage: str, attempt: int, kind: Kind) -> tuple[Deployment, approvals.Approval]:
    """The pending approval a person acts on; Conflict when there is none (any more)."""
    run = flow.release.stages.get(stage)
    if run is None:
        raise NotFound(f"release {flow.release.id} has no stage '{stage}'")
    if flow.release.status == ReleaseStatus.ABANDONED:
        raise Conflict(f"release {flow.release.id} is abandoned")
    dep = run.current
    if dep is None or dep.attempt != attempt:
        raise Conflict(f"attempt {attempt} of stage '{stage}' is not the current one"
                       + (f" (attempt {dep.attempt} is)" if dep else ""))
    approval = dep.approvals.get(kind)
    if approval is None or approval.status != ApprovalStatus.PENDING or dep.status != Status.IN_PROGRESS:
        raise Conflict(f"stage '{stage}' has no pending {kind}-deployment approval")
    return dep, approval


def cast_vote(flow: Flow, cmd: CastVote) -> None:
    dep, approval = live_approval(flow, cmd.stage, cmd.attempt, cmd.kind)
    if cmd.choice not in (Choice.APPROVE, Choice.REJECT):
        raise Conflict("decision must be approve or reject")
    requesters = {flow.release.created_by, dep.requested_by}
    own = cmd.override and cmd.who.name.casefold() in {r.casefold() for r in requesters if r}
    if cmd.override:
        if not cmd.who.has(ADMIN):
            raise Forbidden(f"{cmd.who.name} may not override approvals: it needs the admin role")
        if not cmd.comment.strip():
            raise Invalid([FieldError("reason", "an override needs its reason (it is audited)")])
        entry = "override"
    else:
        entry = approvals.check_voter(approval, cmd.who, requesters)
    approval.votes.append(approvals.Vote(cmd.who.name, cmd.choice, cmd.comment, flow.stamp, entry,
                                         cmd.override, own))
    event = EventType.APPROVAL_APPROVED if cmd.choice == Choice.APPROVE else EventType.APPROVAL_REJECTED
    note = " (self-override: the admin requested this deployment)" if own else ""
    flow.emit(EventType.APPROVAL_OVERRIDDEN if cmd.override else event, stage=cmd.stage,
              attempt=dep.attempt, by=cmd.who.name, message=f"{cmd.kind}{note}: {cmd.comment}".rstrip(": "))
    settle(flow, cmd.stage, dep, approval)


def settle(flow: Flow, stage: str, dep: Deployment, approval: approvals.Approval, timed_out: str | None = None) -> None:
    """Close the approval once its votes (or its timeout) decide it; approved, the deployment moves on."""
    verdict = ApprovalStatus.REJECTED if timed_out else approvals.outcome(approval)
    if verdict is None:
        return
    approval.status = verdict
    if verdict == ApprovalStatus.REJECTED:
        vote = next((v for v in approval.votes if v.decision == Choice.REJECT), None)
        why = timed_out or (f"rejected by {vote.by}" + (f": {vote.comment}" if vote and vote.comment else "")
                            if vote else "rejected")
        if timed_out:
            flow.emit(EventType.APPROVAL_TIMED_OUT, stage=stage, attempt=dep.attempt, message=why)
        flow.finish_deployment(stage, dep, Status.REJECTED, failure=f"{approval.kind}-deployment approval: {why}")
        return
    flow.emit(EventType.APPROVAL_COMPLETED, stage=stage, attempt=dep.attempt, message=f"{approval.kind}: approved")
    flow.advance(flow.stage(stage), dep, Kind(approval.kind))


def time_out(flow: Flow, stage: str, dep: Deployment, kind: Kind) -> None:
    """The approval's timer fired: past its deadline, a pending approval is rejected."""
    approval = dep.approvals[kind]
    if approval.status == ApprovalStatus.PENDING and flow.now >= datetime.fromisoformat(approval.deadline):
        settle(flow, stage, dep, approval, timed_out=f"timed out at {approval.deadline}")


def defer(flow: Flow, cmd: Defer) -> None:
    dep, approval = live_approval(flow, cmd.stage, cmd.attempt, Kind.PRE)
    if not any(cmd.who.is_(a) for a in approval.approvers) and not cmd.who.has(ADMIN):
        raise Forbidden(f"{cmd.who.name} is not an approver of this stage")
    approval.deferred_until = cmd.until
    approval.history.append({"action": "defer", "by": cmd.who.name, "at": flow.stamp, "until": cmd.until,
                             "comment": cmd.comment})
    del approval.history[:-approvals.HISTORY_KEPT]
    flow.emit(EventType.DEPLOYMENT_DEFERRED, stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
              message=f"until {cmd.until}: {cmd.comment}".rstrip(": "))


def reassign(flow: Flow, cmd: Reassign) -> None:
    dep, approval = live_approval(flow, cmd.stage, cmd.attempt, cmd.kind)
    mine = [a for a in approval.waiting_for() if cmd.who.is_(a)]
    if not mine and not cmd.who.has(ADMIN):
        raise Forbidden(f"{cmd.who.name} has no open approval here to reassign")
    entry = mine[0] if mine else approval.waiting_for()[0]
    approvals.check_reassign(approval, cmd.to)
    approval.approvers[approval.approvers.index(entry)] = cmd.to
    approval.history.append({"action": "reassign", "by": cmd.who.name, "at": flow.stamp, "from": entry,
                             "to": cmd.to, "comment": cmd.comment})
    del approval.history[:-approvals.HISTORY_KEPT]
    flow.emit(EventType.APPROVAL_REASSIGNED, stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
              message=f"{entry} -> {cmd.to}: {cmd.comment}".rstrip(": "))

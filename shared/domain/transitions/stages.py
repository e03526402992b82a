"""How a release's stages are started and stopped: its automatic start, a person's deployment of a
stage (manual, redeploy, rollback, break-glass, not before a time), and abandoning the release."""

from __future__ import annotations

from shared.domain.access import Forbidden
from shared.domain.errors import Conflict, NotFound
from shared.domain.plan import AFTER_RELEASE
from shared.domain.transitions import interventions
from shared.domain.transitions.commands import Abandon, DeployStage
from shared.domain.transitions.flow import Flow
from shared.domain.upstream import not_passed
from shared.domain.vocabulary import (
    GATE_RUNNING,
    ApprovalStatus,
    EventType,
    GateStatus,
    Reason,
    ReleaseStatus,
    Status,
    StepStatus,
)


def start_release(flow: Flow) -> None:
    release = flow.release
    if release.status == ReleaseStatus.ABANDONED or any(s.deployments for s in release.stages.values()):
        return  # abandoned, or already started: a repeated start decides nothing
    for stage in flow.plan.stages:
        if stage.trigger == AFTER_RELEASE:
            flow.start_deployment(stage, reason=Reason.AUTOMATED, by="system")


def deploy_stage(flow: Flow, cmd: DeployStage) -> None:
    stage = flow.plan.stage(cmd.stage)
    if stage is None:
        raise NotFound(f"release {flow.release.id} has no stage '{cmd.stage}'")
    if flow.release.status == ReleaseStatus.ABANDONED:
        raise Conflict(f"release {flow.release.id} is abandoned")
    run = flow.release.stages[stage.name]
    if run.current is not None and run.current.status in (Status.IN_PROGRESS, Status.QUEUED):
        raise Conflict(f"stage '{stage.name}' is already {run.current.status} (attempt {run.current.attempt})")
    if cmd.break_glass and not cmd.admin:
        raise Forbidden(f"{cmd.by} may not break the glass: it needs the admin role")
    if cmd.override is not None and not cmd.admin:
        raise Forbidden(f"{cmd.by} may not override the stages a deployment requires: it needs the admin role")
    missing = not_passed(flow.release, stage)
    if missing and cmd.override is None:
        raise Conflict(f"release {flow.release.id} has not passed {', '.join(missing)}: stage '{stage.name}' "
                       f"is deployed by hand only after {', '.join(stage.after)} succeeded (an admin may override "
                       f"with a reason)")
    if cmd.groups is not None and cmd.groups != flow.release.groups:
        flow.release.groups = {name: dict(values) for name, values in cmd.groups.items()}
        flow.emit(EventType.VARIABLES_REFRESHED, stage=stage.name, by=cmd.by,
                  message=f"variable groups read again: {', '.join(sorted(cmd.groups)) or 'none'}")
    reason = cmd.reason or (Reason.REDEPLOY if run.deployments else Reason.MANUAL)
    if missing:
        flow.emit(EventType.UPSTREAM_OVERRIDDEN, stage=stage.name, attempt=len(run.deployments) + 1, by=cmd.by,
                  message=f"deployed before passing {', '.join(missing)}: {cmd.override}")
    flow.start_deployment(stage, reason=reason, by=cmd.by, break_glass=cmd.break_glass, not_before=cmd.not_before)


def abandon(flow: Flow, cmd: Abandon) -> None:
    release = flow.release
    if release.status == ReleaseStatus.ABANDONED:
        return
    release.status = ReleaseStatus.ABANDONED
    for run in release.stages.values():
        dep = run.current
        if dep is not None and dep.status == Status.QUEUED:
            queue = flow.lane(run.name).queued
            if release.id in queue:
                queue.remove(release.id)
            flow.finish_deployment(run.name, dep, Status.CANCELED, failure="release abandoned", cascade=False)
            continue
        if dep is not None and dep.status == Status.IN_PROGRESS:
            for step in dep.steps:
                if step.status == StepStatus.IN_PROGRESS:
                    interventions.cancel(step)
                    flow.stop_step(run.name, dep, step)
                if step.status in (StepStatus.PENDING, StepStatus.IN_PROGRESS):
                    step.status, step.finished_at = StepStatus.CANCELED, flow.stamp
            for approval in dep.approvals.values():
                if approval.status == ApprovalStatus.PENDING:
                    approval.status = ApprovalStatus.CANCELED
            for gate in dep.gates.values():
                if gate.status in GATE_RUNNING:
                    gate.status, gate.claim = GateStatus.CANCELED, None
            flow.finish_deployment(run.name, dep, Status.CANCELED, failure="release abandoned", cascade=False)
    flow.emit(EventType.RELEASE_ABANDONED, by=cmd.by, message=cmd.comment)

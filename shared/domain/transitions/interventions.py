"""Manual intervention: a step that pauses the deployment until a person resumes or rejects it
(Azure DevOps' Manual Intervention task: instructions, people to notify, a timeout whose default
outcome is reject, at most 60 days).

The step needs no engine and no queue message: it opens when the deployment reaches it (the
deployment's phase becomes `manualIntervention`, the assignees are mailed), and it ends by a decision
(`Intervene`) or by its timer. Its whole story stays on the step (`state["intervention"]`) and in the
release's events, like an approval's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain import variables
from shared.domain.access import ADMIN, RELEASE_MANAGER, Forbidden
from shared.domain.errors import Conflict, NotFound
from shared.domain.release import Deployment, StepRun
from shared.domain.transitions.commands import Intervene
from shared.domain.transitions.flow import Flow
from shared.domain.vocabulary import EventType, Phase, ReleaseStatus, Status, StepStatus

MANUAL_INTERVENTION = "manual-intervention"
DEFAULT_TIMEOUT_MINUTES = 24 * 60
MAX_TIMEOUT_MINUTES = 60 * 24 * 60
"""Azure DevOps rejects or resumes a pending intervention after its timeout or 60 days, whichever is earlier."""


def open_intervention(flow: Flow, stage: str, dep: Deployment, step: StepRun) -> None:
    """The deployment reached the step: record what the people are asked, mail them, arm the timeout."""
    config = flow.stage(stage).steps[step.index].config
    known = {**variables.shown(variables.custom(flow.release, stage)), **variables.predefined(flow.release, stage, dep),
             **variables.outputs(dep, step.index)}  # a secret is never written into instructions: ***
    try:
        instructions = variables.expand(str(config.get("instructions") or ""), known)
    except variables.UnknownVariable as exc:
        step.status, step.started_at, step.finished_at, step.message = (StepStatus.FAILED, flow.stamp, flow.stamp,
                                                                        str(exc))
        flow.emit(EventType.STEP_FAILED, stage=stage, attempt=dep.attempt, step=step.index, message=str(exc))
        flow.finish_deployment(stage, dep, Status.FAILED, failure=f"step '{step.name}' failed: {exc}")
        return
    minutes = min(int(config.get("timeoutMinutes") or DEFAULT_TIMEOUT_MINUTES), MAX_TIMEOUT_MINUTES)
    deadline = (flow.now + timedelta(minutes=minutes)).isoformat()
    assignees = list(config.get("assignees") or [])
    step.status, step.started_at = StepStatus.IN_PROGRESS, flow.stamp
    step.state = {"intervention": {"status": "pending", "instructions": instructions, "assignees": assignees,
                                   "deadline": deadline, "onTimeout": config.get("onTimeout", "reject")}}
    step.message = "waiting for " + (", ".join(assignees) if assignees else "a release manager")
    dep.phase = Phase.INTERVENTION
    flow.emit(EventType.INTERVENTION_PENDING, stage=stage, attempt=dep.attempt, step=step.index,
              message=f"{step.name}: waiting for {', '.join(assignees) or 'a release manager'}; "
                      f"{config.get('onTimeout', 'reject')}s at {deadline}")
    flow.arm_timer(stage, dep.attempt, deadline)


def pending(dep: Deployment) -> StepRun | None:
    """The deployment's step that waits for a person, if any."""
    return next((s for s in dep.steps if s.status == StepStatus.IN_PROGRESS
                 and (s.state.get("intervention") or {}).get("status") == "pending"), None)


def may_decide(intervention: dict[str, Any], who: Any) -> bool:
    """Its assignees (users or groups), or release managers when it names none; admins always."""
    assignees = intervention.get("assignees") or []
    return bool(who.has(ADMIN) or (any(who.is_(a) for a in assignees) if assignees else who.has(RELEASE_MANAGER)))


def intervene(flow: Flow, cmd: Intervene) -> StepRun | None:
    """Decide; the step when it resumed (the caller moves the deployment on from it)."""
    run = flow.release.stages.get(cmd.stage)
    if run is None:
        raise NotFound(f"release {flow.release.id} has no stage '{cmd.stage}'")
    if flow.release.status == ReleaseStatus.ABANDONED:
        raise Conflict(f"release {flow.release.id} is abandoned")
    dep = run.current
    if dep is None or dep.attempt != cmd.attempt or dep.status != Status.IN_PROGRESS:
        raise Conflict(f"attempt {cmd.attempt} of stage '{cmd.stage}' is not in progress")
    step = pending(dep)
    if step is None or step.index != cmd.step:
        raise Conflict(f"step {cmd.step} of stage '{cmd.stage}' does not wait for a manual intervention")
    intervention = step.state["intervention"]
    if not may_decide(intervention, cmd.who):
        raise Forbidden(f"{cmd.who.name} may not decide this manual intervention (it waits for "
                        f"{', '.join(intervention.get('assignees') or []) or 'a release manager'})")
    return _decide(flow, cmd.stage, dep, step, resume=cmd.resume, by=cmd.who.name, comment=cmd.comment)


def time_out(flow: Flow, stage: str, dep: Deployment) -> StepRun | None:
    """Its timer fired: past the deadline, the configured outcome (reject unless `onTimeout` is resume);
    the step when it resumed."""
    step = pending(dep)
    if step is None:
        return None
    intervention = step.state["intervention"]
    if flow.now < datetime.fromisoformat(intervention["deadline"]):
        return None
    return _decide(flow, stage, dep, step, resume=intervention.get("onTimeout") == "resume", by=None,
            comment=f"timed out at {intervention['deadline']}")


def _decide(flow: Flow, stage: str, dep: Deployment, step: StepRun, *, resume: bool, by: str | None,
            comment: str) -> StepRun | None:
    word = "resumed" if resume else "rejected"
    step.state = {**step.state, "intervention": {**step.state["intervention"], "status": word, "by": by,
                                                 "at": flow.stamp, "comment": comment}}
    step.status = StepStatus.SUCCEEDED if resume else StepStatus.FAILED
    step.finished_at = flow.stamp
    step.message = f"{word} by {by}" + (f": {comment}" if comment else "") if by else f"{word}: {comment}"
    dep.phase = Phase.STEPS
    flow.emit(EventType.INTERVENTION_RESUMED if resume else EventType.INTERVENTION_REJECTED, stage=stage,
              attempt=dep.attempt, step=step.index, by=by, message=step.message)
    if resume:
        return step
    for rest in dep.steps[step.index + 1:]:
        rest.status = StepStatus.SKIPPED
    flow.finish_deployment(stage, dep, Status.REJECTED, failure=f"manual intervention '{step.name}' {step.message}")
    return None


def cancel(step: StepRun) -> None:
    """The release was abandoned while the step waited."""
    if (step.state.get("intervention") or {}).get("status") == "pending":
        step.state = {**step.state, "intervention": {**step.state["intervention"], "status": "canceled"}}

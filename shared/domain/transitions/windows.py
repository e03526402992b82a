"""How time holds a deployment before its steps: the stage's deployment windows and freezes, and a
deferral (an approver's, or the `notBefore` of whoever asked for the deployment)."""

from __future__ import annotations

from datetime import datetime

from shared.domain.plan import StagePlan
from shared.domain.release import Deployment, deferred_until
from shared.domain.transitions.flow import Flow
from shared.domain.vocabulary import EventType, Phase, Reason
from shared.domain.windows import next_opening


def window(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    """Hold the deployment until its stage's next opening, unless an admin broke the glass for it
    (or it is a rollback and the stage lets rollbacks ignore windows)."""
    if not (stage.windows or stage.freezes) or dep.break_glass:
        return False
    if dep.reason == Reason.ROLLBACK and stage.rollback_ignores_windows:
        return False
    opening, why = next_opening(flow.now, list(stage.windows), list(stage.freezes))
    if opening <= flow.now:
        dep.opens_at = dep.waits_for = None
        return False
    if dep.phase != Phase.WINDOW or dep.opens_at != opening.isoformat():
        flow.emit(EventType.DEPLOYMENT_WAITING_FOR_WINDOW, stage=stage.name, attempt=dep.attempt,
                  message=f"{why}; opens {opening.isoformat()}")
    dep.phase, dep.opens_at, dep.waits_for = Phase.WINDOW, opening.isoformat(), why
    flow.arm_timer(stage.name, dep.attempt, opening.isoformat())
    return True


def deferral(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    until = deferred_until(dep)
    if until is None or flow.now >= datetime.fromisoformat(until):
        return False
    dep.phase = Phase.DEFERRED
    flow.arm_timer(stage.name, dep.attempt, until)
    return True


def window_timer(flow: Flow, stage: str, dep: Deployment) -> None:
    if dep.opens_at is None or flow.now >= datetime.fromisoformat(dep.opens_at):
        flow.advance(flow.stage(stage), dep)


def deferral_timer(flow: Flow, stage: str, dep: Deployment) -> None:
    until = deferred_until(dep)
    if until is None or flow.now >= datetime.fromisoformat(until):
        flow.emit(EventType.DEFERRAL_ENDED, stage=stage, attempt=dep.attempt, message=f"deferred until {until}")
        flow.advance(flow.stage(stage), dep)

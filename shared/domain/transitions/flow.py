"""A decision in the making, and how a deployment moves through its holds to its end.

A deployment starts (or queues in its stage's lane), then passes its holds in the order `HOLDS`
(`holds.py`) declares. Each hold is a check that passes once it is satisfied, so moving on after
one was released re-checks the holds of the same side from that side's first: a window or a
deferral is looked at again after a pre-deployment approval or gate, and a post-deployment hold
never looks at windows. When the last hold passes, the deployment ends and its downstream stages
may start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import variables
from shared.domain.lanes import Lane
from shared.domain.plan import ENGINE_STEPS, StagePlan
from shared.domain.release import Deployment, Release, StepRun
from shared.domain.transitions.results import ArmTimer, Decision, EnqueueStep, Event, LaneMessage, StopStep
from shared.domain.vocabulary import GOOD, EventType, Kind, Phase, Reason, ReleaseStatus, Status, StepStatus


@dataclass(frozen=True)
class Hold:
    """One place a deployment may wait, in the order `HOLDS` gives."""

    name: str
    kind: Kind
    """pre: before the steps (the steps are the last pre hold); post: after them."""
    phase: Phase
    """The deployment's phase while it waits here."""
    enter: Callable[[Flow, StagePlan, Deployment], bool]
    """Looks at the deployment: False when this hold has nothing (more) to wait for; True when the
    deployment now waits here (the hold set its phase and armed what will release it)."""


class LanesNeeded(Exception):
    """The decision looked at a stage's lane, which its writer did not read: read them and decide again."""


class Flow:
    """The release being decided on, `now`, the lanes read with it, and what was decided so far."""

    def __init__(self, release: Release, now: datetime, lanes: dict[str, Lane] | None, holds: Sequence[Hold]) -> None:
        """`lanes` None: not read (most steps of a stage end without starting or ending a deployment, so
        their writer saves the read); the decision raises LanesNeeded the moment it looks at one."""
        self.release = release
        self.now = now
        self.stamp = now.isoformat()
        self.plan = release.plan
        self._lanes = lanes
        self.holds = holds
        self.decision = Decision(release)

    @property
    def lanes(self) -> dict[str, Lane]:
        if self._lanes is None:
            raise LanesNeeded
        return self._lanes

    def emit(self, type: EventType, **fields: Any) -> None:
        self.decision.events.append(Event(type, self.stamp, **fields))

    def arm_timer(self, stage: str, attempt: int, due: str) -> None:
        self.decision.effects.append(ArmTimer(stage, attempt, due))

    def stage(self, name: str) -> StagePlan:
        found = self.plan.stage(name)
        assert found is not None, f"release {self.release.id} has no stage {name!r}"
        return found

    # -- a deployment from its start to its end

    def start_deployment(self, stage: StagePlan, *, reason: Reason, by: str, break_glass: str | None = None,
                         not_before: str | None = None) -> None:
        run = self.release.stages[stage.name]
        dep = Deployment(attempt=len(run.deployments) + 1, status=Status.IN_PROGRESS, reason=reason,
                         requested_by=by, queued_at=self.stamp, started_at=self.stamp,
                         steps=[StepRun(s.index, s.type, s.name) for s in stage.steps],
                         break_glass=break_glass, not_before=not_before,
                         variables=variables.shown(variables.custom(self.release, stage.name)))
        if dep.break_glass:
            self.emit(EventType.GLASS_BROKEN, stage=stage.name, attempt=dep.attempt, by=by, message=dep.break_glass)
        run.deployments.append(dep)
        run.status = Status.IN_PROGRESS
        if self.queue_if_full(stage, dep):
            return
        self.emit(EventType.DEPLOYMENT_STARTED, stage=stage.name, attempt=dep.attempt, by=by, message=reason)
        self.advance(stage, dep)

    def advance(self, stage: StagePlan, dep: Deployment, kind: Kind = Kind.PRE) -> None:
        """Pass the holds from the first of side `kind` on; stop at the first that holds, or end the
        deployment when none does."""
        first = next(i for i, hold in enumerate(self.holds) if hold.kind == kind)
        for hold in self.holds[first:]:
            if hold.enter(self, stage, dep):
                return
        partial = any(s.status == StepStatus.FAILED for s in dep.steps)
        self.finish_deployment(stage.name, dep, Status.PARTIALLY_SUCCEEDED if partial else Status.SUCCEEDED)

    def finish_deployment(self, stage: str, dep: Deployment, status: Status, *, failure: str | None = None,
                          cascade: bool = True) -> None:
        dep.status, dep.finished_at, dep.failure = status, self.stamp, failure
        self.release.stages[stage].status = status
        self.leave_lane(stage)
        self.emit(EventType.deployment_ended(status), stage=stage, attempt=dep.attempt, message=failure or "")
        if cascade and status in GOOD and self.release.status != ReleaseStatus.ABANDONED:
            self.fire_downstream(stage)

    def fire_downstream(self, upstream: str) -> None:
        """Start each stage waiting on `upstream` once all its upstream stages are good (the join)."""
        for stage in self.plan.downstream_of(upstream):
            if self.release.stages[stage.name].status != Status.NOT_STARTED:
                continue
            if all(self.upstream_ok(stage, up) for up in stage.after):
                self.start_deployment(stage, reason=Reason.AUTOMATED, by="system")

    def upstream_ok(self, stage: StagePlan, upstream: str) -> bool:
        status = self.release.stages[upstream].status
        return status == Status.SUCCEEDED or (status == Status.PARTIALLY_SUCCEEDED and stage.allow_partial)

    # -- step messages

    def start_step(self, stage: str, dep: Deployment, step: StepRun) -> None:
        step.status, step.started_at = StepStatus.IN_PROGRESS, self.stamp
        self.send_step(stage, dep, step, 0)

    def send_step(self, stage: str, dep: Deployment, step: StepRun, delay: float) -> None:
        """A new run of the step: its message, visible after `delay` seconds (older runs' are stale)."""
        step.run += 1
        step.claim = step.claimed_until = None  # a claim holds one run
        step.visible_at = (self.now + timedelta(seconds=delay)).isoformat()
        self.decision.effects.append(EnqueueStep(stage, dep.attempt, step.index, step.run, delay))

    def stop_step(self, stage: str, dep: Deployment, step: StepRun) -> None:
        """A step canceled while it ran: if it started something on another engine, have it stopped."""
        if step.type in ENGINE_STEPS:
            self.decision.effects.append(StopStep(stage, dep.attempt, step.index))

    def resend_step(self, stage: str, dep: Deployment, step: StepRun) -> None:
        """Another message for the same run (one was lost before anyone claimed it)."""
        step.visible_at = self.stamp
        self.decision.effects.append(EnqueueStep(stage, dep.attempt, step.index, step.run, 0))

    # -- the stage's lane (queue policy)

    def lane(self, stage: str) -> Lane:
        """The stage's lane, marked as changed by this decision."""
        lane = self.lanes.setdefault(stage, Lane())
        self.decision.lanes[stage] = lane
        return lane

    def queue_if_full(self, stage: StagePlan, dep: Deployment) -> bool:
        """Take a place in the stage's lane; True when the deployment must wait for one."""
        limit = stage.limit
        if not limit:
            return False
        lane = self.lane(stage.name)
        waits, skipped = lane.admit(self.release.id, limit, (stage.queue or {}).get("policy") == "latest")
        for older in skipped:
            self.decision.effects.append(LaneMessage(older, stage.name, grant=False))
        if not waits:
            return False
        dep.status, dep.phase, dep.started_at = Status.QUEUED, Phase.QUEUED, None
        self.release.stages[stage.name].status = Status.QUEUED
        self.emit(EventType.DEPLOYMENT_QUEUED, stage=stage.name, attempt=dep.attempt,
                  message=f"{len(lane.active)} deployment(s) running; at most {limit} at a time")
        return True

    def leave_lane(self, stage: str) -> None:
        lane = self.lanes.get(stage)
        if lane is None or self.release.id not in lane.active:
            return
        nxt = self.lane(stage).leave(self.release.id)
        if nxt is not None:
            self.decision.effects.append(LaneMessage(nxt, stage, grant=True))

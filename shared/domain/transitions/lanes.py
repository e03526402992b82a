"""How a stage's lane lets a queued deployment go: its turn came, or a newer release took its place."""

from __future__ import annotations

from shared.domain.transitions.commands import LaneGrant, LaneSkip
from shared.domain.transitions.flow import Flow
from shared.domain.vocabulary import EventType, Status


def grant(flow: Flow, cmd: LaneGrant) -> None:
    run = flow.release.stages.get(cmd.stage)
    stage = flow.plan.stage(cmd.stage)
    dep = run.current if run else None
    if run is None or stage is None or dep is None or dep.status != Status.QUEUED:
        lane = flow.lanes.get(cmd.stage)
        running = dep is not None and dep.status == Status.IN_PROGRESS  # granted already (a repeated turn)
        if lane is not None and flow.release.id in lane.active and not running:
            flow.leave_lane(cmd.stage)  # granted to one that left: pass it on
        return
    dep.status, dep.started_at = Status.IN_PROGRESS, flow.stamp
    run.status = Status.IN_PROGRESS
    flow.emit(EventType.DEPLOYMENT_STARTED, stage=cmd.stage, attempt=dep.attempt, by=dep.requested_by,
              message="its turn in the stage's queue")
    flow.advance(stage, dep)


def skip(flow: Flow, cmd: LaneSkip) -> None:
    run = flow.release.stages.get(cmd.stage)
    dep = run.current if run else None
    if dep is None or dep.status != Status.QUEUED:
        return
    flow.finish_deployment(cmd.stage, dep, Status.CANCELED, cascade=False,
                           failure=f"skipped: release {cmd.newer} is newer (the stage deploys the latest only)")

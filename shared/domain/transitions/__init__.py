"""The release state machine: given a release, a command and `now`, decide what happens.

`decide` never does I/O. It returns the new release, the events to append to its history and the
effects to carry out (messages to send, timers to arm). Each command has its rule in the module of
its concern: `stages` (start, deploy, abandon), `steps`, `approvals`, `gates`, `windows`, `lanes`;
`flow` moves a deployment through the holds that `holds.HOLDS` lists in order.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import assert_never

from shared.domain.lanes import Lane
from shared.domain.release import Release, StepRun
from shared.domain.transitions import approvals, gates, interventions, lanes, stages, steps, windows
from shared.domain.transitions.commands import (
    Abandon,
    CastVote,
    ClaimStep,
    Command,
    CompleteStep,
    Defer,
    DeferStep,
    DeployStage,
    FailStep,
    GateClaim,
    GateSample,
    IgnoreGate,
    Intervene,
    LaneGrant,
    LaneSkip,
    Reassign,
    RecordPreview,
    StartRelease,
    StepCallback,
    Sweep,
    Wake,
)
from shared.domain.transitions.flow import Flow, LanesNeeded
from shared.domain.transitions.holds import HOLDS
from shared.domain.transitions.results import ArmTimer, Decision, EnqueueGate, EnqueueStep, Event, LaneMessage
from shared.domain.vocabulary import Kind, Phase, Status

__all__ = ["decide", "reads_lanes", "LanesNeeded", "Abandon", "CastVote", "ClaimStep", "Command", "CompleteStep",
           "Defer", "DeferStep",
           "DeployStage", "FailStep", "GateClaim", "GateSample", "IgnoreGate", "Intervene", "LaneGrant", "LaneSkip",
           "Reassign", "RecordPreview", "StartRelease", "StepCallback", "Sweep", "Wake", "ArmTimer", "Decision",
           "EnqueueGate", "EnqueueStep", "Event", "LaneMessage"]


LANE_FREE = (ClaimStep, DeferStep, GateClaim, RecordPreview)
"""Commands that never start or end a deployment, so never read or change a lane: a claim, its
heartbeat and intent, a step looking again, a gate sample's claim. Their writer need not read lanes."""


def reads_lanes(command: Command) -> bool:
    return not isinstance(command, LANE_FREE)


def decide(release: Release, command: Command, now: datetime, lanes_read: dict[str, Lane] | None = None,
           *, lanes_unread: bool = False) -> Decision:
    """`lanes_read` are the current lanes of the definition's stages that limit parallel deployments.
    `lanes_unread`: the caller has not read them; raises LanesNeeded if the decision needs them."""
    read = None if lanes_unread else copy.deepcopy(lanes_read or {})
    flow = Flow(copy.deepcopy(release), now, read, HOLDS)
    match command:
        case StartRelease():
            stages.start_release(flow)
        case DeployStage():
            stages.deploy_stage(flow, command)
        case Abandon():
            stages.abandon(flow, command)
        case RecordPreview():
            steps.record_preview(flow, command)
        case StepCallback():
            steps.callback(flow, command)
        case Intervene():
            _resumed(flow, command.stage, interventions.intervene(flow, command))
        case ClaimStep():
            steps.claim_step(flow, command)
        case CompleteStep():
            steps.complete_step(flow, command)
        case DeferStep():
            steps.defer_step(flow, command)
        case FailStep():
            steps.fail_step(flow, command)
        case Sweep():
            _sweep(flow, command)
        case CastVote():
            approvals.cast_vote(flow, command)
        case Defer():
            approvals.defer(flow, command)
        case Reassign():
            approvals.reassign(flow, command)
        case GateClaim():
            gates.claim(flow, command)
        case GateSample():
            gates.sample(flow, command)
        case IgnoreGate():
            gates.ignore(flow, command)
        case Wake():
            _wake(flow, command.stage, command.attempt)
        case LaneGrant():
            lanes.grant(flow, command)
        case LaneSkip():
            lanes.skip(flow, command)
        case _:
            assert_never(command)
    return flow.decision


def _wake(flow: Flow, stage: str, attempt: int) -> None:
    """A timer fired: whatever the deployment waits for may be over (an approval's or gate's timeout,
    a window's opening, a deferral's end). Early or stale timers decide nothing."""
    run = flow.release.stages.get(stage)
    dep = run.current if run else None
    if dep is None or dep.attempt != attempt or dep.status != Status.IN_PROGRESS:
        return
    phase = Phase(dep.phase)
    match phase:
        case Phase.PRE_APPROVAL:
            approvals.time_out(flow, stage, dep, Kind.PRE)
        case Phase.POST_APPROVAL:
            approvals.time_out(flow, stage, dep, Kind.POST)
        case Phase.PRE_GATE:
            gates.deadline(flow, stage, dep, Kind.PRE)
        case Phase.POST_GATE:
            gates.deadline(flow, stage, dep, Kind.POST)
        case Phase.WINDOW:
            windows.window_timer(flow, stage, dep)
        case Phase.DEFERRED:
            windows.deferral_timer(flow, stage, dep)
        case Phase.INTERVENTION:
            _resumed(flow, stage, interventions.time_out(flow, stage, dep))
        case Phase.STEPS | Phase.QUEUED:
            pass  # steps have their own messages; a queued deployment waits for its lane
        case _:
            assert_never(phase)


def _resumed(flow: Flow, stage: str, step: StepRun | None) -> None:
    """A manual intervention resumed: the deployment goes on after its step."""
    dep = flow.release.stages[stage].current
    if step is not None and dep is not None:
        steps.after_step(flow, stage, dep, step)


def _sweep(flow: Flow, cmd: Sweep) -> None:
    for name, run in flow.release.stages.items():
        dep = run.current
        if dep is not None and dep.status == Status.QUEUED:
            lane = flow.lanes.get(name)
            if lane is not None and flow.release.id in lane.active:
                lanes.grant(flow, LaneGrant(name))  # its turn came, and the message saying so was lost
            continue
        if dep is None or dep.status != Status.IN_PROGRESS:
            continue
        if dep.phase in (Phase.PRE_GATE, Phase.POST_GATE):
            gates.resend_lost_sample(flow, name, dep, Kind.PRE if dep.phase == Phase.PRE_GATE else Kind.POST,
                                     cmd.lease_seconds)
        if dep.phase != Phase.STEPS:
            _wake(flow, name, dep.attempt)  # a lost timer: approvals time out, windows open, deferrals end
        else:
            steps.redeliver_unanswered(flow, name, dep, cmd)

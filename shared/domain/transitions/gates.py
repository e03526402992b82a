"""How gates hold a deployment: started where the stage's order puts them, sampled by delayed
messages, and on their outcome the deployment goes on, is rejected, fails, or swaps back.

Where a gate sits: a pre-deployment gate after the pre-deployment approvals (or before them with
`"order": "beforeApprovals"`) and after the window and deferral, right before the steps; a
post-deployment gate after the steps and before the post-deployment approvals (or after them with
`"order": "afterApprovals"`). A failed pre-deployment gate rejects the deployment (a business
decision); one that errored (its signals could not be read) fails it. A failed or errored
post-deployment gate swaps back when the deployment swapped, and fails it either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain import gates
from shared.domain.access import ADMIN, Forbidden
from shared.domain.errors import Conflict
from shared.domain.plan import StagePlan
from shared.domain.release import Deployment, Release
from shared.domain.transitions.commands import GateClaim, GateSample, IgnoreGate
from shared.domain.transitions.flow import Flow
from shared.domain.transitions.results import EnqueueGate
from shared.domain.transitions.steps import may_claim, swap_back_or_fail
from shared.domain.vocabulary import GATE_PASSED, GATE_RUNNING, EventType, GateStatus, Kind, Phase, Status

CLAIM_SECONDS = 60
"""How long one evaluation holds a sample before another may take it (a crashed handler)."""
BEFORE_APPROVALS, AFTER_APPROVALS = "beforeApprovals", "afterApprovals"


def gate_config(stage: StagePlan | None, kind: Kind) -> dict[str, Any] | None:
    if stage is None:
        return None
    return stage.pre_gates if kind == Kind.PRE else stage.post_gates


def order(stage: StagePlan | None, kind: Kind) -> str:
    """Whether the stage's `kind` gate runs before or after its `kind` approvals. Either side may say
    it (the gate's `order`, or the approvals' `beforeGates`/`afterGates`, as Azure DevOps' approval
    options do); a definition where they disagree is refused when it is saved."""
    said = (gate_config(stage, kind) or {}).get("order")
    if said:
        return str(said)
    approvals = (stage.pre_approvals if kind == Kind.PRE else stage.post_approvals) if stage else None
    placed = (approvals or {}).get("order")
    if placed:
        return BEFORE_APPROVALS if placed == "afterGates" else AFTER_APPROVALS
    return AFTER_APPROVALS if kind == Kind.PRE else BEFORE_APPROVALS


def live_gate(release: Release, stage: str, attempt: int, kind: Kind) -> tuple[Deployment, gates.GateRun] | None:
    """The `kind` gate of the stage's current attempt `attempt`, if it is running (waiting or sampling)."""
    run = release.stages.get(stage)
    dep = run.current if run else None
    if dep is None or dep.attempt != attempt or dep.status != Status.IN_PROGRESS or dep.phase != Phase.gate(kind):
        return None
    gate = dep.gates.get(kind)
    if gate is None or gate.status not in GATE_RUNNING:
        return None
    return dep, gate


def hold(kind: Kind, where: str) -> Callable[[Flow, StagePlan, Deployment], bool]:
    """The hold of the `kind` gate when the stage's order puts it `where` (before or after the approvals)."""
    def enter(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
        config = gate_config(stage, kind)
        if not config or order(stage, kind) != where:
            return False
        gate = dep.gates.get(kind)
        if gate is not None and gate.status in GATE_PASSED:
            return False
        if gate is None or gate.status not in GATE_RUNNING:
            start(flow, stage.name, dep, kind, config)
        return True

    enter.__name__ = f"{kind}_gate_{where}"
    return enter


def start(flow: Flow, stage: str, dep: Deployment, kind: Kind, config: dict[str, Any]) -> None:
    gate = gates.start(kind, config, flow.now)
    dep.gates[kind] = gate
    dep.phase = Phase.gate(kind)
    names = ", ".join(s["name"] for s in config.get("signals", []))
    flow.emit(EventType.GATE_STARTED, stage=stage, attempt=dep.attempt,
              message=f"{kind}: {names}; first sample {gate.evaluate_from}, times out {gate.deadline}")
    delay = (datetime.fromisoformat(gate.evaluate_from) - flow.now).total_seconds()
    # No timer at the timeout: the samples' own chain ends at it (the last one is taken at the deadline, and
    # one taken after it fails the gate), and the sweeper sends again a sample whose message was lost and
    # fails a gate past its timeout (`deadline`): a timer message only duplicated both.
    flow.decision.effects.append(EnqueueGate(stage, dep.attempt, kind, gate.next_seq, max(0.0, delay),
                                             _claim_ahead(gate)))


def claim(flow: Flow, cmd: GateClaim) -> None:
    live = live_gate(flow.release, cmd.stage, cmd.attempt, cmd.kind)
    if live is None or live[1].next_seq != cmd.seq:
        return  # stale: a duplicate, or a sample already taken
    gate = live[1]
    if not may_claim(gate.claim, gate.claimed_until, cmd.token, flow.now):
        return
    gate.claim, gate.claimed_until = cmd.token, (flow.now + timedelta(seconds=CLAIM_SECONDS)).isoformat()
    gate.status = GateStatus.EVALUATING
    flow.decision.touched = True


def _claim_ahead(gate: gates.GateRun) -> str:
    """Claim the next sample for the message that asks for it, in the write that sends it: its handler takes
    the sample without a claim of its own (one write a sample fewer). The token names that message; a copy
    of it (delivered again after a crash) holds it too, as a step's message does. A message that never comes
    leaves a claim that runs out a claim's length after the sample was due, and the sweeper asks again."""
    token = f"sample {gate.next_seq} due {gate.next_at}"
    gate.claim = token
    gate.claimed_until = (datetime.fromisoformat(gate.next_at) + timedelta(seconds=CLAIM_SECONDS)).isoformat()
    return token


def sample(flow: Flow, cmd: GateSample) -> None:
    live = live_gate(flow.release, cmd.stage, cmd.attempt, cmd.kind)
    if live is None or live[1].next_seq != cmd.seq or live[1].claim != cmd.token:
        return
    dep, gate = live
    config = gate_config(flow.plan.stage(cmd.stage), cmd.kind) or {}
    status, wait = gates.record(gate, config, list(cmd.readings), flow.now)
    taken = gate.samples[-1]
    flow.emit(EventType.GATE_SAMPLE, stage=cmd.stage, attempt=dep.attempt, step=gate.sample_count,
              message=f"{cmd.kind} sample {gate.sample_count}: {taken['verdict']}; " + "; ".join(
                  f"{s['name']}={s['value']} {s['verdict']} ({s['reason']})" for s in taken["signals"]))
    if status == GateStatus.EVALUATING:
        flow.decision.effects.append(EnqueueGate(cmd.stage, dep.attempt, cmd.kind, gate.next_seq, wait,
                                                 _claim_ahead(gate)))
    else:
        _over(flow, cmd.stage, dep, gate)


def ignore(flow: Flow, cmd: IgnoreGate) -> None:
    if not cmd.who.has(ADMIN):
        raise Forbidden(f"{cmd.who.name} may not ignore gates: it needs the admin role")
    run = flow.release.stages.get(cmd.stage)
    dep = run.current if run else None
    gate = dep.gates.get(cmd.kind) if dep else None
    if dep is None or gate is None or dep.phase != Phase.gate(cmd.kind) or gate.status not in GATE_RUNNING:
        raise Conflict(f"stage '{cmd.stage}' has no {cmd.kind}-deployment gate running")
    gate.status, gate.reason, gate.ignored_by = GateStatus.IGNORED, cmd.comment, cmd.who.name
    gate.claim = gate.claimed_until = None
    flow.emit(EventType.GATE_IGNORED, stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
              message=f"{cmd.kind}: {cmd.comment}")
    _over(flow, cmd.stage, dep, gate)


def deadline(flow: Flow, stage: str, dep: Deployment, kind: Kind) -> None:
    """A gate past its timeout (the sweeper looks, or a timer of another wait fired): the backstop when its
    sample messages were lost."""
    gate = dep.gates.get(kind)
    if gate is not None and gates.timed_out(gate, flow.now):
        gate.status = GateStatus.FAILED
        gate.reason = f"timed out at {gate.deadline} with {gate.sample_count} samples"
        gate.claim = gate.claimed_until = None
        _over(flow, stage, dep, gate)


def resend_lost_sample(flow: Flow, stage: str, dep: Deployment, kind: Kind, lease_seconds: float) -> None:
    """The sweeper's part: a sample whose evaluation died (its claim ran out) or whose message was lost
    (due two leases ago, nobody claimed it) is asked for again; a copy of a live one finds its seq or
    its claim taken."""
    gate = dep.gates.get(kind)
    if gate is None or gate.status not in GATE_RUNNING or not gate.next_at:
        return
    if gate.claim is not None:
        if gate.claimed_until is not None and flow.now < datetime.fromisoformat(gate.claimed_until):
            return
    elif flow.now < datetime.fromisoformat(gate.next_at) + timedelta(seconds=2 * lease_seconds):
        return
    gate.claim = gate.claimed_until = None
    gate.next_at = flow.stamp
    flow.decision.effects.append(EnqueueGate(stage, dep.attempt, kind, gate.next_seq, 0))


def _over(flow: Flow, stage: str, dep: Deployment, gate: gates.GateRun) -> None:
    kind = Kind(gate.kind)
    if gate.status in GATE_PASSED:
        if gate.status == GateStatus.SUCCEEDED:
            flow.emit(EventType.GATE_SUCCEEDED, stage=stage, attempt=dep.attempt, message=f"{kind}: {gate.reason}")
        flow.advance(flow.stage(stage), dep, kind)
        return
    errored = gate.status == GateStatus.ERRORED
    why = f"{kind}-deployment gate {'errored' if errored else 'failed'}: {gate.reason}"
    flow.emit(EventType.GATE_ERRORED if errored else EventType.GATE_FAILED, stage=stage, attempt=dep.attempt,
              message=why)
    if kind == Kind.PRE:
        flow.finish_deployment(stage, dep, Status.FAILED if errored else Status.REJECTED, failure=why)
    else:
        swap_back_or_fail(flow, stage, dep, why)

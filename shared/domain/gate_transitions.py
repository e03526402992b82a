"""How gates move a deployment: started where the stage's order puts them, sampled by delayed
messages, and on their outcome the deployment goes on, is rejected, or swaps back.

Where a gate sits: a pre-deployment gate after the pre-deployment approvals (or before them with
`"order": "beforeApprovals"`) and after the window and deferral, right before the steps; a
post-deployment gate after the steps and before the post-deployment approvals (or after them with
`"order": "afterApprovals"`). A failed pre-deployment gate rejects the deployment; a failed
post-deployment gate swaps back when the deployment swapped, and fails it either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import gates
from shared.domain.access import ADMIN, Forbidden, Principal
from shared.domain.errors import Conflict
from shared.domain.plan import SWAP_TYPES, StagePlan
from shared.domain.release import FAILED, IN_PROGRESS, REJECTED, SUCCEEDED, Deployment, StepRun

CLAIM_SECONDS = 120
"""How long one evaluation holds a sample before another may take it (a crashed handler)."""


@dataclass(frozen=True)
class GateClaim:
    """An evaluation takes sample `seq` of a gate before calling the providers (once per sample)."""

    stage: str
    attempt: int
    kind: str
    seq: int
    token: str


@dataclass(frozen=True)
class GateSample:
    """What the providers answered for the sample the evaluation holds."""

    stage: str
    attempt: int
    kind: str
    seq: int
    token: str
    readings: tuple[gates.Reading, ...]


@dataclass(frozen=True)
class IgnoreGate:
    """An admin lets the deployment past a gate, with a comment (audited)."""

    stage: str
    kind: str
    who: Principal
    comment: str


@dataclass(frozen=True)
class EnqueueGate:
    """Send the message that takes sample `seq`, visible after `delay_seconds`."""

    stage: str
    attempt: int
    kind: str
    seq: int
    delay_seconds: float = 0.0


def gate_config(stage: StagePlan | None, kind: str) -> dict[str, Any] | None:
    if stage is None:
        return None
    return stage.pre_gates if kind == "pre" else stage.post_gates


def order(config: dict[str, Any] | None, kind: str) -> str:
    default = "afterApprovals" if kind == "pre" else "beforeApprovals"
    return (config or {}).get("order") or default


def live_gate(release: Any, stage: str, attempt: int, kind: str) -> tuple[Deployment, gates.GateRun] | None:
    """The `kind` gate of the stage's current attempt `attempt`, if it is running (waiting or sampling)."""
    run = release.stages.get(stage)
    dep = run.current if run else None
    if dep is None or dep.attempt != attempt or dep.status != IN_PROGRESS or dep.phase != f"{kind}Gate":
        return None
    gate = dep.gates.get(kind)
    if gate is None or gate.status not in (gates.WAITING, gates.EVALUATING):
        return None
    return dep, gate


def may_claim(holder: str | None, until: str | None, token: str, now: datetime) -> bool:
    """A claim is free, expired, or already this token's."""
    return holder is None or holder == token or until is None or datetime.fromisoformat(until) <= now


class GateMoves:
    """The gate part of the decider (mixed into `transitions._Decider`)."""

    # the decider's state; its methods emit, timer, proceed, begin_steps, steps_done, start_step and
    # finish_deployment are used here too
    now: datetime
    stamp: str
    decision: Any
    plan: Any
    release: Any

    def gate_pending(self, stage: StagePlan, dep: Deployment, kind: str, where: str) -> bool:
        """Start the `kind` gate if it belongs at `where` and has not passed; True when it now runs."""
        config = gate_config(stage, kind)
        if not config or order(config, kind) != where:
            return False
        gate = dep.gates.get(kind)
        if gate is not None and gate.status in gates.DONE:
            return False
        if gate is None or gate.status not in (gates.WAITING, gates.EVALUATING):
            self.start_gate(stage.name, dep, kind, config)
        return True

    def start_gate(self, stage: str, dep: Deployment, kind: str, config: dict[str, Any]) -> None:
        gate = gates.start(kind, config, self.now)
        dep.gates[kind] = gate
        dep.phase = f"{kind}Gate"
        names = ", ".join(s["name"] for s in config.get("signals", []))
        self.emit("gateStarted", stage=stage, attempt=dep.attempt,
                  message=f"{kind}: {names}; first sample {gate.evaluate_from}, times out {gate.deadline}")
        delay = (datetime.fromisoformat(gate.evaluate_from) - self.now).total_seconds()
        self.decision.effects.append(EnqueueGate(stage, dep.attempt, kind, gate.next_seq, max(0.0, delay)))
        self.decision.effects.append(self.timer(stage, dep.attempt, gate.deadline))

    def gate_claim(self, cmd: GateClaim) -> None:
        live = live_gate(self.release, cmd.stage, cmd.attempt, cmd.kind)
        if live is None or live[1].next_seq != cmd.seq:
            return  # stale: a duplicate, or a sample already taken
        dep, gate = live
        if not may_claim(gate.claim, gate.claimed_until, cmd.token, self.now):
            return
        gate.claim, gate.claimed_until = cmd.token, (self.now + timedelta(seconds=CLAIM_SECONDS)).isoformat()
        gate.status = gates.EVALUATING
        self.decision.touched = True

    def gate_sample(self, cmd: GateSample) -> None:
        live = live_gate(self.release, cmd.stage, cmd.attempt, cmd.kind)
        if live is None or live[1].next_seq != cmd.seq or live[1].claim != cmd.token:
            return
        dep, gate = live
        config = gate_config(self.plan.stage(cmd.stage), cmd.kind) or {}
        status, wait = gates.record(gate, config, list(cmd.readings), self.now)
        sample = gate.samples[-1]
        self.emit("gateSample", stage=cmd.stage, attempt=dep.attempt, step=gate.sample_count,
                  message=f"{cmd.kind} sample {gate.sample_count}: {sample['verdict']}; " + "; ".join(
                      f"{s['name']}={s['value']} {s['verdict']} ({s['reason']})" for s in sample["signals"]))
        if status == gates.EVALUATING:
            self.decision.effects.append(EnqueueGate(cmd.stage, dep.attempt, cmd.kind, gate.next_seq, wait))
        else:
            self.gate_over(cmd.stage, dep, gate)

    def ignore_gate(self, cmd: IgnoreGate) -> None:
        if not cmd.who.has(ADMIN):
            raise Forbidden(f"{cmd.who.name} may not ignore gates: it needs the admin role")
        run = self.release.stages.get(cmd.stage)
        dep = run.current if run else None
        gate = dep.gates.get(cmd.kind) if dep else None
        if dep is None or gate is None or dep.phase != f"{cmd.kind}Gate" or \
                gate.status not in (gates.WAITING, gates.EVALUATING):
            raise Conflict(f"stage '{cmd.stage}' has no {cmd.kind}-deployment gate running")
        gate.status, gate.reason, gate.ignored_by = gates.IGNORED, cmd.comment, cmd.who.name
        gate.claim = gate.claimed_until = None
        self.emit("gateIgnored", stage=cmd.stage, attempt=dep.attempt, by=cmd.who.name,
                  message=f"{cmd.kind}: {cmd.comment}")
        self.gate_over(cmd.stage, dep, gate)

    def gate_deadline(self, stage: str, dep: Deployment) -> None:
        """The timer at a gate's timeout: the backstop when its sample messages were lost."""
        kind = dep.phase.removesuffix("Gate")
        gate = dep.gates.get(kind)
        if gate is not None and gates.timed_out(gate, self.now):
            gate.status, gate.reason = gates.FAILED, f"timed out at {gate.deadline} with {gate.sample_count} samples"
            gate.claim = gate.claimed_until = None
            self.gate_over(stage, dep, gate)

    def gate_over(self, stage: str, dep: Deployment, gate: gates.GateRun) -> None:
        plan = self.plan.stage(stage)
        assert plan is not None
        if gate.status in gates.DONE:
            if gate.status == gates.SUCCEEDED:
                self.emit("gateSucceeded", stage=stage, attempt=dep.attempt, message=f"{gate.kind}: {gate.reason}")
            if gate.kind == "pre":
                if order(plan.pre_gates, "pre") == "beforeApprovals":
                    self.proceed(plan, dep)
                else:
                    self.begin_steps(stage, dep)
            else:
                self.steps_done(stage, dep)
            return
        why = f"{gate.kind}-deployment gate failed: {gate.reason}"
        self.emit("gateFailed", stage=stage, attempt=dep.attempt, message=why)
        if gate.kind == "pre":
            self.finish_deployment(stage, dep, REJECTED, failure=why)
            return
        swapped = [s for s in dep.steps if s.type in SWAP_TYPES and s.status == SUCCEEDED]
        if swapped:
            dep.failure = why
            back = StepRun(len(dep.steps), "swap-back", "Swap back", state={"swapStep": swapped[-1].index})
            dep.steps.append(back)
            dep.phase = "steps"
            self.emit("swapBackStarted", stage=stage, attempt=dep.attempt, step=back.index, message=why)
            self.start_step(stage, dep, back)
            return
        self.finish_deployment(stage, dep, FAILED, failure=why)

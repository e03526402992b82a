"""How a deployment runs its steps: one message per step run, in order; a failed step ends it
(unless it may fail), a failed post-swap check or post-deployment gate swaps back; the sweeper
redelivers messages nobody answered.

When Slipway swaps back: a post-swap check (an `http-check` with `postSwap`) failed after a swap
step of the same deployment succeeded, or its post-deployment gate failed or errored after one
did (`swap_back_or_fail`, the one place that decides it). The swap-back is a step the engine adds
to the deployment; the deployment fails whatever it brings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.domain.errors import Conflict
from shared.domain.plan import SWAP_TYPES, StagePlan
from shared.domain.release import Deployment, StepRun
from shared.domain.transitions import interventions
from shared.domain.transitions.commands import (
    ClaimStep,
    CompleteStep,
    DeferStep,
    FailStep,
    RecordPreview,
    StepCallback,
    Sweep,
)
from shared.domain.transitions.flow import Flow
from shared.domain.vocabulary import FINISHED, EventType, Kind, Phase, Status, StepStatus

SWAP_BACK = "swap-back"
"""The type of the step the engine adds itself to undo a swap."""


def run_steps(flow: Flow, stage: StagePlan, dep: Deployment) -> bool:
    """The steps' hold: start the first step; it holds until the last one ends."""
    if not dep.steps:
        return False
    dep.phase = Phase.STEPS
    start(flow, stage.name, dep, dep.steps[0])
    return True


def start(flow: Flow, stage: str, dep: Deployment, step: StepRun) -> None:
    """Start a step: a message for its handler, or, for a manual intervention, a wait for people."""
    if step.type == interventions.MANUAL_INTERVENTION:
        interventions.open_intervention(flow, stage, dep, step)
    else:
        flow.start_step(stage, dep, step)


def current_step(flow: Flow, stage: str, attempt: int, index: int,
                 run: int | None) -> tuple[Deployment, StepRun] | None:
    """The step a message names, if that message is still the live one; None for stale messages."""
    stage_run = flow.release.stages.get(stage)
    dep = stage_run.current if stage_run else None
    if dep is None or dep.attempt != attempt or dep.status != Status.IN_PROGRESS:
        return None
    step = dep.step(index)
    if step is None or step.status != StepStatus.IN_PROGRESS or (run is not None and step.run != run):
        return None
    return dep, step


def may_claim(holder: str | None, until: str | None, token: str, now: datetime) -> bool:
    """A claim (of a step run or a gate sample) is free, expired, or already this token's."""
    return holder is None or holder == token or until is None or datetime.fromisoformat(until) <= now


def claim_step(flow: Flow, cmd: ClaimStep) -> None:
    found = current_step(flow, cmd.stage, cmd.attempt, cmd.step, cmd.run)
    if found is None:
        return
    step = found[1]
    if not may_claim(step.claim, step.claimed_until, cmd.token, flow.now):
        return
    step.claim = cmd.token
    step.claimed_until = (flow.now + timedelta(seconds=cmd.lease_seconds)).isoformat()
    if cmd.intent is not None:
        step.state = {**step.state, "intent": dict(cmd.intent)}
    flow.decision.touched = True


def complete_step(flow: Flow, cmd: CompleteStep) -> None:
    found = current_step(flow, cmd.stage, cmd.attempt, cmd.step, cmd.run)
    if found is None:
        return
    dep, step = found
    step.status = StepStatus.SUCCEEDED if cmd.succeeded else StepStatus.FAILED
    step.finished_at, step.message = flow.stamp, cmd.message
    if cmd.state:
        step.state = dict(cmd.state)
    flow.emit(EventType.STEP_SUCCEEDED if cmd.succeeded else EventType.STEP_FAILED, stage=cmd.stage,
              attempt=dep.attempt, step=step.index, message=cmd.message)
    for slot in cmd.slots:
        by = "Slipway (automatic swap-back)" if step.type == SWAP_BACK else dep.requested_by
        record = {**slot, "stage": cmd.stage, "attempt": dep.attempt, "by": by, "at": flow.stamp}
        flow.decision.slots.append(record)
        flow.emit(EventType.SLOT_CHANGED, stage=cmd.stage, attempt=dep.attempt, step=step.index, by=by,
                  message=f"{slot['slot'].rsplit('/', 1)[-1]} now runs release {slot.get('releaseId')} "
                          f"({slot.get('version')}) after {slot.get('how')}")
    after_step(flow, cmd.stage, dep, step)


def callback(flow: Flow, cmd: StepCallback) -> None:
    """The result a called service posted: accepted once, for the step run that is waiting for it;
    anything else (a step that finished, timed out, or waits with another URL) is refused."""
    found = current_step(flow, cmd.stage, cmd.attempt, cmd.step, None)
    state = found[1].state if found else {}
    # Every run of the step issued its own URL (a run that died after calling left its URL in its intent):
    # a callback to any of them is the one the step waits for, accepted once.
    issued = {*state.get("callbacks", ()), *(state.get("intent") or {}).get("callbacks", ())}
    if found is None or cmd.token_hash not in issued or state.get("callbackReceived"):
        raise Conflict("the step no longer waits for this callback")
    dep, step = found
    step.state = {**step.state, "callbackReceived": flow.stamp,
                  **({"outputs": dict(cmd.outputs)} if cmd.outputs else {})}
    complete_step(flow, CompleteStep(cmd.stage, cmd.attempt, cmd.step, step.run, cmd.succeeded,
                                     f"callback: {cmd.message}", (), step.state))


def record_preview(flow: Flow, cmd: RecordPreview) -> None:
    """Keep the first what-if of a step that has not run yet (a repeated or late one decides nothing, nor one
    that comes after its deployment finished: a finished deployment never changes)."""
    dep = flow.release.find_deployment(cmd.stage, cmd.attempt)
    step = dep.step(cmd.step) if dep else None
    if dep is None or step is None or dep.status in FINISHED or str(cmd.step) in dep.previews \
            or step.status != StepStatus.PENDING:
        return
    dep.previews[str(cmd.step)] = ({"error": cmd.error, "at": flow.stamp} if cmd.error else
                                   {"changes": list(cmd.changes), "at": flow.stamp})
    flow.decision.touched = True


def defer_step(flow: Flow, cmd: DeferStep) -> None:
    found = current_step(flow, cmd.stage, cmd.attempt, cmd.step, cmd.run)
    if found is None:
        return
    dep, step = found
    step.state = dict(cmd.state)
    step.message = cmd.message
    flow.send_step(cmd.stage, dep, step, cmd.delay_seconds)
    flow.emit(EventType.STEP_DEFERRED, stage=cmd.stage, attempt=dep.attempt, step=step.index, message=cmd.message)


def fail_step(flow: Flow, cmd: FailStep) -> None:
    found = current_step(flow, cmd.stage, cmd.attempt, cmd.step, None)
    if found is None:
        return
    dep, step = found
    step.status, step.finished_at, step.message = StepStatus.FAILED, flow.stamp, cmd.reason
    flow.emit(EventType.STEP_FAILED, stage=cmd.stage, attempt=dep.attempt, step=step.index, message=cmd.reason)
    flow.finish_deployment(cmd.stage, dep, Status.FAILED, failure=f"step '{step.name}' failed: {cmd.reason}")


def redeliver_unanswered(flow: Flow, stage: str, dep: Deployment, cmd: Sweep) -> None:
    """Send a step again when nobody is running it: its claim ran out (the heartbeat of the host that
    claimed it stopped: a new run, so that the dead host's late answer is stale; after too many, the
    step fails), or its message was never claimed within twice the lease (lost before anyone received
    it: the same run again, so that whichever copy is received first runs it and the other finds it
    taken; a long queue only gets one more copy per period, and it does not count as a failure)."""
    lease = timedelta(seconds=cmd.lease_seconds)
    for step in dep.steps:
        if step.status != StepStatus.IN_PROGRESS or step.visible_at is None:
            continue
        if step.claim is not None:
            if step.claimed_until is None or flow.now < datetime.fromisoformat(step.claimed_until):
                continue
            if step.redeliveries >= cmd.max_redeliveries:
                fail_step(flow, FailStep(stage, dep.attempt, step.index,
                                         f"its host stopped answering {step.redeliveries + 1} times"))
                continue
            step.redeliveries += 1
            why = f"its host stopped answering (claim ran out at {step.claimed_until})"
            flow.send_step(stage, dep, step, 0)
        elif flow.now >= datetime.fromisoformat(step.visible_at) + 2 * lease:
            why = f"nobody took its message, visible since {step.visible_at}"
            flow.resend_step(stage, dep, step)
        else:
            continue
        flow.emit(EventType.STEP_REDELIVERED, stage=stage, attempt=dep.attempt, step=step.index, message=why)


def after_step(flow: Flow, stage: str, dep: Deployment, step: StepRun) -> None:
    plan = flow.stage(stage)
    if step.type == SWAP_BACK:
        outcome = "swapped back automatically" if step.status == StepStatus.SUCCEEDED else "swap-back failed"
        flow.finish_deployment(stage, dep, Status.FAILED, failure=f"{dep.failure}; {outcome}: {step.message}")
        return
    config = plan.steps[step.index].config
    if step.status == StepStatus.FAILED and config.get("postSwap"):
        if swap_back_or_fail(flow, stage, dep, f"post-swap check '{step.name}' failed: {step.message}",
                             fail=False):
            for rest in dep.steps[step.index + 1:-1]:
                rest.status = StepStatus.SKIPPED
            return
    if step.status == StepStatus.FAILED and not plan.steps[step.index].continue_on_error:
        for rest in dep.steps[step.index + 1:]:
            rest.status = StepStatus.SKIPPED
        flow.finish_deployment(stage, dep, Status.FAILED, failure=f"step '{step.name}' failed: {step.message}")
        return
    nxt = dep.step(step.index + 1)
    if nxt is not None:
        start(flow, stage, dep, nxt)
        return
    flow.advance(plan, dep, Kind.POST)


def swap_back_or_fail(flow: Flow, stage: str, dep: Deployment, why: str, *, fail: bool = True) -> bool:
    """After a swap of this deployment succeeded, start the swap-back step (the deployment fails once it
    ends) and return True; otherwise fail the deployment with `why` (unless `fail` is False)."""
    swapped = [s for s in dep.steps if s.type in SWAP_TYPES and s.status == StepStatus.SUCCEEDED]
    if not swapped:
        if fail:
            flow.finish_deployment(stage, dep, Status.FAILED, failure=why)
        return False
    dep.failure = why
    back = StepRun(len(dep.steps), SWAP_BACK, "Swap back", state={"swapStep": swapped[-1].index})
    dep.steps.append(back)
    dep.phase = Phase.STEPS
    flow.emit(EventType.SWAP_BACK_STARTED, stage=stage, attempt=dep.attempt, step=back.index, message=why)
    flow.start_step(stage, dep, back)
    return True

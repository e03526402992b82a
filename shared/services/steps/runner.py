"""Run one step of a deployment from its queue message, and fail the ones whose message was poisoned.

A message carries ids only. The handler reads the release, drops the message if it is stale
(another run of the step, a finished or superseded deployment), runs the step, appends its log,
and applies the outcome through the state machine. A crash anywhere is redelivered by the queue
and converges: the step reconciles before acting, and the outcome applies only once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.config import STEPS_QUEUE
from shared.domain.keys import key_hash
from shared.domain.plan import SWAP_TYPES, StepPlan
from shared.domain.release import Release
from shared.domain.transitions.commands import ClaimStep, CompleteStep, DeferStep, FailStep
from shared.domain.transitions.steps import SWAP_BACK
from shared.domain.vocabulary import Status, StepStatus
from shared.messages import RunStep, decode
from shared.ports import TargetError
from shared.services.apply import apply
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext
from shared.services.steps.kinds import KINDS

logger = logging.getLogger(__name__)
ACTS = (*SWAP_TYPES, SWAP_BACK, "deploy-package", "restart", "set-app-settings")
"""Steps that write to a target: claimed by their run's message before they act, so a copy of the
message (sent twice, or redelivered while the first still runs) finds the run taken and does nothing.
A swap done twice undoes itself; a deployment or a restart done twice is a second outage."""
MAX_TARGET_RETRIES = 8


def log_name(release: Release, stage: str, attempt: int, step: int) -> str:
    """A readable blob name that is still one stage's own: stages named `A-B` and `A_B` (or any that
    differ only in characters a blob name leaves out) get different names by their digest."""
    readable = "".join(c if c.isascii() and c.isalnum() else "_" for c in stage)[:40]
    stage_key = f"{readable}-{key_hash(stage)[:10]}"
    return f"{release.definition_id}/{release.id}/{stage_key}/{attempt}/{step}.log"


def run(deps: Deps, msg: RunStep, delivery: str = "") -> str:
    """Run the step a message names. Returns what happened, for the invocation log.

    `delivery` is the queue message's id: the same message delivered again after a crash may take
    back the claim on a toggling step; another message for the same run (sent twice) may not."""
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release"
    release, _ = loaded
    ctx = _context(release, msg, deps)
    if ctx is None:
        return "stale"
    if ctx.step.type in ACTS:
        token = delivery or uuid.uuid4().hex
        held = apply(deps, msg.definition_id, msg.release_id,
                     ClaimStep(msg.stage, msg.attempt, msg.step, msg.run, token,
                               deps.settings.step_lease_seconds), read=loaded).release
        found = _context(held, msg, deps)
        if found is None or found.run.claim != token:
            return "taken by another delivery of the same message"
        loaded, ctx = None, found  # the claim changed the release: the completion reads it again
    ctx.debug(f"message: stage {msg.stage!r} attempt {msg.attempt} step {msg.step} run {msg.run}; "
              f"type {ctx.step.type}; settings {sorted(k for k in ctx.step.config if k not in ('type', 'name'))}")
    ctx.debug(f"target {ctx.target.resource_id}; artifacts "
              f"{[(a['alias'], a['version'], a.get('sha256')) for a in release.artifacts]}")
    outcome = _run(deps, ctx)
    ctx.debug(f"outcome {outcome.kind}: {outcome.message}; state {outcome.state}")
    lines = [f"--- run {msg.run} started {ctx.now.isoformat()} ---", *ctx.lines,
             f"=> {outcome.kind}: {outcome.message}"]
    deps.logs.append(log_name(release, msg.stage, msg.attempt, msg.step), lines, new=msg.run == 1)
    apply(deps, msg.definition_id, msg.release_id, _command(msg, outcome), read=loaded)
    return outcome.kind


def _context(release: Release, msg: RunStep, deps: Deps) -> StepContext | None:
    run = release.stages.get(msg.stage)
    dep = run.current if run else None
    if dep is None or dep.attempt != msg.attempt or dep.status != Status.IN_PROGRESS:
        return None
    step = dep.step(msg.step)
    if step is None or step.status != StepStatus.IN_PROGRESS or step.run != msg.run:
        return None
    stage = release.plan.stage(msg.stage)
    assert stage is not None
    if msg.step < len(stage.steps):
        plan = stage.steps[msg.step]
    else:  # a step the engine added (swap-back): it acts with the settings of the swap it undoes
        swapped = stage.steps[step.state["swapStep"]]
        plan = StepPlan(msg.step, step.type, step.name, False, swapped.config)
    return StepContext(release, stage, plan, step, deps.clock.now())


def _run(deps: Deps, ctx: StepContext) -> Outcome:
    try:
        return KINDS[ctx.step.type](deps, ctx)
    except TargetError as exc:
        tries = int(ctx.run.state.get("targetErrors", 0)) + 1
        ctx.log(f"target error ({'retryable' if exc.retryable else 'final'}): {exc}")
        if not exc.retryable or tries > MAX_TARGET_RETRIES:
            return Outcome.fail(str(exc) if not exc.retryable else f"{exc} (after {tries - 1} retries)")
        delay = exc.retry_after if exc.retry_after is not None else min(300.0, 2.0 ** tries)
        return Outcome.retry(f"{exc}; retrying in {delay:g}s", delay, {**ctx.run.state, "targetErrors": tries})


def _command(msg: RunStep, outcome: Outcome) -> Any:
    if outcome.kind == "retry":
        return DeferStep(msg.stage, msg.attempt, msg.step, msg.run, outcome.delay, outcome.message, outcome.state)
    return CompleteStep(msg.stage, msg.attempt, msg.step, msg.run, outcome.kind == "succeeded", outcome.message,
                        tuple(outcome.slots), outcome.state)


def handle_poisoned(deps: Deps, body: str, dequeue_count: int | None) -> str:
    """A step message failed every delivery: fail its deployment with the reason, once."""
    msg = decode(STEPS_QUEUE, body)
    if not isinstance(msg, RunStep):
        logger.error("dropping a poisoned message that is not ours: %.200s", body)
        return "malformed"
    reason = "the step's message failed every delivery and was moved to the poison queue"
    if deps.store.release(msg.definition_id, msg.release_id) is None:
        return "no such release"
    apply(deps, msg.definition_id, msg.release_id, FailStep(msg.stage, msg.attempt, msg.step, reason))
    return "failed"

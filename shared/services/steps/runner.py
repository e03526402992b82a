"""Run one step of a deployment from its queue message, and fail the ones whose message was poisoned.

A message carries ids only. The handler reads the release, drops the message if it is stale
(another run of the step, a finished or superseded deployment), runs the step, appends its log,
and applies the outcome through the state machine. A crash anywhere is redelivered by the queue
and converges: the step reconciles before acting, and the outcome applies only once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from typing import Any

from shared import plugins
from shared.config import STEPS_QUEUE
from shared.domain import variables
from shared.domain.plan import StepPlan
from shared.domain.release import Release
from shared.domain.transitions.commands import ClaimStep, CompleteStep, DeferStep, FailStep
from shared.domain.variables import UnknownVariable
from shared.domain.vocabulary import Status, StepStatus
from shared.messages import RunStep, StopStepRun, decode
from shared.plugins import NoAnswer, call
from shared.ports import TargetError
from shared.services import events
from shared.services.apply import apply, change
from shared.services.deps import Deps
from shared.services.step_logs import STOP, part
from shared.services.steps.context import ClaimLost, Outcome, StepContext
from shared.services.steps.kinds import handler, is_plugin, stopper

logger = logging.getLogger(__name__)
MAX_TARGET_RETRIES = 8


def run(deps: Deps, msg: RunStep, delivery: str = "") -> str:
    """Run the step a message names. Returns what happened, for the invocation log.

    Every run is claimed by its message before it acts, so a copy of the message (sent twice, or
    received by two hosts) finds the run taken and does nothing: a swap done twice undoes itself, a
    deployment or a restart done twice is a second outage. The claim is short and a heartbeat renews
    it while the step runs, so the sweeper knows within a lease that a host died. `delivery` is the
    queue message's id: the same message delivered again after a crash may take its claim back.

    A step whose outcome starts the next step at once (the stage's next, or the next stage's first)
    runs that one too, within `step_continue_seconds` of this invocation: no queue hop, no read of the
    release (the write answered its new ETag). A step that looks again within `step_wait_seconds` (and
    within that budget) waits here and runs again, claimed by the write that recorded its look, on the
    release as that write left it: nothing else may run the step meanwhile, and whatever else changed the
    release (another stage's step, an abandon) makes the result's write a 412 that reads again and decides
    on what is there; a step canceled meanwhile is stopped as one abandoned while it ran. A release this step's
    result lets into a stage's lane (this one left it) has its first step claimed by the write that lets it in,
    and runs it here too, beside this one, within the same budget (see `_go_on`)."""
    until = time.monotonic() + deps.settings.step_continue_seconds
    return _go_on(deps, (msg, delivery, None, 0.0), until, claimed=False)


Kept = tuple[RunStep, str, tuple[Release, str] | None, float]
"""A step run this invocation claimed to run itself: its message, the claim token, the release as the claiming
write left it (None: read it) and the seconds to wait first."""


def _go_on(deps: Deps, first: Kept, until: float, *, claimed: bool = True) -> str:
    """Run `first`, then each step its result starts and keeps, within the budget `until`. A release a result lets
    into a stage's lane (this one left it) runs its first step beside, on a thread of its own, claimed by the
    write that let it in: no step message, no read and no claim of its own; neither waits for the other, and
    the invocation ends when both have."""
    said, beside = "", []
    nxt: Kept | None = first
    while nxt is not None:
        msg, token, read, after = nxt
        if after > 0:
            deps.clock.sleep(after)
        what, nxt, handed = _run_once(deps, msg, token, read, _may_wait(deps, until), claimed=claimed)
        said += f"; then step {msg.stage!r}/{msg.step} run {msg.run}: {what}" if said else what
        claimed = True
        for kept in handed:
            said += f"; let release {kept[0].release_id} into {kept[0].stage!r}: its first step runs beside"
            beside.append(_beside(deps, kept, until))
    for thread in beside:
        thread.join()
    return said


def _beside(deps: Deps, kept: Kept, until: float) -> threading.Thread:
    msg = kept[0]

    def go() -> None:
        try:
            logger.info("release %s, let into %r: %s", msg.release_id, msg.stage, _go_on(deps, kept, until))
        except Exception:  # its claim runs out, and the sweeper sends the step again (as for a host that died)
            logger.exception("release %s, let into %r: its first step did not run here", msg.release_id, msg.stage)

    thread = threading.Thread(target=go, name=f"turn:{msg.release_id}/{msg.stage}", daemon=True)
    thread.start()
    return thread


def _may_wait(deps: Deps, until: float) -> float | None:
    """Seconds this invocation may still wait for a step it keeps (None: it keeps none, its budget is spent)."""
    left = until - time.monotonic()
    return None if left <= 0 else max(0.0, min(float(deps.settings.step_wait_seconds), left))


def _run_once(deps: Deps, msg: RunStep, delivery: str, read: tuple[Release, str] | None, go_on: float | None,
              claimed: bool = False) -> tuple[str, Kept | None, list[Kept]]:
    """One step run; and, unless `go_on` is None, the next one it started at once, or within `go_on` seconds,
    and claimed with its result (its message, claim token, the release as written and the seconds to wait), and
    the first steps of the releases its stage's lane let in, claimed by the turns' writes. `claimed`: this run
    is claimed for the token `delivery` already (the previous run's result claimed it); `read`, when given, is
    the release as that write left it."""
    loaded = read or deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release", None, []
    release, _ = loaded
    ours = _context(release, msg, deps)
    if ours is None:
        return "stale", None, []
    token = delivery or uuid.uuid4().hex
    claimed_read: tuple[StepContext, tuple[Release, str] | None] | None = (ours, loaded) \
        if claimed and ours.run.claim == token else _claim_read(deps, msg, token, read=loaded)
    if claimed_read is None:
        return "taken by another delivery of the same message", None, []
    ctx, held = claimed_read

    def keep_intent(intent: dict[str, Any]) -> bool:
        nonlocal held
        # written on the release as the claim left it (a heartbeat's write since makes it a 412, read again)
        kept = _claim_read(deps, msg, token, intent=variables.mask(intent, ctx.secrets), read=held)
        held = kept[1] if kept is not None else None
        return kept is not None

    ctx.keep_intent = keep_intent
    ctx.read_secret = deps.secrets.get
    ctx.debug(f"message: stage {msg.stage!r} attempt {msg.attempt} step {msg.step} run {msg.run}; "
              f"type {ctx.step.type}; settings {sorted(k for k in ctx.step.config if k not in ('type', 'name'))}")
    ctx.debug(f"target {ctx.target.resource_id}; artifacts "
              f"{[(a['alias'], a['version'], a.get('sha256')) for a in release.artifacts]}")
    with Heartbeat(deps, msg, token) as beat:
        try:
            outcome = _run(deps, ctx)
        except ClaimLost as exc:
            logger.warning("step %s/%s/%s run %s: %s", msg.release_id, msg.stage, msg.step, msg.run, exc)
            return "claim lost", None, []
    outcome = _masked(outcome, ctx.secrets)
    ctx.debug(f"outcome {outcome.kind}: {outcome.message}; state {outcome.state}")
    lines = [f"--- run {msg.run} started {ctx.now.isoformat()} ---", *ctx.lines,
             f"=> {outcome.kind}: {outcome.message}"]
    # The claim's write answered the release as it is now, unless an intent or a heartbeat wrote since.
    nxt_token = uuid.uuid4().hex
    applied = change(deps, msg.definition_id, msg.release_id, _command(msg, outcome),
                     read=None if beat.beats else held, claim_next=nxt_token if go_on is not None else None,
                     wait_up_to=go_on or 0.0, log=part(msg.stage, msg.attempt, msg.step, msg.run, lines),
                     hand_turns=True)
    # The next release in a lane this step's stage left; its first step, claimed, runs beside this one's next.
    handed = [(turn.kept, token, turn.read, turn.kept_after)
              for turn, token in events.hand_over(deps, applied.turns, claim=go_on is not None) if turn.kept]
    after = applied.decision.release
    if outcome.kind == "retry" and stopper(ctx.step.type) is not None \
            and _canceled(after, msg.stage, msg.attempt, msg.step):
        # Abandoned between this run's intent and its answer: the stop message may have looked before
        # this run started anything, so this run stops what it started itself.
        ctx.run.state = outcome.state
        _stop(deps, release, ctx, msg.stage, msg.attempt, msg.step)
    return outcome.kind, (applied.kept, nxt_token, applied.read, applied.kept_after) \
        if applied.kept is not None else None, handed


def _masked(outcome: Outcome, secrets: set[str]) -> Outcome:
    """The outcome with every secret value this run read masked: its message becomes an event and the
    step's message, its state is stored on the release."""
    if not secrets:
        return outcome
    return Outcome(outcome.kind, variables.mask(outcome.message, secrets), outcome.delay,
                   variables.mask(outcome.state, secrets), variables.mask(outcome.slots, secrets))


def _canceled(release: Release, stage: str, attempt: int, index: int) -> bool:
    step = release.find_step(stage, attempt, index)
    return step is not None and step.status == StepStatus.CANCELED


def stop(deps: Deps, msg: StopStepRun, delivery: str = "") -> str:
    """Stop what an engine runs for a step that was canceled while it ran (the release was abandoned).
    Stopping twice is harmless; a stop that fails is delivered again by the queue."""
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release"
    release = loaded[0]
    if not _canceled(release, msg.stage, msg.attempt, msg.step):
        return "not canceled"
    dep = release.stages[msg.stage].deployments[msg.attempt - 1]
    step = dep.steps[msg.step]
    stage = release.plan.stage(msg.stage)
    if stage is None or stopper(step.type) is None or msg.step >= len(stage.steps):
        return "nothing to stop"
    ctx = StepContext(release, stage, stage.steps[msg.step], step, deps.clock.now())
    return _stop(deps, release, ctx, msg.stage, msg.attempt, msg.step)


def _stop(deps: Deps, release: Release, ctx: StepContext, stage: str, attempt: int, index: int) -> str:
    stop_run = stopper(ctx.step.type)
    assert stop_run is not None
    said = _plugin_call(deps, ctx, stop_run, str) if is_plugin(ctx.step.type) else stop_run(deps, ctx)
    deps.store.add_log_part(int(release.definition_id), release.id,
                            part(stage, attempt, index, ctx.run.run, [*ctx.lines, f"=> stopped: {said}"], STOP))
    return said


def _claim(deps: Deps, msg: RunStep, token: str, *, intent: dict[str, Any] | None = None,
           read: tuple[Release, str] | None = None) -> StepContext | None:
    """Take, renew or keep (with an intent) the run's claim: the step as it is now, if this token holds it."""
    claimed = _claim_read(deps, msg, token, intent=intent, read=read)
    return claimed[0] if claimed is not None else None


def _claim_read(deps: Deps, msg: RunStep, token: str, *, intent: dict[str, Any] | None = None,
                read: tuple[Release, str] | None = None) -> tuple[StepContext, tuple[Release, str] | None] | None:
    """`_claim`, with the release as the claim left it (its ETag now)."""
    applied = change(deps, msg.definition_id, msg.release_id,
                     ClaimStep(msg.stage, msg.attempt, msg.step, msg.run, token, deps.settings.step_lease_seconds,
                               intent), read=read)
    found = _context(applied.decision.release, msg, deps)
    if found is None or found.run.claim != token:
        return None
    return found, applied.read


class Heartbeat:
    """Renews the run's claim every third of the lease while the step runs, from a thread: a step that
    waits on a slow deployment endpoint stays claimed, a host that died stops renewing. (The lease is
    in the clock's seconds; the local stack's clock may run faster than the thread sleeps.)"""

    def __init__(self, deps: Deps, msg: RunStep, token: str) -> None:
        self.deps, self.msg, self.token = deps, msg, token
        self.beats = 0
        """Renewals written (each changed the release)."""
        self.every = deps.settings.step_lease_seconds / 3 / float(getattr(deps.clock, "speed", 1) or 1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat:{msg.release_id}/{msg.stage}/{msg.step}",
                                       daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.beats += 1
                if _claim(self.deps, self.msg, self.token) is None:
                    logger.warning("step %s/%s/%s run %s: claim lost while running", self.msg.release_id,
                                   self.msg.stage, self.msg.step, self.msg.run)
                    return
            except Exception:  # a missed beat is not fatal: the claim lasts three of them
                logger.exception("heartbeat of step %s/%s/%s failed", self.msg.release_id, self.msg.stage,
                                 self.msg.step)


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
    kind = handler(ctx.step.type)
    if kind is None:
        return Outcome.fail(f"no step kind '{ctx.step.type}' in this version of Slipway")
    try:
        # `$(Name)` in every string field of the step, built-in or plugin, as the step runs; only what a step
        # defines itself while it runs (its callback URL) is left for it. Any other name nothing defines fails
        # the step before it acts, never written as literal text (see variables.unresolved: unlike Azure DevOps)
        known = ctx.variables()
        missing = variables.unresolved_in_step(str(ctx.step.type), ctx.step.config, known)
        if missing is not None:
            return Outcome.fail(f"unknown variable $({missing})")
        config = {k: v if k == "type" else variables.expand_known(v, known, ctx.secret)
                  for k, v in ctx.step.config.items()}
        ctx.step = dataclasses.replace(ctx.step, config=config)
        return _plugin_call(deps, ctx, kind, Outcome) if is_plugin(ctx.step.type) else kind(deps, ctx)
    except _PluginFailed as exc:
        ctx.log(str(exc))
        return Outcome.fail(str(exc))
    except UnknownVariable as exc:
        return Outcome.fail(str(exc))
    except TargetError as exc:
        tries = int(ctx.run.state.get("targetErrors", 0)) + 1
        ctx.log(f"target error ({'retryable' if exc.retryable else 'final'}): {exc}")
        if not exc.retryable or tries > MAX_TARGET_RETRIES:
            return Outcome.fail(str(exc) if not exc.retryable else f"{exc} (after {tries - 1} retries)")
        delay = exc.retry_after if exc.retry_after is not None else min(300.0, 2.0 ** tries)
        return Outcome.retry(f"{exc}; retrying in {delay:g}s", delay, {**ctx.run.state, "targetErrors": tries})


class _PluginFailed(Exception):
    """A plugin handler raised something Slipway does not know, hung, or answered garbage."""


def _plugin_call(deps: Deps, ctx: StepContext, fn: Any, answer: type) -> Any:
    """A plugin's handler or stopper, in a thread with its time budget (at most a third of the step's lease,
    so the claim is still held when it gives up): its bug fails its step, never the queue invocation.
    What the built-in contract defines (TargetError, UnknownVariable, ClaimLost) keeps its meaning."""
    loaded = plugins.current().step(ctx.step.type)
    budget = min(loaded.kind.timeout_seconds if loaded else plugins.PLUGIN_SECONDS,
                 deps.settings.step_lease_seconds / 3)
    what = f"step '{ctx.step.type}'"
    try:
        result = call(what, budget, fn, deps, ctx)
    except (TargetError, UnknownVariable, ClaimLost):
        raise
    except NoAnswer as exc:
        raise _PluginFailed(str(exc)) from None
    except Exception as exc:
        import traceback  # only on this path

        # one masked line, never the traceback: its text (the message, a chained exception's) may hold a secret
        # the step read; where it raised is enough to find the bug
        reason = variables.mask(f"{type(exc).__name__}: {exc}", ctx.secrets)
        frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" at {frame[0].filename}:{frame[0].lineno} in {frame[0].name}" if frame else ""
        logger.warning("plugin %s raised %s%s", what, reason, where)
        raise _PluginFailed(f"plugin {what} raised {reason}") from None
    if not isinstance(result, answer):
        raise _PluginFailed(f"plugin {what} answered {type(result).__name__}, not {answer.__name__}")
    return result


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

"""Apply one command to one release: read, decide, write guarded by the ETag, then send.

This is the only path by which a release changes after it is created, whether the command came
from a person (HTTP), a step message (queue) or the sweeper (timer).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, assert_never

from shared import telemetry
from shared.domain.errors import Conflict, NotFound, PreconditionFailed
from shared.domain.lanes import Lane
from shared.domain.release import Release
from shared.domain.transitions import LanesNeeded, decide, reads_lanes
from shared.domain.transitions.commands import ClaimStep, Command
from shared.domain.transitions.results import (
    ArmTimer,
    Decision,
    Effect,
    EnqueueGate,
    EnqueueStep,
    LaneMessage,
    PreviewSteps,
    StopStep,
)
from shared.domain.vocabulary import NOTIFIED
from shared.messages import LaneTurn, Message, PreviewStage, RunStep, StopStepRun, TakeSample, WakeUp
from shared.records import Changes, ConcurrentChange, LogPart, OutboxItem, Summary
from shared.services import outbox, recipients
from shared.services.deps import Deps

MAX_TRIES = 40


def back_off(attempt: int) -> None:
    """Wait a random while before retrying a write another change won: full jitter, growing from 10 ms
    to at most half a second, so that many writers of one partition (concurrent creators, a burst of
    completions) spread out instead of colliding again in step."""
    if attempt:
        time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** attempt)))


def message_of(release: Release, effect: Effect, now: datetime) -> tuple[Message, float]:
    """The queue message that carries out an effect, and after how many seconds it is due."""
    did = int(release.definition_id)
    if isinstance(effect, EnqueueStep):
        return RunStep(did, release.id, effect.stage, effect.attempt, effect.step, effect.run), effect.delay_seconds
    if isinstance(effect, EnqueueGate):
        return TakeSample(did, release.id, effect.stage, effect.attempt, effect.kind, effect.seq, effect.token), \
            effect.delay_seconds
    if isinstance(effect, LaneMessage):
        return LaneTurn(did, effect.release_id, effect.stage, effect.grant, release.id), 0.0
    if isinstance(effect, PreviewSteps):
        return PreviewStage(did, release.id, effect.stage, effect.attempt), 0.0
    if isinstance(effect, StopStep):
        return StopStepRun(did, release.id, effect.stage, effect.attempt, effect.step), 0.0
    if isinstance(effect, ArmTimer):
        delay = max(0.0, (datetime.fromisoformat(effect.due) - now).total_seconds())
        return WakeUp(did, release.id, effect.stage, effect.attempt, effect.due), delay
    assert_never(effect)


def outbox_for(deps: Deps, before: Release | None, decision: Decision) -> list[OutboxItem]:
    rel = decision.release
    now = deps.clock.now()
    items = []
    for effect in decision.effects:
        message, delay = message_of(rel, effect, now)
        items.append(outbox.message_item(deps, rel.id, message, delay))
    if before is None or before.status != rel.status:
        items.append(outbox.index_item(deps, rel.id, Summary.of_release(rel)))
    for summary in approval_summaries(before, rel):
        items.append(outbox.index_item(deps, rel.id, summary))
    for event in decision.events:
        if event.type in NOTIFIED:
            items.extend(outbox.message_item(deps, rel.id, m) for m in recipients.recipients(rel, event))
    return items


def approval_summaries(before: Release | None, after: Release) -> list[Summary]:
    """Approvals that appeared or changed status (the approvals inbox lists them)."""
    def states(release: Release | None) -> dict[tuple[str, int, str], str]:
        if release is None:
            return {}
        return {(name, d.attempt, kind): a.status + "|" + ",".join(a.approvers)
                for name, run in release.stages.items() for d in run.deployments for kind, a in d.approvals.items()}

    old = states(before)
    return [Summary.of_approval(after, name, dep, kind, approval)
            for name, run in after.stages.items() for dep in run.deployments
            for kind, approval in dep.approvals.items()
            if old.get((name, dep.attempt, kind)) != approval.status + "|" + ",".join(approval.approvers)]


def read_lanes(deps: Deps, definition_id: int, release: Release, *, known: bool = False,
               ) -> tuple[dict[str, Lane], dict[str, str]]:
    """The lanes of the stages that limit parallel deployments (one read, and only when some do). `known`: as
    this process last read and wrote them, when it did (no read: a writer's first try, which its ETags confirm;
    in one instance, where every writer of them is a thread of this process, they are what a read would find)."""
    if not any(s.limit for s in release.plan.stages):
        return {}, {}
    stored = (deps.store.known_lanes(definition_id) if known else None)
    if stored is None:
        stored = deps.store.lanes(definition_id)
    return ({stage: Lane.from_dict(data) for stage, (data, _) in stored.items()},
            {stage: etag for stage, (_, etag) in stored.items()})


def forward_slots(deps: Deps, definition_id: int, decision: Decision, *, known: bool = False,
                  ) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """The slot records of a change that are newer than what is recorded (by when the slot was read),
    with the ETags to write them under: an older reading never replaces a newer one, whatever order
    the changes commit in (the release's history keeps every reading). `known`: as `read_lanes`', when
    this process knows every slot the change records (one it does not know is read: it may exist)."""
    if not decision.slots:
        return [], {}
    latest = {str(r["slot"]).lower(): r for r in decision.slots}
    stored = deps.store.known_slot_versions(definition_id) if known else None
    if stored is None or not latest.keys() <= stored.keys():
        stored = deps.store.slot_versions(definition_id)
    keep, etags = [], {}
    for slot, record in latest.items():
        old = stored.get(slot)
        if old is not None and str(old[0].get("seenAt", "")) > str(record.get("seenAt", "")):
            continue
        keep.append(record)
        etags[slot] = old[1] if old else None
    return keep, etags


def lane_changes(decision: Decision, etags: dict[str, str]) -> list[tuple[str, dict[str, Any], str | None]]:
    return [(stage, lane.to_dict(), etags.get(stage)) for stage, lane in decision.lanes.items()]


@dataclass
class Applied:
    """What one command did, and what its writer may go on with."""

    decision: Decision
    read: tuple[Release, str] | None = None
    """The release as written, with its new ETag: the writer's next change of it needs no read (if somebody
    changed it since, that write is a 412 and reads as usual)."""
    kept: RunStep | None = None
    """The step the writer claimed to run itself instead of sending it (see `change`'s `claim_next`)."""
    kept_after: float = 0.0
    """Seconds the writer waits before it runs `kept` (a step looking again soon)."""
    turns: list[LaneTurn] = field(default_factory=list)
    """Other releases' lane turns the writer hands over itself instead of sending (see `change`'s
    `hand_turns`)."""


def apply(deps: Deps, definition_id: int, release_id: int, command: Command,
          read: tuple[Release, str] | None = None, if_match: str | None = None,
          idempotency: tuple[str, str] | None = None, *, log: LogPart | None = None) -> Decision:
    """`read` is the release as the caller just read it (with its ETag): it saves one read, and a
    write that finds it stale re-reads as usual. `if_match` (a person's decision) must name the
    version they saw: anything else is a 412, never a retry. `idempotency` (key, result) is
    written with the change: a second change with that key fails (a schedule's occurrence). `log` (lines for
    a step's log) is written with the change, or alone when the command changes nothing."""
    return change(deps, definition_id, release_id, command, read, if_match, idempotency, log=log).decision


def change(deps: Deps, definition_id: int, release_id: int, command: Command,
           read: tuple[Release, str] | None = None, if_match: str | None = None,
           idempotency: tuple[str, str] | None = None, *, claim_next: str | None = None,
           wait_up_to: float = 0.0, log: LogPart | None = None, hand_turns: bool = False) -> Applied:
    """`apply`, telling what was written. `claim_next` (a claim token): a step the decision starts at once
    is claimed for that token in the same write and handed back to run in this process instead of being
    sent (the step handler goes on with the stage's next step, or the next stage's first, with no queue
    hop, no read and no claim of its own). A host that dies before running it leaves a claim that runs
    out, and the sweeper sends the step again as it does for any host that died holding a claim. With
    `wait_up_to`, a step due within that many seconds (a step looking again soon) is kept the same way, its
    claim lasting the wait longer: the writer waits, then runs it. With `hand_turns`, the lane turns this
    change gives other releases (the next one's turn when this one leaves a stage) are not sent: the writer
    applies them itself right after (a host that dies first leaves a release its lane let in but that did not
    start; the sweeper starts it, as for a lost turn message)."""
    for attempt in range(MAX_TRIES):
        back_off(attempt)
        loaded, read = read or deps.store.release(definition_id, release_id), None
        if loaded is None:
            raise NotFound(f"release {release_id} not found")
        release, etag = loaded
        if if_match is not None and if_match.strip() not in ("*", etag):
            raise PreconditionFailed(f"release {release_id} changed since you read it; read it again")
        decision, lane_etags = _decide(deps, definition_id, release, command, known=not attempt)
        if not decision.changed:  # sends nothing: what others committed is theirs to send (or the sweeper's)
            if log is not None:  # a run that was taken from it, or canceled, still says what it did
                deps.store.add_log_part(definition_id, release_id, log)
            return Applied(decision, loaded)
        decision, kept, after = _claimed_next(deps, decision, claim_next, wait_up_to) if claim_next \
            else (decision, None, 0.0)
        turns: list[LaneTurn] = []
        if hand_turns and any(isinstance(e, LaneMessage) for e in decision.effects):
            turns = [turn for e in decision.effects if isinstance(e, LaneMessage)
                     and isinstance(turn := message_of(decision.release, e, deps.clock.now())[0], LaneTurn)]
            decision.effects = [e for e in decision.effects if not isinstance(e, LaneMessage)]
        decision.release.event_seq += len(decision.events)
        items = outbox_for(deps, release, decision)
        slots, slot_etags = forward_slots(deps, definition_id, decision, known=not attempt)
        try:
            written = deps.store.commit(Changes(definition_id, release=decision.release, release_etag=etag,
                                                events=decision.events, outbox=items, slots=slots,
                                                slot_etags=slot_etags, lanes=lane_changes(decision, lane_etags),
                                                idempotency=idempotency, log_parts=[log] if log else []))
        except ConcurrentChange:
            if idempotency is not None and deps.store.idempotent_result(definition_id, idempotency[0]) is not None:
                raise Conflict(f"'{idempotency[0]}' was done already") from None
            continue
        outbox.flush(deps, definition_id, items)
        telemetry.transitions(decision.release, decision.events)
        return Applied(decision, (decision.release, written) if written else None, kept, after, turns)
    raise Conflict(f"release {release_id} kept changing while we tried to update it; try again")


def _decide(deps: Deps, definition_id: int, release: Release, command: Command, *, known: bool = False,
            ) -> tuple[Decision, dict[str, str]]:
    """The decision, reading the stages' lanes only when it looks at one (a deployment starts or ends); `known`:
    see `read_lanes`."""
    now = deps.clock.now()
    if not reads_lanes(command) or not any(s.limit for s in release.plan.stages):
        return decide(release, command, now), {}
    try:
        return decide(release, command, now, lanes_unread=True), {}
    except LanesNeeded:
        lanes, lane_etags = read_lanes(deps, definition_id, release, known=known)
        return decide(release, command, now, lanes), lane_etags


def _claimed_next(deps: Deps, decision: Decision, token: str, wait_up_to: float,
                  ) -> tuple[Decision, RunStep | None, float]:
    """The decision with the first step it starts at once (or, failing that, within `wait_up_to` seconds)
    claimed for `token` (its message dropped), that step's message and its delay; or the decision as it was
    when it starts none."""
    steps = [e for e in decision.effects if isinstance(e, EnqueueStep)]
    effect = next((e for e in steps if e.delay_seconds <= 0), None) \
        or next((e for e in steps if e.delay_seconds <= wait_up_to), None)
    if effect is None:
        return decision, None, 0.0
    after = max(0.0, effect.delay_seconds)
    claim = ClaimStep(effect.stage, effect.attempt, effect.step, effect.run, token,
                      deps.settings.step_lease_seconds + after)
    then = decide(decision.release, claim, deps.clock.now())
    dep = then.release.stages[effect.stage].current
    step = dep.step(effect.step) if dep is not None else None
    if step is None or step.claim != token:
        return decision, None, 0.0
    rel = then.release
    merged = Decision(rel, [*decision.events, *then.events], [e for e in decision.effects if e is not effect]
                      + then.effects, {**decision.lanes, **then.lanes}, [*decision.slots, *then.slots], True)
    return merged, RunStep(int(rel.definition_id), rel.id, effect.stage, effect.attempt, effect.step, effect.run), \
        after

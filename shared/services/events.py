"""Durable timers and lane turns, both on the events queue.

A `WakeUp` wakes a deployment at its due time (an approval's or gate's timeout, a window's
opening, the end of a deferral). One that arrives early (queues cap delays at 7 days) sends itself
again for the rest; a lost one is covered by the sweeper. A `LaneTurn` tells a queued deployment
that another release granted or skipped its turn.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from shared.domain.transitions.commands import LaneGrant, LaneSkip, Wake
from shared.messages import LaneTurn, WakeUp, encode
from shared.services.apply import Applied, apply, change
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def wake(deps: Deps, msg: WakeUp, delivery: str = "") -> str:
    left = (datetime.fromisoformat(msg.due) - deps.clock.now()).total_seconds()
    if left > 1:  # early: queues cap a delay at 7 days
        deps.bus.send(msg.queue, encode(msg), left)
        return "re-armed"
    if deps.store.release(msg.definition_id, msg.release_id) is None:
        return "no such release"
    changed = apply(deps, msg.definition_id, msg.release_id, Wake(msg.stage, msg.attempt)).changed
    return "woke" if changed else "nothing due"


def lane_turn(deps: Deps, msg: LaneTurn, delivery: str = "") -> str:
    return take_turn(deps, msg)[0]


def take_turn(deps: Deps, msg: LaneTurn, claim_next: str | None = None) -> tuple[str, Applied | None]:
    """Apply a lane turn. With `claim_next` (a claim token), the first step the deployment it lets in starts is
    claimed by the same write and handed back to run in this process (`Applied.kept`), as a step's result does
    with the step after it."""
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release", None
    command = LaneGrant(msg.stage) if msg.grant else LaneSkip(msg.stage, msg.sender)
    applied = change(deps, msg.definition_id, msg.release_id, command, read=loaded, claim_next=claim_next)
    return (f"lane {'grant' if msg.grant else 'skip'}" if applied.decision.changed else "stale"), applied


def hand_over(deps: Deps, turns: Iterable[LaneTurn], *, claim: bool = False) -> list[tuple[Applied, str]]:
    """Give the lane turns a change of this process's handler did not send (`change(..., hand_turns=True)`): the
    next release in a lane starts with no events-queue hop. One that fails here is the sweeper's: it starts a
    release its lane let in that did not start, as for a lost turn message. With `claim`, each turn's write
    claims the first step it starts for a token of its own: the turns that did, with their tokens, for the caller
    to run (a host that dies first leaves claims that run out; the sweeper sends those steps again)."""
    kept = []
    for turn in turns:
        token = uuid.uuid4().hex if claim else None
        try:
            applied = take_turn(deps, turn, claim_next=token)[1]
        except Exception as exc:  # noqa: BLE001  (the sweeper's, above)
            logger.warning("lane turn of release %s in %r not handed over: %s", turn.release_id, turn.stage,
                           type(exc).__name__)
            continue
        if applied is not None and applied.kept is not None and token is not None:
            kept.append((applied, token))
    return kept

"""Durable timers and lane turns, both on the events queue.

A `WakeUp` wakes a deployment at its due time (an approval's or gate's timeout, a window's
opening, the end of a deferral). One that arrives early (queues cap delays at 7 days) sends itself
again for the rest; a lost one is covered by the sweeper. A `LaneTurn` tells a queued deployment
that another release granted or skipped its turn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from shared.domain.transitions.commands import LaneGrant, LaneSkip, Wake
from shared.messages import LaneTurn, WakeUp, encode
from shared.services.apply import apply
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
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    if loaded is None:
        return "no such release"
    command = LaneGrant(msg.stage) if msg.grant else LaneSkip(msg.stage, msg.sender)
    changed = apply(deps, msg.definition_id, msg.release_id, command, read=loaded).changed
    return f"lane {'grant' if msg.grant else 'skip'}" if changed else "stale"


def hand_over(deps: Deps, turns: Iterable[LaneTurn]) -> None:
    """Give the lane turns a change of this process's handler did not send (`change(..., hand_turns=True)`): the
    next release in a lane starts with no events-queue hop. One that fails here is the sweeper's: it starts a
    release its lane let in that did not start, as for a lost turn message."""
    for turn in turns:
        try:
            lane_turn(deps, turn)
        except Exception as exc:  # noqa: BLE001  (the sweeper's, above)
            logger.warning("lane turn of release %s in %r not handed over: %s", turn.release_id, turn.stage,
                           type(exc).__name__)

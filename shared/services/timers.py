"""Durable timers: a delayed message on the events queue wakes a deployment (an approval's
timeout, the end of a deferral). A message that arrives early (queues cap delays at 7 days)
sends itself again for the rest; a lost one is covered by the sweeper."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from shared.config import EVENTS_QUEUE
from shared.domain.transitions import LaneGrant, LaneSkip, Wake
from shared.services.apply import apply
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def handle(deps: Deps, body: str) -> str:
    try:
        msg = json.loads(body)
        if msg.get("kind") == "lane":
            lane = (int(msg["definitionId"]), int(msg["releaseId"]), str(msg["stage"]), str(msg["action"]),
                    int(msg["from"]))
        definition_id, release_id = int(msg["definitionId"]), int(msg["releaseId"])
        if msg.get("kind") != "lane":
            stage, attempt, due = str(msg["stage"]), int(msg["attempt"]), datetime.fromisoformat(msg["due"])
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.error("dropping an event message that is not ours: %.200s", body)
        return "malformed"
    if msg.get("kind") == "lane":
        return _lane(deps, *lane)
    left = (due - deps.clock.now()).total_seconds()
    if left > 1:
        deps.bus.send(EVENTS_QUEUE, body, left)
        return "re-armed"
    if deps.store.release(definition_id, release_id) is None:
        return "no such release"
    decision = apply(deps, definition_id, release_id, Wake(stage, attempt))
    return "woke" if decision.changed else "nothing due"


def _lane(deps: Deps, definition_id: int, release_id: int, stage: str, action: str, sender: int) -> str:
    """Another release's deployment left the lane (grant) or a newer one came (skip)."""
    if deps.store.release(definition_id, release_id) is None:
        return "no such release"
    command = LaneGrant(stage) if action == "grant" else LaneSkip(stage, sender)
    return f"lane {action}" if apply(deps, definition_id, release_id, command).changed else "stale"

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
    """A timer (`wake`) or a lane message (`lane`: another release granted or skipped our turn)."""
    try:
        msg = json.loads(body)
        definition_id, release_id, stage = int(msg["definitionId"]), int(msg["releaseId"]), str(msg["stage"])
        if msg.get("kind") == "lane":
            command: LaneGrant | LaneSkip | Wake = (LaneGrant(stage) if msg["action"] == "grant"
                                                    else LaneSkip(stage, int(msg["from"])))
        else:
            command = Wake(stage, int(msg["attempt"]))
            left = (datetime.fromisoformat(msg["due"]) - deps.clock.now()).total_seconds()
            if left > 1:  # early: queues cap a delay at 7 days
                deps.bus.send(EVENTS_QUEUE, body, left)
                return "re-armed"
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.error("dropping an event message that is not ours: %.200s", body)
        return "malformed"
    if deps.store.release(definition_id, release_id) is None:
        return "no such release"
    changed = apply(deps, definition_id, release_id, command).changed
    if isinstance(command, Wake):
        return "woke" if changed else "nothing due"
    return f"lane {msg['action']}" if changed else "stale"

"""The sweeper (every 15 s): sends outbox items a crash left behind, and sends again the steps whose
host stopped answering or whose message was lost."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from shared.domain.transitions.commands import Sweep
from shared.records import OutboxItem
from shared.services import outbox
from shared.services.apply import apply
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def sweep(deps: Deps) -> dict[str, int]:
    now = deps.clock.now()
    # An outbox row is sent by the handler that committed it, within milliseconds; one still there a
    # lease later was left by a host that died in between.
    stale_after = timedelta(seconds=deps.settings.step_lease_seconds)
    stale: dict[int, list[OutboxItem]] = defaultdict(list)
    for definition_id, item in deps.store.claim_stale_outbox(now - stale_after, now, now + stale_after):
        stale[definition_id].append(item)
    for definition_id, items in stale.items():
        outbox.flush(deps, definition_id, items)
    redelivered = 0
    command = Sweep(deps.settings.step_lease_seconds, deps.settings.max_step_redeliveries)
    for definition_id, release_id in deps.store.in_flight():
        decision = apply(deps, definition_id, release_id, command)
        redelivered += len(decision.effects)
    counts = {"outbox": sum(len(v) for v in stale.values()), "redelivered": redelivered}
    if any(counts.values()):
        logger.warning("sweeper: sent %(outbox)s stale outbox items, redelivered %(redelivered)s steps", counts)
    return counts

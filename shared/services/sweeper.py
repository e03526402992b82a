"""The sweeper (every 15 s): sends outbox items a crash left behind, and sends again the steps whose
host stopped answering or whose message was lost."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from shared.domain.lanes import Lane
from shared.domain.transitions.commands import Sweep
from shared.records import OutboxItem
from shared.services import outbox
from shared.services.apply import apply
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def _to_look_at(deps: Deps) -> list[tuple[int, int]]:
    """Every release with a deployment in progress, and of those only waiting in a lane, the ones their lane
    already let in (their turn's message was lost): a release queued behind a busy lane has nothing the
    sweeper could find lost, and reading each of them every sweep made the sweeper's cost grow with the
    queue (200 queued releases: 200 reads every 15 s). One read of the lanes per definition instead."""
    flying = deps.store.in_flight()
    chosen = [(f.definition_id, f.release_id) for f in flying if not f.queued_only]
    queued: dict[int, set[int]] = defaultdict(set)
    for f in flying:
        if f.queued_only:
            queued[f.definition_id].add(f.release_id)
    for definition_id, waiting in queued.items():
        admitted = {rid for data, _ in deps.store.lanes(definition_id).values()
                    for rid in Lane.from_dict(data).active}
        chosen += [(definition_id, rid) for rid in sorted(waiting & admitted)]
    return chosen


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
    for definition_id, release_id in _to_look_at(deps):
        decision = apply(deps, definition_id, release_id, command)
        redelivered += len(decision.effects)
    counts = {"outbox": sum(len(v) for v in stale.values()), "redelivered": redelivered}
    if any(counts.values()):
        logger.warning("sweeper: sent %(outbox)s stale outbox items, redelivered %(redelivered)s steps", counts)
    return counts

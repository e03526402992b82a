"""Apply one command to one release: read, decide, write guarded by the ETag, then send.

This is the only path by which a release changes after it is created, whether the command came
from a person (HTTP), a step message (queue) or the sweeper (timer).
"""

from __future__ import annotations

from typing import Any

from shared import telemetry
from shared.config import STEPS_QUEUE
from shared.domain.errors import Conflict, NotFound
from shared.domain.release import Release
from shared.domain.transitions import Command, Decision, EnqueueStep, decide
from shared.records import Changes, ConcurrentChange, OutboxItem
from shared.services import outbox
from shared.services.deps import Deps

MAX_TRIES = 20


def step_message(release: Release, effect: EnqueueStep) -> dict[str, Any]:
    return {"definitionId": int(release.definition_id), "releaseId": release.id, "stage": effect.stage,
            "attempt": effect.attempt, "step": effect.step, "run": effect.run}


def release_index_row(release: Release) -> dict[str, Any]:
    return {"PartitionKey": "releases", "RowKey": f"{10**10 - release.id:010d}", "id": release.id,
            "definitionId": int(release.definition_id), "name": release.name, "status": release.status,
            "createdAt": release.created_at, "createdBy": release.created_by}


def outbox_for(deps: Deps, before: Release | None, decision: Decision) -> list[OutboxItem]:
    rel = decision.release
    items = [outbox.queue_item(deps, rel.id, STEPS_QUEUE, step_message(rel, e), e.delay_seconds)
             for e in decision.effects]
    if before is None or before.status != rel.status:
        items.append(outbox.index_item(deps, rel.id, release_index_row(rel)))
    return items


def apply(deps: Deps, definition_id: int, release_id: int, command: Command,
          read: tuple[Release, str] | None = None) -> Decision:
    """`read` is the release as the caller just read it (with its ETag): it saves one read, and a
    write that finds it stale re-reads as usual."""
    for _ in range(MAX_TRIES):
        loaded, read = read or deps.store.release(definition_id, release_id), None
        if loaded is None:
            raise NotFound(f"release {release_id} not found")
        release, etag = loaded
        decision = decide(release, command, deps.clock.now())
        if not decision.changed:
            outbox.flush_pending(deps, definition_id, release_id)
            return decision
        decision.release.event_seq += len(decision.events)
        items = outbox_for(deps, release, decision)
        try:
            deps.store.commit(Changes(definition_id, release=decision.release, release_etag=etag,
                                      events=decision.events, outbox=items, slots=decision.slots))
        except ConcurrentChange:
            continue
        outbox.flush(deps, definition_id, items)
        telemetry.transitions(decision.release, decision.events)
        return decision
    raise Conflict(f"release {release_id} kept changing while we tried to update it; try again")

"""Carry out outbox items after their transaction committed: send messages, write index rows.

Sending twice is harmless (handlers are idempotent), so items are deleted only after they went
out; whatever a crash leaves behind, the sweeper sends a minute later.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

from shared.records import OutboxItem
from shared.services import notifications
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def queue_item(deps: Deps, release_id: int, queue: str, body: dict[str, object], delay: float = 0.0) -> OutboxItem:
    return OutboxItem(id=uuid.uuid4().hex, release_id=release_id, kind="queue", queue=queue,
                      body=json.dumps(body, separators=(",", ":")), delay=delay,
                      created_at=deps.clock.now().isoformat())


def index_item(deps: Deps, release_id: int, row: dict[str, object]) -> OutboxItem:
    return OutboxItem(id=uuid.uuid4().hex, release_id=release_id, kind="index",
                      body=json.dumps(row, separators=(",", ":")), created_at=deps.clock.now().isoformat())


def notify_item(deps: Deps, release_id: int, note: dict[str, object]) -> OutboxItem:
    return OutboxItem(id=uuid.uuid4().hex, release_id=release_id, kind="notify",
                      body=json.dumps(note, separators=(",", ":")), created_at=deps.clock.now().isoformat())


def schedule_item(deps: Deps, definition_id: int) -> OutboxItem:
    """Put the definition's schedules in the due index once its new revision is stored."""
    return OutboxItem(id=uuid.uuid4().hex, release_id=0, kind="schedule",
                      body=json.dumps({"definitionId": definition_id}), created_at=deps.clock.now().isoformat())


def flush(deps: Deps, definition_id: int, items: list[OutboxItem]) -> None:
    if not items:
        return
    now = deps.clock.now()
    done = []
    for item in items:
        if item.kind == "notify":
            try:
                notifications.dispatch(deps, json.loads(item.body))
            except Exception:  # a mail server being down must not stop a release: the sweeper retries
                logger.exception("notification %s failed; the sweeper sends it again", item.id)
                continue
        elif item.kind == "queue":
            waited = (now - datetime.fromisoformat(item.created_at)).total_seconds()
            deps.bus.send(item.queue, item.body, max(0.0, item.delay - waited))
        elif item.kind == "index":
            deps.store.upsert_index(json.loads(item.body))
        elif item.kind == "schedule":
            from shared.services import scheduler  # it reads definitions and releases, which use the outbox

            scheduler.register(deps, definition_id)
        else:
            logger.error("unknown outbox item kind %s in definition %s", item.kind, definition_id)
        done.append(item)
    if done:
        deps.store.delete_outbox(definition_id, done)


def flush_pending(deps: Deps, definition_id: int, release_id: int) -> None:
    """Send what an earlier, interrupted handler left in the outbox of this release."""
    flush(deps, definition_id, deps.store.outbox(definition_id, release_id))

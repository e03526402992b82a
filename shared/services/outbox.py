"""Carry out outbox items after their transaction committed: send queue messages, write index rows.

The outbox is transport only: what a message means, and what reacts to it, lives in
`shared/messages.py` and `shared/bootstrap.py`. Sending twice is harmless (handlers are
idempotent), so items are deleted only after they went out; whatever a crash leaves behind, the
sweeper sends a minute later.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from datetime import datetime
from typing import assert_never

from shared.config import EVENTS_QUEUE, MAIL_QUEUE
from shared.domain.transitions.results import Event
from shared.domain.vocabulary import EventType
from shared.messages import (
    AskApproval,
    AskIntervention,
    LaneTurn,
    Message,
    RegisterSchedules,
    RunStep,
    TakeSample,
    TellOutcome,
    encode,
)
from shared.records import OutboxItem, OutboxKind, Summary
from shared.services import recipients
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


SWEPT = (RunStep, TakeSample, LaneTurn)
"""Messages the sweeper sends again from the release's state when they were lost (steps.redeliver_unanswered,
gates.resend_lost_sample, the lane grant in transitions._sweep): they need no outbox row."""


def message_item(deps: Deps, release_id: int, message: Message, delay: float = 0.0) -> OutboxItem:
    item_id = uuid.uuid4().hex
    if isinstance(message, (AskApproval, AskIntervention, TellOutcome)) and not message.key:
        message = dataclasses.replace(message, key=item_id)  # a mail sent again by the sweeper mails nobody twice
    return OutboxItem(id=item_id, release_id=release_id, kind=OutboxKind.QUEUE, queue=message.queue,
                      body=encode(message), delay=delay, created_at=deps.clock.now().isoformat(),
                      rowless=isinstance(message, SWEPT))


def index_item(deps: Deps, release_id: int, summary: Summary) -> OutboxItem:
    return OutboxItem(id=uuid.uuid4().hex, release_id=release_id, kind=OutboxKind.INDEX, body=summary.to_json(),
                      created_at=deps.clock.now().isoformat())


def flush(deps: Deps, definition_id: int, items: list[OutboxItem]) -> None:
    if not items:
        return
    now = deps.clock.now()
    for item in items:
        if item.kind == OutboxKind.QUEUE:
            waited = (now - datetime.fromisoformat(item.created_at)).total_seconds()
            deps.bus.send(item.queue, item.body, max(0.0, item.delay - waited))
        elif item.kind == OutboxKind.INDEX:
            deps.store.put_summary(Summary.from_json(item.body))
        elif item.kind in (OutboxKind.NOTIFY, OutboxKind.SCHEDULE):
            for queue, body in _earlier_kind(deps, definition_id, item):
                deps.bus.send(queue, body, 0.0)
        else:
            assert_never(item.kind)
    kept = [item for item in items if not item.rowless]
    if kept:
        deps.store.delete_outbox(definition_id, kept)


def _earlier_kind(deps: Deps, definition_id: int, item: OutboxItem) -> list[tuple[str, str]]:
    """Items an earlier version left in the outbox (it mailed and registered schedules there):
    sent as the messages that do it now."""
    if item.kind == OutboxKind.SCHEDULE:
        return [(EVENTS_QUEUE, encode(RegisterSchedules(definition_id)))]
    note = json.loads(item.body)
    try:
        event = Event(EventType(note.get("event")), item.created_at, note.get("stage"), note.get("attempt"))
    except ValueError:
        return []
    loaded = deps.store.release(definition_id, item.release_id)
    if loaded is None:
        return []
    return [(MAIL_QUEUE, encode(m)) for m in recipients.recipients(loaded[0], event)]

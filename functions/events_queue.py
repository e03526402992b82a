"""Queue trigger for the events queue: durable timers, lane turns, schedule registrations."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.config import EVENTS_QUEUE

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=EVENTS_QUEUE, connection="AzureWebJobsStorage")
def run_event(msg: func.QueueMessage) -> None:
    outcome = bootstrap.react(bootstrap.deps(), EVENTS_QUEUE, msg.get_body().decode(), msg.id or "")
    logger.info("event message %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)

"""Queue trigger for durable timers: approval timeouts and the end of deferrals."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.config import EVENTS_QUEUE
from shared.services import timers

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=EVENTS_QUEUE, connection="AzureWebJobsStorage")
def run_event(msg: func.QueueMessage) -> None:
    outcome = timers.handle(bootstrap.deps(), msg.get_body().decode())
    logger.info("event message %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)

"""Queue trigger for gate samples (see shared/services/gate_runs.py)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.config import GATES_QUEUE

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=GATES_QUEUE, connection="AzureWebJobsStorage")
def run_gate_sample(msg: func.QueueMessage) -> None:
    outcome = bootstrap.react(bootstrap.deps(), GATES_QUEUE, msg.get_body().decode(), msg.id or "")
    logger.info("gate message %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)

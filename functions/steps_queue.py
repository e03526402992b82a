"""Queue triggers: run deployment steps; fail the deployments whose step message was poisoned."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap
from shared.config import STEPS_POISON_QUEUE, STEPS_QUEUE

if TYPE_CHECKING:
    from shared.services import steps
else:
    steps = lazy("shared.services.steps")

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=STEPS_QUEUE, connection="AzureWebJobsStorage")
def run_step(msg: func.QueueMessage) -> None:
    outcome = bootstrap.react(bootstrap.deps(), STEPS_QUEUE, msg.get_body().decode(), msg.id or "")
    logger.info("step message %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)


@bp.queue_trigger(arg_name="msg", queue_name=STEPS_POISON_QUEUE, connection="AzureWebJobsStorage")
def step_poisoned(msg: func.QueueMessage) -> None:
    outcome = steps.handle_poisoned(bootstrap.deps(), msg.get_body().decode(), msg.dequeue_count)
    logger.warning("poisoned step message %s: %s", msg.id, outcome)

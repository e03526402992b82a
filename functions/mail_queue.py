"""Queue triggers for mail: one message per recipient (see shared/services/mail.py). A mail that
failed every delivery rests in the poison queue; its trigger says so in the log, where operators
look, and mails nobody."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap
from shared.config import MAIL_QUEUE

if TYPE_CHECKING:
    from shared import messages as queue_messages
else:
    queue_messages = lazy("shared.messages")

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=MAIL_QUEUE, connection="AzureWebJobsStorage")
def send_mail(msg: func.QueueMessage) -> None:
    outcome = bootstrap.react(bootstrap.deps(), MAIL_QUEUE, msg.get_body().decode(), msg.id or "")
    logger.info("mail message %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)


@bp.queue_trigger(arg_name="msg", queue_name=f"{MAIL_QUEUE}-poison", connection="AzureWebJobsStorage")
def mail_poisoned(msg: func.QueueMessage) -> None:
    message = queue_messages.decode(MAIL_QUEUE, msg.get_body().decode())
    to = getattr(message, "to", "?")
    logger.error("could not mail %s after every delivery (release %s, stage %r); the message stays in %s-poison",
                 to, getattr(message, "release_id", "?"), getattr(message, "stage", "?"), MAIL_QUEUE)

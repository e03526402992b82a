"""The scheduler's tick: fire the stage and release schedules that are due (see shared/services/scheduler.py)."""

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap

if TYPE_CHECKING:
    from shared.services import scheduler
else:
    scheduler = lazy("shared.services.scheduler")

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%SLIPWAY_SCHEDULER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def schedule_tick(timer: func.TimerRequest) -> None:
    for outcome in scheduler.tick(bootstrap.deps()):
        logger.info("schedule %s", outcome)

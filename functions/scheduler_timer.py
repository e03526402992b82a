"""The scheduler's tick: fire the stage and release schedules that are due (see shared/services/scheduler.py)."""

import logging

import azure.functions as func

from shared import bootstrap
from shared.services import scheduler

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%SLIPWAY_SCHEDULER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def schedule_tick(timer: func.TimerRequest) -> None:
    for outcome in scheduler.tick(bootstrap.deps()):
        logger.info("schedule %s", outcome)

"""The retention timer: deletes expired releases in bounded batches (see shared/services/retention.py)."""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap
from shared.services import retention

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SLIPWAY_RETENTION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def retention_tick(timer: func.TimerRequest) -> None:
    retention.tick(bootstrap.deps())

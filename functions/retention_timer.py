"""The retention timer: deletes expired releases in bounded batches (see shared/services/retention.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap

if TYPE_CHECKING:
    from shared.services import retention
else:
    retention = lazy("shared.services.retention")

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SLIPWAY_RETENTION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def retention_tick(timer: func.TimerRequest) -> None:
    retention.tick(bootstrap.deps())

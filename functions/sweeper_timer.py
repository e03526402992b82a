"""The minute timer: the sweeper that makes crashes and lost messages converge."""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap
from shared.services import sweeper

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SLIPWAY_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    sweeper.sweep(bootstrap.deps())

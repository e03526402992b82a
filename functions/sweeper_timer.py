"""The minute timer: the sweeper that makes crashes and lost messages converge."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap

if TYPE_CHECKING:
    from shared.services import sweeper
else:
    sweeper = lazy("shared.services.sweeper")

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SLIPWAY_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    sweeper.sweep(bootstrap.deps())

"""The metrics rollup timer: folds finished deployments into day buckets (see shared/services/metrics_rollup.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.lazy import lazy
from shared import bootstrap

if TYPE_CHECKING:
    from shared.services import metrics_rollup
else:
    metrics_rollup = lazy("shared.services.metrics_rollup")

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SLIPWAY_METRICS_SCHEDULE%", run_on_startup=False, use_monitor=True)
def metrics_tick(timer: func.TimerRequest) -> None:
    metrics_rollup.tick(bootstrap.deps())

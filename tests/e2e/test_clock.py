"""One clock for the whole local stack: with an accelerated clock, the traffic the slots serve is
stamped on the app's time line, so a gate's metric window finds it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from local.stack import SAMPLE_TARGET, LocalStack
from shared import bootstrap
from shared.adapters.monitor_signals import MonitorSignals
from shared.config import Settings

pytestmark = pytest.mark.e2e


def test_metrics_of_served_traffic_are_on_the_accelerated_clock() -> None:
    start = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
    clock = {"SLIPWAY_CLOCK_START": start.isoformat(), "SLIPWAY_CLOCK_SPEED": "60"}
    with LocalStack(persistent=False, fixed_ports=False, seed=False, extra_settings=clock) as stack:
        assert stack.monitor is not None
        app_now = bootstrap.deps().clock.now()
        assert app_now.year == 2031 and stack.monitor.now() - app_now < (stack.monitor.now() - start)
        dev = stack.slot_urls()["dev"]
        for _ in range(3):
            httpx.get(dev, timeout=10)
        signals = MonitorSignals(Settings(monitor_endpoint=stack.monitor.url, arm_auth="local-emulator"))
        slot = (f"/subscriptions/{SAMPLE_TARGET['subscriptionId']}/resourceGroups/{SAMPLE_TARGET['resourceGroup']}"
                f"/providers/Microsoft.Web/sites/{SAMPLE_TARGET['site']}/slots/dev")
        requests = {"name": "requests", "type": "metric", "metric": "Requests", "aggregation": "Total",
                    "windowMinutes": 5, "operator": ">", "threshold": 0}
        reading = signals.read(requests, slot, bootstrap.deps().clock.now())
        assert reading.value == 3.0, reading

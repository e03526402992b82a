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


def test_a_release_left_longer_than_any_sas_lifetime_survives_a_restart_and_a_swap() -> None:
    """Eight simulated days (a user-delegation SAS lives at most seven) between deploying to preprod
    and swapping into production: zip deployment keeps no URL to expire, so the slots restart and swap."""
    import sys
    import time

    from local.azurite import REPO
    from local.stack import TAILSPIN_TARGET

    start = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
    settings = {"SLIPWAY_CLOCK_START": start.isoformat(), "SLIPWAY_CLOCK_SPEED": "86400",  # a day a second
                "SLIPWAY_SWEEP_SCHEDULE": "0 0 * * * *", "SLIPWAY_SCHEDULER_SCHEDULE": "0 0 * * * *"}
    target = {k: TAILSPIN_TARGET[k] for k in ("subscriptionId", "resourceGroup", "site")}
    body = {"name": "Left a week", "artifacts": [{"alias": "web", "source": "week-web", "trigger": {"enabled": True}}],
            "stages": [
        {"name": "Preprod", "target": {**target, "slot": "preprod"}, "trigger": {"type": "afterRelease"},
         "steps": [{"type": "deploy-package", "verifyPath": "/health", "verifyTimeoutSeconds": 3600}]},
        {"name": "Production", "target": target, "trigger": {"type": "manual"},
         "steps": [{"type": "swap", "slot": "preprod"}]}]}
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1,
                    extra_settings=settings) as stack:
        assert stack.azurite is not None and stack.emulator is not None
        sys.path.insert(0, str(REPO / "examples"))
        import build as sample_build  # type: ignore[import-not-found]

        did = httpx.post(f"{stack.api}/definitions", json=body, timeout=30).json()["id"]

        def release(version: str) -> int:
            out = sample_build.publish(version=version, source="week-web", api=stack.api,
                                       storage_connection=stack.azurite.connection_string,  # type: ignore[union-attr]
                                       key=stack.function_key)
            assert out.status_code == 201, out.text
            rid = int(next(r["id"] for r in out.json()["releases"] if r["definitionId"] == did))
            stack.wait_for(rid, lambda r: r["stages"][0]["status"] == "succeeded", timeout=120)
            return rid

        def deploy_production(rid: int) -> None:
            httpx.post(f"{stack.api}/releases/{rid}/stages/Production/deploy", timeout=30)
            stack.wait_for(rid, lambda r: r["stages"][1]["status"] == "succeeded", timeout=120)

        urls = stack.emulator.slot_urls(target["subscriptionId"], target["resourceGroup"], target["site"])
        first = release("1.0.0")
        deploy_production(first)
        second = release("1.1.0")
        deployed_at = bootstrap.deps().clock.now()
        time.sleep(8.5)  # eight and a half simulated days
        assert (bootstrap.deps().clock.now() - deployed_at).days >= 8
        stack.emulator.scale_out(target["subscriptionId"], target["resourceGroup"], target["site"])
        assert httpx.get(f"{urls['production']}/health", timeout=10).json()["version"] == "1.0.0"
        assert httpx.get(f"{urls['preprod']}/health", timeout=10).json()["version"] == "1.1.0"
        deploy_production(second)
        assert httpx.get(f"{urls['production']}/health", timeout=10).json()["version"] == "1.1.0"

"""Production's post-deployment gate on the local stack: after the swap, Slipway samples the
production slot's 5xx count and response time (from the Azure Monitor emulator, computed from the
traffic the slot really served) and its fired alerts. A good build passes and the release
completes; a build that answers 500 to every other request fails the gate at its timeout and is
swapped back; the release page shows the samples."""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401  (fixture)
from tests.e2e.test_slots import RG, SITE, SUB, TAILSPIN, settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
GATE = {"signals": [
    {"name": "5xx", "type": "metric", "metric": "Http5xx", "aggregation": "Total", "windowMinutes": 0.25,
     "operator": "<=", "threshold": 0},
    {"name": "response time", "type": "metric", "metric": "HttpResponseTime", "aggregation": "Average",
     "windowMinutes": 0.25, "operator": "<", "threshold": 0.5},
    {"name": "alerts", "type": "alerts"}],
    "delayMinutes": 0.05, "intervalMinutes": 0.05, "timeoutMinutes": 0.5, "minimumSuccessMinutes": 0.1}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as running:
        yield running


class Traffic:
    """Users of the production slot: a request every 50 ms while the test runs."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.statuses = url, threading.Event(), []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(0.05):
                try:
                    self.statuses.append(client.get(self.url).status_code)
                except httpx.HTTPError:
                    pass

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def build(stack: LocalStack, version: str, **kw: Any) -> int:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    response = sample_build.publish(version=version, source="tailspin-web", api=stack.api,
                                    storage_connection=stack.azurite.connection_string, **kw)
    assert response.status_code == 201, response.text
    return int(response.json()["releases"][0]["id"])


def test_a_good_build_passes_the_health_gate_and_a_5xx_build_is_swapped_back(stack: LocalStack,
                                                                              browser: Any) -> None:  # noqa: F811
    assert stack.emulator is not None and stack.host is not None
    pipeline = copy.deepcopy(TAILSPIN)
    pipeline["name"] = "Tailspin with a health gate"
    pipeline["stages"][3]["postGates"] = GATE
    created = httpx.post(f"{stack.api}/definitions", json=pipeline, timeout=30)
    assert created.status_code == 201, created.text
    production = stack.emulator.slot_urls(SUB, RG, SITE)["production"] + "/"

    with Traffic(production) as users:
        good = stack.wait_for(build(stack, "2.0.0"), settled, 120)
        assert [s["status"] for s in good["stages"]] == ["succeeded"] * 4, good["stages"][3]
        gate = good["stages"][3]["deployments"][0]["gates"]["post"]
        assert gate["status"] == "succeeded" and gate["sampleCount"] >= 2
        assert all(s["verdict"] == "pass" for s in gate["samples"][-2:])

        bad = stack.wait_for(build(stack, "2.1.0", errors_in="production"), settled, 120)
        dep = bad["stages"][3]["deployments"][0]
        assert dep["status"] == "failed", dep
        gate = dep["gates"]["post"]
        assert gate["status"] == "failed" and gate["reason"].startswith("timed out")
        assert "post-deployment gate failed" in dep["failure"] and "swapped back" in dep["failure"]
        five_xx = [s for sample in gate["samples"] for s in sample["signals"] if s["name"] == "5xx"]
        assert any(s["verdict"] == "fail" and s["value"] > 0 for s in five_xx)
        assert dep["steps"][-1]["type"] == "swap-back" and dep["steps"][-1]["status"] == "succeeded"
    assert 500 in users.statuses  # the bad build really served errors
    version = httpx.get(production.rstrip("/") + "/health", timeout=10).json()["version"]
    assert version == "2.0.0"

    page = browser.new_context().new_page()
    page.goto(f"{stack.host.base_url}/releases/{bad['id']}")
    gate_box = page.locator(".deployment[data-stage='Production'] .gate[data-kind='post']")
    assert "failed" in gate_box.inner_text() and "timed out" in gate_box.inner_text()
    assert gate_box.locator("svg.samples rect.dot-fail").count() >= 3  # the 5xx row of the chart is red
    assert "5xx=" in gate_box.locator("table.gate-samples").inner_text()
    page.screenshot(path=str(SHOTS / "gate-swapped-back.png"), full_page=True)

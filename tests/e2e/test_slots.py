"""Tailspin's pipeline on the local stack: dev, test and preprod slots, Production deploys to its staging
slot and swaps it in; a release that fails its post-swap check is swapped back automatically."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = pytest.mark.e2e


TAILSPIN = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())
TARGET = TAILSPIN["stages"][0]["target"]
SUB, RG, SITE = TARGET["subscriptionId"], TARGET["resourceGroup"], TARGET["site"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as running:
        yield running  # the stack seeds the tailspin app with its dev, test, preprod and staging slots


def build(stack: LocalStack, version: str, defect_in: str | None = None) -> int:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    response = sample_build.publish(version=version, source="tailspin-web", api=stack.api, defect_in=defect_in,
                                    storage_connection=stack.azurite.connection_string)
    assert response.status_code == 201, response.text
    return int(response.json()["releases"][0]["id"])


def settled(release: dict[str, Any]) -> bool:
    return all(s["status"] not in ("notStarted", "inProgress") for s in release["stages"])


def serving(stack: LocalStack, slot: str) -> str:
    assert stack.emulator is not None
    url = stack.emulator.slot_urls(SUB, RG, SITE)[slot]
    return str(httpx.get(f"{url}/health", timeout=10).json()["version"])


def test_releases_swap_into_production_and_a_bad_one_is_swapped_back(stack: LocalStack) -> None:
    did = httpx.post(f"{stack.api}/definitions", json=TAILSPIN, timeout=30).json()["id"]

    r1 = stack.wait_for(build(stack, "1.0.0"), settled, 90)
    assert [s["status"] for s in r1["stages"]] == ["succeeded"] * 4
    assert serving(stack, "production") == "1.0.0"

    r2 = stack.wait_for(build(stack, "1.1.0"), settled, 90)
    assert [s["status"] for s in r2["stages"]] == ["succeeded"] * 4
    assert serving(stack, "production") == "1.1.0" and serving(stack, "staging") == "1.0.0"
    assert serving(stack, "preprod") == "1.1.0"

    r3 = stack.wait_for(build(stack, "1.2.0", defect_in="production"), settled, 90)
    assert [s["status"] for s in r3["stages"]] == ["succeeded", "succeeded", "succeeded", "failed"]
    production = r3["stages"][3]["deployments"][0]
    assert production["failure"].startswith("post-swap check 'Post-swap health' failed")
    assert "swapped back automatically" in production["failure"]
    assert f"release {r2['id']} (1.1.0)" in production["failure"]
    assert [s["type"] for s in production["steps"]][-1] == "swap-back"
    assert serving(stack, "production") == "1.1.0"
    shown = httpx.get(f"{stack.api}/releases/{r3['id']}", timeout=30).json()["stages"][3]["nowRunning"]
    assert shown["releaseId"] == r2["id"] and shown["version"] == "1.1.0"

    where = httpx.get(f"{stack.api}/definitions/{did}/environments", params={"verify": "true"}, timeout=30).json()
    by_stage = {s["stage"]: s for s in where["stages"]}
    assert by_stage["Production"]["recorded"]["releaseId"] == r2["id"]
    assert by_stage["Production"]["recorded"]["how"] == "automatic swap-back"
    assert by_stage["Production"]["recorded"]["by"] == "Slipway (automatic swap-back)"
    assert by_stage["Production"]["drift"] is False
    assert by_stage["Preprod"]["recorded"]["version"] == "1.2.0" and by_stage["Preprod"]["drift"] is False
    events = httpx.get(f"{stack.api}/releases/{r3['id']}/events", timeout=30).json()["value"]
    assert [e["type"] for e in events].count("slotChanged") >= 2


def test_a_manual_swap_in_the_portal_shows_as_drift(stack: LocalStack) -> None:
    did = httpx.get(f"{stack.api}/definitions", timeout=30).json()["value"][0]["id"]
    assert stack.emulator is not None
    # what an operator does by hand in the portal: swap preprod and production
    from shared.adapters.arm_app_service import ArmAppService
    from shared.config import Settings
    from shared.domain.target import Target

    ArmAppService(Settings(arm_endpoint=stack.emulator.url, arm_auth="local-emulator")).swap(
        Target(SUB, RG, SITE), "preprod", "production")
    where = httpx.get(f"{stack.api}/definitions/{did}/environments", params={"verify": "true"}, timeout=30).json()
    production = next(s for s in where["stages"] if s["stage"] == "Production")
    assert production["drift"] is True and production["actual"]["version"] == "1.2.0"

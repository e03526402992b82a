"""A week of Tailspin's cadence on the local stack with an accelerated clock (one simulated hour
per real second): Dev on every build, Test at 03:00 London time on weekdays (the newest release
that passed Dev), Preprod by hand, Production after Preprod but only Monday to Thursday
09:00-16:00 London time. Every deployment must happen exactly once, at the right time."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2026, 11, 30, tzinfo=LONDON)  # winter: London time is UTC
SPEED = 3600
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg-tailspin",
          "site": "tailspin"}


def steps(slot: str) -> list[dict[str, Any]]:
    return [{"type": "deploy-package", "name": f"Deploy to {slot}"},
            {"type": "http-check", "name": "Health", "path": "/health", "expectStatus": 200,
             "timeoutSeconds": 36000, "intervalSeconds": 60}]


CADENCE = {
    "name": "Tailspin cadence",
    "artifacts": [{"alias": "web", "source": "tailspin-web", "trigger": {"enabled": True}}],
    "stages": [
        {"name": "Dev", "target": {**TARGET, "slot": "dev"}, "trigger": {"type": "afterRelease"},
         "steps": steps("dev")},
        {"name": "Test", "target": {**TARGET, "slot": "test"}, "steps": steps("test"),
         "trigger": {"type": "schedule", "stages": ["Dev"],
                     "schedules": [{"cron": "0 3 * * 1-5", "timeZone": "Europe/London"}]}},
        {"name": "Preprod", "target": {**TARGET, "slot": "preprod"}, "trigger": {"type": "manual"},
         "steps": steps("preprod")},
        {"name": "Production", "target": TARGET, "trigger": {"type": "afterStages", "stages": ["Preprod"]},
         "steps": steps("production"),
         "windows": [{"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "16:00",
                      "timeZone": "Europe/London"}]},
    ],
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # One clock for the stack: the host's timers run on it, so the default schedules (every simulated
    # minute) fire about 60 times a real second; the sweeper every 15 simulated minutes is plenty.
    settings = {"SLIPWAY_CLOCK_START": MONDAY.isoformat(), "SLIPWAY_CLOCK_SPEED": str(SPEED),
                "SLIPWAY_SWEEP_SCHEDULE": "0 */15 * * * *"}
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1,
                    extra_settings=settings) as running:
        yield running


def now() -> datetime:
    from shared import bootstrap

    return bootstrap.deps().clock.now().astimezone(LONDON)


def until(day: int, hour: int) -> None:
    """Sleep until the simulated London time is `day` days after Monday 00:00, at `hour`."""
    target = MONDAY + timedelta(days=day, hours=hour)
    while now() < target:
        time.sleep(0.02)


def deployments(stack: LocalStack, definition_id: int) -> list[dict[str, Any]]:
    """Every deployment of every release: release version, stage, attempt, first step start (London)."""
    listed = httpx.get(f"{stack.api}/releases", params={"definitionId": str(definition_id), "top": "100"},
                       timeout=30).json()["value"]
    out = []
    for summary in listed:
        release = httpx.get(f"{stack.api}/releases/{summary['id']}", timeout=30).json()
        for stage in release["stages"]:
            for dep in stage["deployments"]:
                first = dep["steps"][0]["startedOn"] if dep["steps"] else None
                out.append({"version": release["artifacts"][0]["version"], "stage": stage["name"],
                            "status": dep["status"], "reason": dep["reason"],
                            "started": datetime.fromisoformat(first).astimezone(LONDON) if first else None})
    return out


def test_a_week_of_tailspin(stack: LocalStack) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    created = httpx.post(f"{stack.api}/definitions", json=CADENCE, timeout=30)
    assert created.status_code == 201, created.text
    did = created.json()["id"]
    connection = stack.azurite.connection_string

    def build(version: str) -> int:
        answer = sample_build.publish(version=version, storage_connection=connection, api=stack.api,
                                      source="tailspin-web")
        return int(answer.json()["releases"][0]["id"])

    def preprod(release_id: int) -> None:
        deployed = httpx.post(f"{stack.api}/releases/{release_id}/stages/Preprod/deploy", timeout=30)
        assert deployed.status_code == 202, deployed.text

    until(0, 10)
    build("1.0.0")                  # Mon 10:00
    until(0, 15)
    build("1.1.0")                  # Mon 15:00; Tue 03:00 takes this one, never 1.0.0
    until(1, 11)
    r3 = build("1.2.0")             # Tue 11:00; Wed 03:00 takes it
    until(2, 10)
    preprod(r3)                     # Wed 10:00: Preprod, then Production inside Wednesday's window
    until(3, 14)
    r4 = build("1.3.0")             # Thu 14:00; Thu 03:00 had nothing new, Fri 03:00 takes it
    until(4, 10)
    preprod(r4)                     # Fri 10:00: Production waits for Monday 09:00
    until(7, 12)                    # next Monday noon

    got = deployments(stack, did)
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for dep in got:
        by_stage.setdefault(dep["stage"], []).append(dep)
    summary = {stage: sorted((d["version"], d["status"], d["started"].strftime("%a %H:%M") if d["started"] else None)
                             for d in deps) for stage, deps in by_stage.items()}
    assert all(d["status"] == "succeeded" for d in got), summary

    assert sorted(d["version"] for d in by_stage["Dev"]) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"], summary
    assert sorted(d["version"] for d in by_stage["Test"]) == ["1.1.0", "1.2.0", "1.3.0"], summary
    test_days = {d["version"]: d["started"] for d in by_stage["Test"]}
    for version, day in (("1.1.0", 1), ("1.2.0", 2), ("1.3.0", 4)):
        start = MONDAY + timedelta(days=day, hours=3)
        assert start <= test_days[version] < start + timedelta(hours=2), summary
    assert all(d["reason"] == "scheduled" for d in by_stage["Test"])

    assert sorted(d["version"] for d in by_stage["Preprod"]) == ["1.2.0", "1.3.0"], summary
    production = {d["version"]: d["started"] for d in by_stage["Production"]}
    assert sorted(production) == ["1.2.0", "1.3.0"], summary
    wednesday, monday = MONDAY + timedelta(days=2, hours=10), MONDAY + timedelta(days=7, hours=9)
    # Wednesday's window, or Thursday's opening when a busy machine took longer than Wednesday's six simulated
    # hours (six real seconds) to finish Preprod: either way inside a window, as the loop below holds it
    assert wednesday <= production["1.2.0"] < MONDAY + timedelta(days=3, hours=10), summary
    assert monday <= production["1.3.0"] < monday + timedelta(hours=2), summary
    for started in production.values():
        assert started.weekday() < 4 and 9 <= started.hour < 16, summary
    slots = httpx.get(f"{stack.api}/definitions/{did}/environments", timeout=30).json()["stages"]
    assert {s["stage"]: (s["recorded"] or {}).get("version") for s in slots} == {
        "Dev": "1.3.0", "Test": "1.3.0", "Preprod": "1.3.0", "Production": "1.3.0"}

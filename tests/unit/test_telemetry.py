"""Telemetry events carry what the workbook and the alert query."""

from __future__ import annotations

import logging

import pytest

from shared import telemetry
from shared.domain.transitions import CompleteStep, StartRelease, decide
from tests.unit.test_transitions import NOW, TARGET, release


def test_a_failed_production_deployment_is_an_event_the_alert_finds(caplog: pytest.LogCaptureFixture) -> None:
    prod = {"name": "Production", "target": TARGET, "trigger": {"type": "afterRelease"},
            "steps": [{"type": "wait", "name": "w", "seconds": 0}]}
    rel = decide(release(prod), StartRelease(), NOW).release
    d = decide(rel, CompleteStep("Production", 1, 0, 1, False, "boom"), NOW)
    with caplog.at_level(logging.INFO, logger="slipway.telemetry"):
        telemetry.transitions(d.release, d.events)
    failed = [r for r in caplog.records if getattr(r, "event", "") == "deploymentFailed"]
    assert len(failed) == 1
    record = failed[0]
    assert getattr(record, "microsoft.custom_event.name") == "SlipwayTransition"
    assert record.production is True and record.status == "failed" and record.stage == "Production"  # type: ignore[attr-defined]

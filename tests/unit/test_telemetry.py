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


def test_waits_are_apart_from_execution(caplog: pytest.LogCaptureFixture) -> None:
    from datetime import timedelta

    from shared.domain.gates import Reading
    from shared.domain.transitions import CastVote, DeployStage, GateClaim, GateSample
    from tests.unit.test_gates import ADMIN

    prod = {"name": "Production", "target": TARGET, "trigger": {"type": "manual"},
            "steps": [{"type": "wait", "name": "w", "seconds": 0}], "preApprovals": {"approvers": ["ops@contoso.com"]},
            "postGates": {"signals": [{"name": "alerts", "type": "alerts"}], "intervalMinutes": 1,
                          "timeoutMinutes": 30}}
    rel = decide(release(prod), DeployStage("Production", "amita"), NOW).release
    at = NOW + timedelta(minutes=20)  # approved 20 minutes later
    rel = decide(rel, CastVote("Production", 1, "pre", ADMIN, "approve"), at).release
    step = rel.stages["Production"].current.steps[0]  # type: ignore[union-attr]
    at += timedelta(seconds=30)  # the step ran 30 s
    rel = decide(rel, CompleteStep("Production", 1, 0, step.run, True), at).release
    at += timedelta(minutes=2)  # the gate's sample two minutes later passes
    rel = decide(rel, GateClaim("Production", 1, "post", 1, "t"), at).release
    d = decide(rel, GateSample("Production", 1, "post", 1, "t", (Reading("alerts", value=0.0),)), at)
    with caplog.at_level(logging.INFO, logger="slipway.telemetry"):
        telemetry.transitions(d.release, d.events)
    [done] = [r for r in caplog.records if getattr(r, "event", "") == "deploymentSucceeded"]
    assert done.approvalWaitMs == 20 * 60_000  # type: ignore[attr-defined]
    assert done.executionMs == 30_000 and done.gateWaitMs == 2 * 60_000  # type: ignore[attr-defined]

"""One custom event per state transition, for Application Insights workbooks and alerts.

Each event is a log record on the `slipway.telemetry` logger whose attributes carry
`microsoft.custom_event.name`: the Azure Monitor OpenTelemetry exporter turns such records into
`customEvents` rows named `SlipwayTransition`, with these fields in `customDimensions`:
event, definition, release, stage, attempt, status, production, queueWaitMs, approvalWaitMs,
gateWaitMs, executionMs. Locally they are plain log lines.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.domain.delivery_metrics import approval_span, execution_seconds
from shared.domain.release import Release
from shared.domain.target import Target
from shared.domain.transitions.results import Event

logger = logging.getLogger("slipway.telemetry")
EVENT_NAME = "SlipwayTransition"


def transitions(release: Release, events: list[Event]) -> None:
    for event in events:
        if event.type.startswith(("deployment", "release", "slot", "swapBack")):
            logger.info("%s release=%s stage=%s", event.type, release.id, event.stage,
                        extra={"microsoft.custom_event.name": EVENT_NAME, **_fields(release, event)})


def _fields(release: Release, event: Event) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": event.type, "definition": release.definition_id, "release": release.id,
                              "stage": event.stage or "", "attempt": event.attempt or 0, "status": "",
                              "production": False, "queueWaitMs": 0.0, "approvalWaitMs": 0.0, "gateWaitMs": 0.0,
                              "executionMs": 0.0}
    run = release.stages.get(event.stage or "")
    if run is None or event.attempt is None or not 1 <= event.attempt <= len(run.deployments):
        return fields
    dep = run.deployments[event.attempt - 1]
    target = next((s.get("target") for s in release.definition["stages"] if s["name"] == event.stage), None)
    fields["production"] = target is not None and Target.from_dict(target).is_production
    fields["status"] = dep.status
    if dep.started_at:
        fields["queueWaitMs"] = _ms(dep.queued_at, dep.started_at)
    spans = [span for a in dep.approvals.values() if (span := approval_span(a, dep)) is not None]
    fields["approvalWaitMs"] = sum((end - start).total_seconds() for start, end in spans) * 1000
    fields["gateWaitMs"] = sum(_ms(g.started_at, g.samples[-1]["at"]) for g in dep.gates.values() if g.samples)
    fields["executionMs"] = (execution_seconds(dep) or 0.0) * 1000  # the steps only: waits are apart
    return fields


def _ms(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000

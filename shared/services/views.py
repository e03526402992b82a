"""JSON shapes the API answers with (names follow Azure DevOps where it has one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.domain.gates import GateRun
from shared.domain.plan import environment_target
from shared.domain.release import Deployment, Release
from shared.domain.stage_order import in_pipeline_order
from shared.domain.target import Target
from shared.domain.waiting import why
from shared.services.artifacts import public


def release_view(release: Release, base: str = "/api", running: dict[str, dict[str, Any]] | None = None,
                 retention: dict[str, Any] | None = None) -> dict[str, Any]:
    """`running` maps slot resource ids (lower case) to what Slipway last put there; `retention` is when the
    release will be removed and why it is kept (`shared/services/retention.verdict`), shown when given."""
    href = f"{base}/releases/{release.id}"
    running = running or {}
    return {
        "id": release.id,
        "name": release.name,
        "status": release.status,
        "definitionId": int(release.definition_id),
        "definitionRevision": release.revision,
        "definitionName": release.definition.get("name"),
        "description": release.description,
        "reason": release.reason,
        "debug": release.debug,
        "createdBy": release.created_by,
        "createdOn": release.created_at,
        "artifacts": [public(a) for a in release.artifacts],
        "stages": [
            {
                "name": name,
                "status": run.status,
                "waitingFor": why(release, name),
                "target": _target(release, name),
                "nowRunning": _now_running(running, _environment(release, name)),
                "deployments": [_deployment(d, f"{href}/stages/{quote(name, safe='')}") for d in run.deployments],
            }
            for name, run in in_pipeline_order(release.definition["stages"], release.stages)
        ],
        "links": {"self": href, "events": f"{href}/events"},
        **({"retention": retention} if retention is not None else {}),
    }


def _target(release: Release, stage: str) -> dict[str, Any] | None:
    return next((s.get("target") for s in release.definition["stages"] if s["name"] == stage), None)


def _environment(release: Release, stage: str) -> dict[str, Any] | None:
    return next((environment_target(s) for s in release.definition["stages"] if s["name"] == stage), None)


def _now_running(running: dict[str, dict[str, Any]], target: dict[str, Any] | None) -> dict[str, Any] | None:
    """What Slipway last saw in the stage's slot; None when that is no release of Slipway's (the empty
    slot a first swap leaves behind records `releaseId: None`: it runs nothing to link to)."""
    if not target:
        return None
    return now_running(running.get(Target.from_dict(target).resource_id.lower()))


def now_running(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A slot record as answers show it: the release, its version, how it got there and when it was
    seen (`seenAt`, the time the slot was read), or None for a slot without a release of Slipway's."""
    if record is None or record.get("releaseId") is None:
        return None
    return {"releaseId": record["releaseId"], "version": record.get("version"), "how": record.get("how"),
            "at": record.get("seenAt")}


def _deployment(dep: Deployment, stage_href: str) -> dict[str, Any]:
    href = f"{stage_href}/deployments/{dep.attempt}"
    return {
        "attempt": dep.attempt,
        "status": dep.status,
        "reason": dep.reason,
        "requestedBy": dep.requested_by,
        "queuedOn": dep.queued_at,
        "startedOn": dep.started_at,
        "finishedOn": dep.finished_at,
        "failure": dep.failure,
        "phase": dep.phase,
        "approvals": {kind: {"status": a.status, "approvers": a.approvers, "policy": a.policy,
                             "requestedAt": a.requested_at, "deadline": a.deadline,
                             "waitingFor": a.waiting_for() if a.status == "pending" else [],
                             "deferredUntil": a.deferred_until, "history": a.history,
                             "votes": [{"by": v.by, "decision": v.decision, "comment": v.comment, "at": v.at,
                                        "override": v.override, "selfOverride": v.self_override}
                                       for v in a.votes]}
                      for kind, a in dep.approvals.items()},
        "gates": {kind: _gate(g) for kind, g in dep.gates.items()},
        "variables": dict(dep.variables),
        "whatIf": [{"step": int(k), "name": dep.steps[int(k)].name if int(k) < len(dep.steps) else "", **v}
                   for k, v in sorted(dep.previews.items(), key=lambda kv: int(kv[0]))],
        "steps": [
            {"index": s.index, "name": s.name, "type": s.type, "status": s.status, "startedOn": s.started_at,
             "finishedOn": s.finished_at, "message": s.message, "log": f"{href}/steps/{s.index}/log",
             **({"intervention": dict(s.state["intervention"])} if "intervention" in s.state else {}),
             **({"outputs": dict(s.state["outputs"])} if s.state.get("outputs") else {}),
             **({"changes": list(s.state["changes"])} if s.state.get("changes") else {})}
            for s in dep.steps
        ],
    }


def _gate(gate: GateRun) -> dict[str, Any]:
    return {"kind": gate.kind, "status": gate.status, "startedAt": gate.started_at, "evaluateFrom": gate.evaluate_from,
            "deadline": gate.deadline, "nextAt": gate.next_at, "greenSince": gate.green_since,
            "sampleCount": gate.sample_count, "failedSamples": gate.failed, "inconclusiveSamples": gate.inconclusive,
            "errorsInRow": gate.errors_in_row, "reason": gate.reason, "ignoredBy": gate.ignored_by,
            "samples": gate.samples}


def release_summary(release: Release) -> dict[str, Any]:
    pending = [{"stage": name, "kind": kind, "waitingFor": a.waiting_for(), "since": a.requested_at}
               for name, run in release.stages.items() if run.current is not None
               for kind, a in run.current.approvals.items() if a.status == "pending"]
    return {"id": release.id, "name": release.name, "status": release.status,
            "definitionId": int(release.definition_id), "createdOn": release.created_at,
            "createdBy": release.created_by, "reason": release.reason,
            "stages": {name: run.status for name, run in in_pipeline_order(release.definition["stages"],
                                                                           release.stages)},
            "pendingApprovals": pending}

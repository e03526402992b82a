"""Slipway's releases and definitions in Azure DevOps' shapes: what the official client's models read
(checked with its own deserializer), the statuses and ids they carry, and no secret anywhere."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="ado-cache-"))  # the client makes it

import pytest  # noqa: E402
from azure.devops.v7_1.release import models  # noqa: E402
from msrest import Deserializer  # noqa: E402

from shared.domain.access import Principal  # noqa: E402
from shared.domain.release import Deployment, Release, StepRun  # noqa: E402
from shared.domain.transitions import (  # noqa: E402
    CastVote,
    CompleteStep,
    DeployStage,
    IgnoreGate,
    Intervene,
    StartRelease,
    decide,
)
from shared.domain.vocabulary import Choice, Kind, Phase, Reason, Status, StepStatus  # noqa: E402
from shared.records import Head  # noqa: E402
from shared.schemas.definition import parse_definition  # noqa: E402
from shared.services.ado_compat import definitions, ids, refs, release_views, statuses  # noqa: E402
from shared.services.ado_compat.approval_views import all_approvals, all_interventions  # noqa: E402
from shared.services.ado_compat.context import ReleaseContext  # noqa: E402
from shared.services.ado_compat.schedules import cron_schedule, release_schedule  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SITE = refs.Site("https://slipway.example", "Contoso", "Web Shop/ü")
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}
SECRET = "@Microsoft.KeyVault(SecretUri=https://vault.vault.azure.net/secrets/db-password)"
TIM = Principal("tim@contoso.com", frozenset({"ops"}), frozenset({"reader"}))
ADA = Principal("ada@contoso.com", roles=frozenset({"admin"}))
CLIENT = Deserializer({k: v for k, v in models.__dict__.items() if isinstance(v, type)})
DEFINITION = {
    "name": "Tailspin", "releaseNameFormat": "Release-$(rev:r)",
    "variables": {"DbPassword": SECRET, "Color": {"value": "blue", "allowOverride": True}},
    "artifacts": [{"alias": "web", "source": "tailspin-web", "isPrimary": True}],
    "stages": [
        {"name": "Dev", "target": TARGET, "trigger": {"type": "afterRelease"},
         "steps": [{"type": "wait", "name": "settle", "seconds": 0}]},
        {"name": "QA", "target": TARGET, "trigger": {"type": "afterStages", "stages": ["Dev"]},
         "preGates": {"delayMinutes": 60, "intervalMinutes": 5, "timeoutMinutes": 120,
                      "signals": [{"type": "rest", "name": "Health", "url": "https://qa.example/health?sig=x",
                                   "operator": "==", "threshold": True}]},
         "steps": [{"type": "manual-intervention", "name": "Check by hand", "instructions": "Look at QA",
                    "assignees": ["tim@contoso.com"]}, {"type": "wait", "name": "settle", "seconds": 0}]},
        {"name": "Prod", "target": TARGET, "trigger": {"type": "manual"},
         "variables": {"ApiKey": SECRET},
         "preApprovals": {"approvers": ["tim@contoso.com", "ops"], "policy": "allInSequence"},
         "steps": [{"type": "wait", "name": "settle", "seconds": 0}]},
    ],
}


def finish(rel: Release, stage: str) -> Release:
    for _ in range(10):
        dep = rel.stages[stage].current
        assert dep is not None
        live = next((s for s in dep.steps if s.status == StepStatus.IN_PROGRESS and "intervention" not in s.state),
                    None)
        if live is None:
            return rel
        rel = decide(rel, CompleteStep(stage, dep.attempt, live.index, live.run, True), NOW).release
    return rel


def story() -> Release:
    """Dev deployed; QA's gate ignored and its intervention resumed; Prod rejected by Tim once, then
    deployed again and approved by Tim, waiting for ops."""
    rel = Release.new(id=41, definition_id="9", revision=3, name="Release-41", created_at=NOW.isoformat(),
                      created_by="amita@contoso.com", reason="manual", description="the first",
                      artifacts=[{"alias": "web", "source": "tailspin-web", "version": "1.2.3", "buildId": "77",
                                  "isPrimary": True, "branch": "refs/heads/main"}],
                      definition=json.loads(json.dumps(DEFINITION)), variables={"Color": "green"})
    rel = finish(decide(rel, StartRelease(), NOW).release, "Dev")
    assert rel.stages["QA"].current is not None and rel.stages["QA"].current.phase == Phase.PRE_GATE
    rel = decide(rel, IgnoreGate("QA", Kind.PRE, ADA, "known noisy probe"), NOW).release
    rel = decide(rel, Intervene("QA", 1, 0, TIM, True, "looks fine"), NOW).release
    rel = finish(rel, "QA")
    rel = decide(rel, DeployStage("Prod", "amita@contoso.com"), NOW).release
    rel = decide(rel, CastVote("Prod", 1, Kind.PRE, TIM, Choice.REJECT, "not today"), NOW).release
    later = NOW + timedelta(hours=1)
    rel = decide(rel, DeployStage("Prod", "amita@contoso.com"), later).release
    return decide(rel, CastVote("Prod", 2, Kind.PRE, TIM, Choice.APPROVE, "go"), later).release


def test_a_release_is_what_the_official_client_reads() -> None:
    shown = release_views.release(ReleaseContext(SITE, story()))
    read = CLIENT("Release", shown)
    assert (read.id, read.name, read.status, read.reason) == (41, "Release-41", "active", "manual")
    assert read.release_definition.id == 9 and read.project_reference.name == "Web Shop/ü"
    assert read.url == "https://slipway.example/ado/Contoso/Web%20Shop%2F%C3%BC/_apis/Release/releases/41"
    assert [(e.name, e.status, e.rank) for e in read.environments] == [
        ("Dev", "succeeded", 1), ("QA", "succeeded", 2), ("Prod", "inProgress", 3)]
    assert [e.id for e in read.environments] == [ids.environment_id(41, i) for i in range(3)]
    assert read.artifacts[0].definition_reference["version"].name == "1.2.3"
    assert read.artifacts[0].definition_reference["version"].id == "77"
    assert read.environments[1].conditions[0].name == "Dev" and read.environments[1].conditions[0].result is True


def test_a_deployment_shows_its_phase_tasks_gates_and_interventions() -> None:
    qa = release_views.environment(ReleaseContext(SITE, story()), "QA")
    read = CLIENT("ReleaseEnvironment", qa)
    [attempt] = read.deploy_steps
    assert attempt.id == ids.deployment_id(41, 1, 1) and (attempt.status, attempt.operation_status) == (
        "succeeded", "phaseSucceeded")
    gate = attempt.pre_deployment_gates
    assert ids.decode(ids.GATE, gate.id) == ids.Parts(41, 1, 1, ids.PRE)
    assert gate.status == "succeeded" and [g.name for g in gate.ignored_gates] == ["Health"]
    [phase] = attempt.release_deploy_phases
    assert phase.id == attempt.id and [t.name for t in phase.deployment_jobs[0].tasks] == ["Check by hand", "settle"]
    assert phase.deployment_jobs[0].tasks[1].log_url.endswith(
        f"/releases/41/environments/{qa['id']}/deployPhases/{attempt.id}/tasks/2/logs")
    [intervention] = phase.manual_interventions
    assert (intervention.status, intervention.comments, intervention.approver.unique_name) == (
        "approved", "looks fine", "tim@contoso.com")
    assert read.pre_deployment_gates_snapshot.gates_options.stabilization_time == 60
    assert read.pre_deployment_gates_snapshot.gates[0].tasks[0].inputs["urlSuffix"] == "https://qa.example/health"


def test_one_approval_per_approver_entry_with_its_own_status() -> None:
    ctx = ReleaseContext(SITE, story())
    found = [CLIENT("ReleaseApproval", a) for a in all_approvals(ctx)]
    assert [(a.attempt, a.approver.unique_name, a.status, a.rank) for a in found] == [
        (2, "tim@contoso.com", "approved", 1), (2, "ops", "pending", 2),
        (1, "tim@contoso.com", "rejected", 1), (1, "ops", "skipped", 2)]
    assert found[0].approved_by.unique_name == "tim@contoso.com" and found[0].comments == "go"
    assert ids.decode(ids.APPROVAL, found[1].id) == ids.Parts(41, 2, 2, ids.PRE, 1)
    assert found[1].release_environment.id == ids.environment_id(41, 2) and found[1].approval_type == "preDeploy"


def test_deployments_list_entries_are_what_the_client_reads() -> None:
    ctx = ReleaseContext(SITE, story())
    run = ctx.release.stages["Prod"]
    read = [CLIENT("Deployment", release_views.deployment(ctx, "Prod", d)) for d in run.deployments]
    assert [(d.attempt, d.deployment_status, d.operation_status, d.reason) for d in read] == [
        (1, "notDeployed", "rejected", "manual"), (2, "notDeployed", "pending", "manual")]
    assert read[1].definition_environment_id == ids.definition_environment_id(9, 2)
    assert read[1].release.artifacts[0].alias == "web"


def test_interventions_of_a_release() -> None:
    [found] = [CLIENT("ManualIntervention", i) for i in all_interventions(ReleaseContext(SITE, story()))]
    assert ids.decode(ids.INTERVENTION, found.id) == ids.Parts(41, 1, 1, index=0)
    assert found.name == "Check by hand" and found.instructions == "Look at QA"


def test_no_secret_and_no_reference_to_one_is_shown() -> None:
    rel = story()
    text = json.dumps(release_views.release(ReleaseContext(SITE, rel)))
    assert "vault.azure.net" not in text and "sig=x" not in text
    shown = release_views.release(ReleaseContext(SITE, rel))
    assert shown["variables"]["DbPassword"] == {"isSecret": True, "allowOverride": False}
    assert shown["variables"]["Color"] == {"value": "green", "isSecret": False}
    assert shown["environments"][2]["variables"]["ApiKey"] == {"isSecret": True, "allowOverride": False}


DEPLOYMENTS = [
    # status, phase, steps started, gate failed -> (deploymentStatus, operationStatus)
    (Status.QUEUED, Phase.QUEUED, False, False, ("notDeployed", "queued")),
    (Status.IN_PROGRESS, Phase.PRE_APPROVAL, False, False, ("notDeployed", "pending")),
    (Status.IN_PROGRESS, Phase.PRE_GATE, False, False, ("notDeployed", "evaluatingGates")),
    (Status.IN_PROGRESS, Phase.DEFERRED, False, False, ("notDeployed", "deferred")),
    (Status.IN_PROGRESS, Phase.STEPS, True, False, ("inProgress", "phaseInProgress")),
    (Status.IN_PROGRESS, Phase.INTERVENTION, True, False, ("inProgress", "manualInterventionPending")),
    (Status.SUCCEEDED, Phase.STEPS, True, False, ("succeeded", "phaseSucceeded")),
    (Status.PARTIALLY_SUCCEEDED, Phase.STEPS, True, False, ("partiallySucceeded", "phasePartiallySucceeded")),
    (Status.FAILED, Phase.STEPS, True, False, ("failed", "phaseFailed")),
    (Status.REJECTED, Phase.PRE_APPROVAL, False, False, ("notDeployed", "rejected")),
    (Status.REJECTED, Phase.POST_APPROVAL, True, False, ("failed", "rejected")),
    (Status.CANCELED, Phase.QUEUED, False, False, ("notDeployed", "canceled")),
    (Status.CANCELED, Phase.STEPS, True, False, ("failed", "phaseCanceled")),
]


@pytest.mark.parametrize(("status", "phase", "ran", "gate_failed", "expected"), DEPLOYMENTS)
def test_deployment_statuses_in_azure_devops_words(status: Status, phase: Phase, ran: bool, gate_failed: bool,
                                                   expected: tuple[str, str]) -> None:
    step = StepRun(0, "wait", "settle", started_at=NOW.isoformat() if ran else None)
    dep = Deployment(1, status, Reason.MANUAL, "amita", NOW.isoformat(), phase=phase, steps=[step])
    assert statuses.deployment(dep) == expected


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "examples").glob("*-pipeline.json")),
                         ids=lambda p: p.name)
def test_every_example_definition_is_a_release_definition_the_client_reads(path: Path) -> None:
    body = {**parse_definition(json.loads(path.read_text())), "id": 5, "revision": 2, "modifiedBy": "ada",
            "modifiedOn": NOW.isoformat()}
    shown = definitions.definition(SITE, Head(5, body["name"], 2, created_at=NOW.isoformat()), body)
    read = CLIENT("ReleaseDefinition", shown)
    assert read.id == 5 and read.revision == 2 and read.modified_by.unique_name == "ada"
    assert [e.name for e in read.environments] == [s["name"] for s in body["stages"]]
    assert [e.rank for e in read.environments] == list(range(1, len(body["stages"]) + 1))
    assert all(ids.decode(ids.DEFINITION_ENVIRONMENT, e.id).owner == 5 for e in read.environments)
    assert "KeyVault" not in json.dumps(shown) and "sig=" not in json.dumps(shown)


def test_triggers_approvals_and_schedules_in_definition_terms() -> None:
    body: dict[str, Any] = json.loads(json.dumps(DEFINITION))
    body["artifacts"][0]["trigger"] = {"enabled": True, "branches": {"include": ["main"], "exclude": []}}
    body["releaseSchedules"] = [{"days": ["Mon", "Fri"], "time": "03:30", "timeZone": "Europe/London"}]
    body["stages"][0]["trigger"] = {"type": "schedule", "schedules": [{"cron": "0 2 * * 1-5", "timeZone": "UTC"}]}
    shown = definitions.definition(SITE, Head(9, "Tailspin", 1), body)
    read = CLIENT("ReleaseDefinition", shown)
    assert shown["triggers"][0]["triggerConditions"][0]["sourceBranch"] == "main"
    assert shown["triggers"][1]["schedule"] == {"daysToRelease": "monday, friday", "startHours": 3,
                                                "startMinutes": 30, "timeZoneId": "Europe/London",
                                                "scheduleOnlyWithChanges": False}
    dev, qa, prod = read.environments
    assert dev.schedules[0].days_to_release == "monday, tuesday, wednesday, thursday, friday"
    assert [(c.name, c.condition_type, c.value) for c in qa.conditions] == [("Dev", "environmentState", "4")]
    assert prod.conditions == [] and prod.pre_deploy_approvals.approval_options.release_creator_can_be_approver is False
    assert [a.rank for a in prod.pre_deploy_approvals.approvals] == [1, 2]
    assert dev.pre_deploy_approvals.approvals[0].is_automated is True
    assert prod.variables["ApiKey"].is_secret is True and prod.variables["ApiKey"].value is None


@pytest.mark.parametrize(("cron", "days"), [("0 3 * * *", "all"), ("15 22 * * 0,6", "saturday, sunday"),
                                            ("0 3 1 * *", None), ("*/5 * * * *", None)])
def test_a_stage_schedule_needs_a_time_of_day_on_weekdays(cron: str, days: str | None) -> None:
    found = cron_schedule({"cron": cron})
    assert (found["daysToRelease"] if found else None) == days
    assert release_schedule({"days": [], "time": "00:00"})["daysToRelease"] == "none"

"""The Azure DevOps definition importer, as tables: enums, day masks, time zones, conditions, approvals, gates
and tasks each in → what the Slipway definition holds; every imported definition is checked with the same
`parse_definition` the API uses, so a mapping that writes something Slipway refuses fails here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.ado_import import ImportOptions, ImportResult, ReportEntry, import_definition
from shared.domain.ado_import.enums import (
    APPROVAL_EXECUTION_ORDER,
    CONDITION_TYPE,
    DEPLOY_PHASE_TYPES,
    RELEASE_TRIGGER_TYPE,
    SCHEDULE_DAYS,
)
from shared.domain.ado_import.refs import ALWAYS_DEFINED
from shared.domain.ado_import.triggers import cron_days
from shared.domain.ado_import.zones import WINDOWS_ZONES, iana_zone
from shared.domain.errors import Invalid
from shared.domain.variables import expand
from shared.schemas.definition import parse_definition

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "shared" / "ado-samples" / "definitions").glob("*.json"))
KINDS = {"definition", "artifact", "trigger", "stage", "condition", "approval", "gate", "schedule", "variable",
         "variableGroup", "task", "option"}
OUTCOMES = {"mapped", "changed", "replaced", "dropped"}

WEB_APP_DEPLOYMENT = "497d490f-eea7-4f2b-ab94-48d9c1acdcb1"
FUNCTION_APP = "501dd25d-1785-43e4-b4e5-a5c78ccc0573"
WEB_APP = "18bde28a-8172-45cb-b204-5cef1393dbb1"
MANAGE = "f045e430-8704-11e6-968f-e717e6411619"
SETTINGS = "3eeea460-bffa-11e9-9cb5-2a2ae2dbcce4"
ARM = "94a74903-f93f-4075-884f-dc11f34058b4"
DELAY = "28782b92-5e8e-4458-9751-a71cd1492bae"
INVOKE_REST_API = "9c3e8943-130d-4c78-ac63-8af81df62dfb"
AZURE_FUNCTION = "537fdb7a-a601-4537-aa70-92645a2b5ce4"
MANUAL_INTERVENTION = "bcb64569-d51a-4af0-9c01-ea5d05b3b622"
AZURE_MONITOR = "99a72e7f-25e4-4576-bf38-22a42b995ed8"
QUERY_WORK_ITEMS = "f1e4b0e6-017e-4819-8a48-ef19ae96e289"
DACPAC = "ce85a08b-a538-4d2b-8589-1d37a9ab970f"
AZURE_CLI = "46e4be58-730b-4389-8a2f-ea10b3e5e815"
POWERSHELL = "e213ff0f-5d5c-4791-802d-52ea3e7be1f1"
AZURE_POWERSHELL = "72a1931b-effb-4d2e-8fd8-f8472a07cb62"
BASH = "6c731c3c-3c68-459a-a5c9-bde6e6595b5b"
CMD_LINE = "d9bafed4-0b18-4f58-968d-86655b4d2ce9"
VSTEST = "ef087383-ee5e-42c7-9a53-ab56c98420f9"
DRY = "$(System.DefaultWorkingDirectory)/drop"
"""Where the agent puts artifact `drop`."""


# -- building documents ------------------------------------------------------------------------------------

def task(task_id: str, inputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"taskId": task_id, "version": extra.pop("version", "4.*"), "name": extra.pop("name", "the task"),
            "enabled": True, "continueOnError": False, "condition": "succeeded()", "inputs": inputs or {}, **extra}


def environment(name: str = "Dev", rank: int = 1, tasks: list[dict[str, Any]] | None = None,
                **extra: Any) -> dict[str, Any]:
    automated = {"approvals": [{"rank": 1, "isAutomated": True}]}
    return {"name": name, "rank": rank, "variables": {}, "preDeployApprovals": automated,
            "postDeployApprovals": automated,
            "deployPhases": [{"rank": 1, "phaseType": "agentBasedDeployment", "name": "Run on agent",
                              "workflowTasks": tasks or []}],
            "conditions": [{"name": "ReleaseStarted", "conditionType": "event", "value": ""}],
            "preDeploymentGates": {"gatesOptions": None, "gates": []},
            "postDeploymentGates": {"gatesOptions": None, "gates": []}, **extra}


def document(*environments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "Web", "variables": {"Site": {"value": "contoso-web"}, "Group": {"value": "rg-web"},
                                         "Token": {"value": "hunter22", "isSecret": True}},
            "environments": list(environments) or [environment()],
            "artifacts": [{"alias": "drop", "type": "Build", "isPrimary": True,
                           "definitionReference": {"definition": {"id": "7", "name": "web-ci"}}}],
            "triggers": [], "releaseNameFormat": "Release-$(rev:r)", **extra}


def imported(doc: dict[str, Any], **options: Any) -> ImportResult:
    """Import, and check the result the way the API will: Slipway's own definition validation."""
    result = import_definition(doc, ImportOptions(**options))
    parse_definition(copy.deepcopy(result.definition))
    return result


def entry(result: ImportResult, path: str) -> ReportEntry:
    found = [e for e in result.report if e.path == path]
    assert len(found) == 1, f"{path}: {[e.path for e in result.report]}"
    return found[0]


def one_task(task_id: str, inputs: dict[str, Any] | None = None, **extra: Any) -> tuple[dict[str, Any] | None,
                                                                                          ReportEntry]:
    """The step (or None) and the report entry of a stage with this one task."""
    result = imported(document(environment(tasks=[task(task_id, inputs, **extra)])))
    row = entry(result, "$.environments[0].deployPhases[0].workflowTasks[0]")
    steps = result.definition["stages"][0]["steps"]
    return (steps[0] if steps else None), row


# -- enums -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("enum", "given", "expected"), [
    (CONDITION_TYPE, "environmentState", "environmentState"),
    (CONDITION_TYPE, "EnvironmentState", "environmentState"),
    (CONDITION_TYPE, "ENVIRONMENTSTATE", "environmentState"),
    (CONDITION_TYPE, 2, "environmentState"),
    (CONDITION_TYPE, "2", "environmentState"),
    (CONDITION_TYPE, 1, "event"),
    (CONDITION_TYPE, 4, "artifact"),
    (CONDITION_TYPE, 3, None),
    (CONDITION_TYPE, "environment state", None),
    (CONDITION_TYPE, None, None),
    (CONDITION_TYPE, True, None),
    (CONDITION_TYPE, 2.5, None),
    (APPROVAL_EXECUTION_ORDER, "beforeGates", "beforeGates"),
    (APPROVAL_EXECUTION_ORDER, "AfterSuccessfulGates", "afterSuccessfulGates"),
    (APPROVAL_EXECUTION_ORDER, 4, "afterGatesAlways"),
    (RELEASE_TRIGGER_TYPE, "artifactSource", "artifactSource"),
    (RELEASE_TRIGGER_TYPE, 1, "artifactSource"),
    (RELEASE_TRIGGER_TYPE, 2, "schedule"),
    (RELEASE_TRIGGER_TYPE, "PullRequest", "pullRequest"),
    (DEPLOY_PHASE_TYPES, 1, "agentBasedDeployment"),
    (DEPLOY_PHASE_TYPES, "runOnServer", "runOnServer"),
    (DEPLOY_PHASE_TYPES, 4, "machineGroupBasedDeployment"),
])
def test_enum_names_in_any_case_and_numbers(enum: Any, given: Any, expected: str | None) -> None:
    assert enum.parse(given) == expected


@pytest.mark.parametrize(("given", "mask"), [
    (31, 31), ("31", 31), ("all", 127), ("Monday", 1), ("monday, tuesday", 3), ("Saturday|Sunday", 96),
    ("friday wednesday", 20), ("noday", None), ("", None), (None, None), (-1, None), ({"a": 1}, None),
])
def test_schedule_days_flags(given: Any, mask: int | None) -> None:
    assert SCHEDULE_DAYS.flags(given) == mask


# -- day masks, zones --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mask", "cron"), [
    (1, "1"), (2, "2"), (4, "3"), (8, "4"), (16, "5"), (32, "6"), (64, "0"),
    (31, "1,2,3,4,5"), (96, "0,6"), (65, "0,1"), (127, "*"), (255, "*"), (0, None), (128, None),
])
def test_day_masks_as_cron_days(mask: int, cron: str | None) -> None:
    assert cron_days(mask) == cron


@pytest.mark.parametrize(("windows", "iana"), [
    ("UTC", "UTC"), ("W. Europe Standard Time", "Europe/Berlin"), ("w. europe standard time", "Europe/Berlin"),
    ("GMT Standard Time", "Europe/London"), ("Pacific Standard Time", "America/Los_Angeles"),
    ("Eastern Standard Time", "America/New_York"), ("India Standard Time", "Asia/Kolkata"),
    ("AUS Eastern Standard Time", "Australia/Sydney"), ("Tokyo Standard Time", "Asia/Tokyo"),
    ("FLE Standard Time", "Europe/Kyiv"), ("UTC-11", "Etc/GMT+11"), ("UTC+12", "Etc/GMT-12"),
    ("Europe/Paris", "Europe/Paris"), ("Mars Standard Time", None), ("", None), ("../../etc/passwd", None),
    ("a" * 200, None),
])
def test_windows_zones_as_iana(windows: str, iana: str | None) -> None:
    assert iana_zone(windows) == iana


@pytest.mark.parametrize("zone", sorted(set(WINDOWS_ZONES.values())))
def test_every_zone_of_the_table_exists(zone: str) -> None:
    ZoneInfo(zone)


# -- conditions and schedules → triggers -------------------------------------------------------------------

def _chain(conditions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return document(environment("Dev", 1), environment("QA", 2), environment("Prod", 3, conditions=conditions,
                                                                             **extra))


def state(name: str, value: Any = "4", kind: Any = "environmentState") -> dict[str, Any]:
    return {"name": name, "conditionType": kind, "value": value}


@pytest.mark.parametrize(("conditions", "trigger"), [
    ([], {"type": "manual"}),
    ([{"name": "ReleaseStarted", "conditionType": "event", "value": ""}], {"type": "afterRelease"}),
    ([{"name": "ReleaseStarted", "conditionType": 1, "value": ""}], {"type": "afterRelease"}),
    ([state("QA")], {"type": "afterStages", "stages": ["QA"]}),
    ([state("QA", "4", 2)], {"type": "afterStages", "stages": ["QA"]}),
    ([state("qa")], {"type": "afterStages", "stages": ["QA"]}),
    ([state("QA", 4)], {"type": "afterStages", "stages": ["QA"]}),
    ([state("QA", "")], {"type": "afterStages", "stages": ["QA"]}),
    ([state("QA", "12")], {"type": "afterStages", "stages": ["QA"], "allowPartialSuccess": True}),
    ([state("QA", "132")], {"type": "afterStages", "stages": ["QA"], "allowPartialSuccess": True}),
    ([state("QA", "succeeded, partiallySucceeded")],
     {"type": "afterStages", "stages": ["QA"], "allowPartialSuccess": True}),
    ([state("Dev"), state("QA")], {"type": "afterStages", "stages": ["Dev", "QA"]}),
    ([state("Dev"), state("QA", "12")], {"type": "afterStages", "stages": ["Dev", "QA"],
                                         "allowPartialSuccess": True}),
    ([state("QA"), state("QA")], {"type": "afterStages", "stages": ["QA"]}),
    ([state("Nowhere")], {"type": "manual"}),
    ([state("Prod")], {"type": "manual"}),
    ([state("QA", "16")], {"type": "manual"}),
    ([state("QA", "garbage")], {"type": "manual"}),
    ([{"name": "drop", "conditionType": "artifact", "value": "{\"sourceBranch\": \"main\"}"}], {"type": "manual"}),
    ([{"name": "Whatever", "conditionType": 9, "value": ""}], {"type": "manual"}),
])
def test_conditions_become_the_stage_trigger(conditions: list[dict[str, Any]], trigger: dict[str, Any]) -> None:
    result = imported(_chain(conditions))
    prod = result.definition["stages"][2]
    assert {k: v for k, v in prod["trigger"].items() if v not in ([], False)} == trigger
    rows = [e for e in result.report if e.path.startswith("$.environments[2].conditions")]
    assert len(rows) == max(1, len(conditions))
    assert all(r.became or r.outcome == "dropped" for r in rows)


def test_a_condition_no_stage_answers_is_reported_dropped() -> None:
    result = imported(_chain([state("Nowhere")]))
    row = entry(result, "$.environments[2].conditions[0]")
    assert (row.kind, row.outcome, row.became) == ("condition", "dropped", "")
    assert "Nowhere" in row.note


def schedule(days: Any, hours: Any = 3, minutes: Any = 0, zone: Any = "UTC", **extra: Any) -> dict[str, Any]:
    return {"daysToRelease": days, "startHours": hours, "startMinutes": minutes, "timeZoneId": zone, **extra}


@pytest.mark.parametrize(("conditions", "schedules", "trigger"), [
    ([], [schedule(31)], {"type": "schedule", "schedules": [{"cron": "0 3 * * 1,2,3,4,5", "timeZone": "UTC"}]}),
    ([], [schedule("all", 22, 30, "W. Europe Standard Time")],
     {"type": "schedule", "schedules": [{"cron": "30 22 * * *", "timeZone": "Europe/Berlin"}]}),
    ([], [schedule(96, 6, 15, "Tokyo Standard Time")],
     {"type": "schedule", "schedules": [{"cron": "15 6 * * 0,6", "timeZone": "Asia/Tokyo"}]}),
    ([state("QA")], [schedule("monday", "1", "5")],
     {"type": "schedule", "stages": ["QA"], "schedules": [{"cron": "5 1 * * 1", "timeZone": "UTC"}]}),
    ([state("QA", "12")], [schedule(1)], {"type": "schedule", "stages": ["QA"], "allowPartialSuccess": True,
                                          "schedules": [{"cron": "0 3 * * 1", "timeZone": "UTC"}]}),
    ([], [schedule(1, zone="Nowhere Standard Time")],
     {"type": "schedule", "schedules": [{"cron": "0 3 * * 1", "timeZone": "UTC"}]}),
    ([], [schedule(0)], {"type": "manual"}),
])
def test_stage_schedules_become_a_schedule_trigger(conditions: list[dict[str, Any]], schedules: list[Any],
                                                    trigger: dict[str, Any]) -> None:
    result = imported(_chain(conditions, schedules=schedules))
    prod = result.definition["stages"][2]
    assert {k: v for k, v in prod["trigger"].items() if v not in ([], False)} == trigger
    row = entry(result, "$.environments[2].schedules[0]")
    assert row.kind == "schedule"
    assert row.outcome == ("dropped" if trigger["type"] == "manual" else
                           "changed" if "Nowhere" in json.dumps(schedules) else "mapped")


@pytest.mark.parametrize(("trigger", "schedules"), [
    ({"triggerType": 2, "schedule": schedule(31, 3, 0, "UTC", jobId="x")},
     [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "time": "03:00", "timeZone": "UTC"}]),
    ({"triggerType": "schedule", "schedule": schedule(64, 23, 59, "Eastern Standard Time",
                                                      scheduleOnlyWithChanges=True)},
     [{"days": ["Sun"], "time": "23:59", "timeZone": "America/New_York", "onlyIfChanged": True}]),
    ({"triggerType": "Schedule", "schedule": schedule("saturday,sunday", 0, 0)},
     [{"days": ["Sat", "Sun"], "time": "00:00", "timeZone": "UTC"}]),
])
def test_release_schedules(trigger: dict[str, Any], schedules: list[dict[str, Any]]) -> None:
    result = imported(document(triggers=[trigger]))
    assert result.definition["releaseSchedules"] == schedules
    assert entry(result, "$.triggers[0]").became == "releaseSchedules[0]"


@pytest.mark.parametrize(("conditions", "cd"), [
    ([{"sourceBranch": "master"}], {"enabled": True, "branches": {"include": ["master"], "exclude": []}}),
    ([], {"enabled": True, "branches": {"include": ["*"], "exclude": []}}),
    ([{"sourceBranch": "refs/heads/main"}, {"sourceBranch": "release/*"}],
     {"enabled": True, "branches": {"include": ["refs/heads/main", "release/*"], "exclude": []}}),
    ([{"sourceBranch": "-refs/heads/dev"}], {"enabled": True, "branches": {"include": ["*"],
                                                                            "exclude": ["refs/heads/dev"]}}),
    ([{"useBuildDefinitionBranch": True}], {"enabled": False, "branches": {"include": ["*"], "exclude": []}}),
    ([{"sourceBranch": "main", "tags": ["ok"]}], {"enabled": True, "branches": {"include": ["main"],
                                                                                 "exclude": []}}),
])
def test_artifact_source_triggers_become_continuous_deployment(conditions: list[Any], cd: dict[str, Any]) -> None:
    result = imported(document(triggers=[{"artifactAlias": "drop", "triggerConditions": conditions,
                                          "triggerType": "artifactSource"}]))
    assert result.definition["artifacts"][0]["trigger"] == cd
    assert entry(result, "$.triggers[0]").became == "artifacts[0].trigger"


@pytest.mark.parametrize("trigger", [
    {"artifactAlias": "drop", "triggerType": "pullRequest", "triggerConditions": [{"targetBranch": "master"}]},
    {"artifactAlias": "nothing", "triggerType": 1, "triggerConditions": []},
    {"triggerType": 3},
    {"triggerType": "somethingNew"},
])
def test_release_triggers_without_equivalent_are_dropped(trigger: dict[str, Any]) -> None:
    result = imported(document(triggers=[trigger]))
    assert "trigger" not in result.definition["artifacts"][0]
    assert entry(result, "$.triggers[0]").outcome == "dropped"


# -- approvals ---------------------------------------------------------------------------------------------

def people(*names: str, ranks: list[int] | None = None) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(names):
        group = name.startswith("[")
        out.append({"rank": (ranks or [1] * len(names))[i], "isAutomated": False,
                    "approver": {"displayName": name, "uniqueName": name, "isContainer": group}})
    return out


@pytest.mark.parametrize(("approvals", "options", "expected"), [
    (people("ann@contoso.com"), {"requiredApproverCount": 0, "releaseCreatorCanBeApprover": True,
                                  "timeoutInMinutes": 0, "executionOrder": "beforeGates"},
     {"approvers": ["ann@contoso.com"], "requesterCannotApprove": False}),
    (people("ann@contoso.com", "bob@contoso.com"), {"requiredApproverCount": 1, "releaseCreatorCanBeApprover": False},
     {"approvers": ["ann@contoso.com", "bob@contoso.com"], "policy": "anyOne", "requesterCannotApprove": True}),
    (people("ann@contoso.com", "bob@contoso.com", "cy@contoso.com"), {"requiredApproverCount": 2},
     {"approvers": ["ann@contoso.com", "bob@contoso.com", "cy@contoso.com"], "policy": "count", "required": 2}),
    (people("ann@contoso.com", "bob@contoso.com"), {"requiredApproverCount": 0},
     {"approvers": ["ann@contoso.com", "bob@contoso.com"]}),
    (people("bob@contoso.com", "ann@contoso.com", ranks=[2, 1]), {},
     {"approvers": ["ann@contoso.com", "bob@contoso.com"], "policy": "allInSequence"}),
    (people("ann@contoso.com"), {"autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped": True},
     {"approvers": ["ann@contoso.com"], "skipIfApprovedInPreviousStage": True}),
    (people("ann@contoso.com"), {"timeoutInMinutes": 1440}, {"approvers": ["ann@contoso.com"],
                                                            "timeoutMinutes": 1440}),
    (people("ann@contoso.com"), {"timeoutInMintues": 60}, {"approvers": ["ann@contoso.com"], "timeoutMinutes": 60}),
    (people("ann@contoso.com"), {"timeoutInMinutes": 10**7}, {"approvers": ["ann@contoso.com"],
                                                             "timeoutMinutes": 525600}),
    (people("ann@contoso.com"), {"executionOrder": 2}, {"approvers": ["ann@contoso.com"], "order": "afterGates"}),
    (people("ann@contoso.com"), {"executionOrder": "afterGatesAlways"},
     {"approvers": ["ann@contoso.com"], "order": "afterGates"}),
    (people("[Fabrikam]\\Release Approvers"), {}, {"approvers": ["[Fabrikam]\\Release Approvers"]}),
    (people("ann@contoso.com", "ANN@contoso.com"), {}, {"approvers": ["ann@contoso.com"]}),
])
def test_pre_deployment_approval_options(approvals: list[Any], options: dict[str, Any],
                                         expected: dict[str, Any]) -> None:
    env = environment(preDeployApprovals={"approvals": approvals, "approvalOptions": options})
    result = imported(document(env))
    assert result.definition["stages"][0]["preApprovals"] == expected


@pytest.mark.parametrize(("options", "expected", "outcome"), [
    ({"executionOrder": "afterSuccessfulGates"}, {"approvers": ["ann@contoso.com"]}, "mapped"),
    ({"executionOrder": "beforeGates"}, {"approvers": ["ann@contoso.com"], "order": "beforeGates"}, "mapped"),
    ({"autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped": True}, {"approvers": ["ann@contoso.com"]},
     "changed"),
    ({"enforceIdentityRevalidation": True}, {"approvers": ["ann@contoso.com"]}, "changed"),
])
def test_post_deployment_approval_options(options: dict[str, Any], expected: dict[str, Any], outcome: str) -> None:
    env = environment(postDeployApprovals={"approvals": people("ann@contoso.com"),
                                           "approvalOptions": {"releaseCreatorCanBeApprover": True, **options}})
    result = imported(document(env))
    assert result.definition["stages"][0]["postApprovals"] == {**expected, "requesterCannotApprove": False}
    assert entry(result, "$.environments[0].postDeployApprovals").outcome == outcome


@pytest.mark.parametrize(("approvals", "note"), [
    (people("[Fabrikam]\\Release Approvers"), "map this group to its Entra object id"),
    ([{"rank": 1, "isAutomated": False, "approver": {"displayName": "Ann", "uniqueName": "CONTOSO\\ann"}}],
     "not a sign-in name"),
])
def test_approvers_slipway_cannot_name_are_reported(approvals: list[Any], note: str) -> None:
    result = imported(document(environment(preDeployApprovals={"approvals": approvals})))
    row = entry(result, "$.environments[0].preDeployApprovals")
    assert (row.outcome, row.became) == ("changed", "stages[0].preApprovals")
    assert note in row.note


def test_automated_approvals_are_none() -> None:
    result = imported(document())
    assert "preApprovals" not in result.definition["stages"][0]
    row = entry(result, "$.environments[0].preDeployApprovals")
    assert (row.kind, row.outcome) == ("approval", "mapped")


# -- gates -------------------------------------------------------------------------------------------------

def rest_gate(**inputs: Any) -> dict[str, Any]:
    return task(INVOKE_REST_API, {"connectedServiceNameSelector": "connectedServiceName", "method": "GET",
                                  "urlSuffix": "/health", **inputs}, version="1.*", name="Health")


def gate_block(options: dict[str, Any] | None, *tasks: dict[str, Any]) -> dict[str, Any]:
    return {"id": 3, "gatesOptions": options, "gates": [{"tasks": list(tasks)}] if tasks else []}


ON = {"isEnabled": True, "timeout": 1440, "samplingInterval": 15, "stabilizationTime": 5, "minimumSuccessDuration": 0}


@pytest.mark.parametrize(("options", "timing"), [
    (ON, {"delayMinutes": 5, "intervalMinutes": 15, "timeoutMinutes": 1440, "minimumSuccessMinutes": 0}),
    ({**ON, "minimumSuccessDuration": 30}, {"delayMinutes": 5, "intervalMinutes": 15, "timeoutMinutes": 1440,
                                            "minimumSuccessMinutes": 30}),
    ({**ON, "timeout": 10}, {"delayMinutes": 5, "intervalMinutes": 15, "timeoutMinutes": 15,
                             "minimumSuccessMinutes": 0}),
    ({**ON, "timeout": 60, "minimumSuccessDuration": 60}, {"delayMinutes": 5, "intervalMinutes": 15,
                                                           "timeoutMinutes": 60, "minimumSuccessMinutes": 45}),
    ({**ON, "stabilizationTime": 5000, "timeout": 99999}, {"delayMinutes": 2880, "intervalMinutes": 15,
                                                           "timeoutMinutes": 43200, "minimumSuccessMinutes": 0}),
    ({"isEnabled": "true"}, {"delayMinutes": 5, "intervalMinutes": 15, "timeoutMinutes": 1440,
                             "minimumSuccessMinutes": 0}),
    ({**ON, "samplingInterval": "0"}, {"delayMinutes": 5, "intervalMinutes": 1, "timeoutMinutes": 1440,
                                       "minimumSuccessMinutes": 0}),
])
def test_gate_options_become_gate_timing(options: dict[str, Any], timing: dict[str, Any]) -> None:
    env = environment(postDeploymentGates=gate_block(options, rest_gate()))
    result = imported(document(env))
    gates = result.definition["stages"][0]["postGates"]
    assert {k: v for k, v in gates.items() if k != "signals"} == timing
    assert entry(result, "$.environments[0].postDeploymentGates").became == "stages[0].postGates"


@pytest.mark.parametrize(("block", "note"), [
    (gate_block({**ON, "isEnabled": False}, rest_gate()), "off"),
    (gate_block(ON), "none at all"),
    (gate_block(ON, task(QUERY_WORK_ITEMS, {}, version="0.*")), "no gate Slipway can evaluate"),
])
def test_gates_without_signals_are_dropped(block: dict[str, Any], note: str) -> None:
    result = imported(document(environment(preDeploymentGates=block)))
    assert "preGates" not in result.definition["stages"][0]
    row = entry(result, "$.environments[0].preDeploymentGates")
    assert row.outcome == "dropped" and note in row.note


@pytest.mark.parametrize(("gate", "signal"), [
    (rest_gate(), {"type": "rest", "name": "Health", "method": "GET", "url": "https://replace-me.invalid/health"}),
    (rest_gate(urlSuffix="https://status.contoso.com/api", successCriteria="eq(root['status'], 'Healthy')"),
     {"type": "rest", "name": "Health", "method": "GET", "url": "https://status.contoso.com/api",
      "jsonPath": "$.status", "operator": "==", "threshold": "Healthy"}),
    (rest_gate(successCriteria="ge(root.checks[0]['count'], 3)"),
     {"type": "rest", "name": "Health", "method": "GET", "url": "https://replace-me.invalid/health",
      "jsonPath": "$.checks[0].count", "operator": ">=", "threshold": 3.0}),
    (rest_gate(successCriteria="and(eq(root['a'], 1), eq(root['b'], 2))"),
     {"type": "rest", "name": "Health", "method": "GET", "url": "https://replace-me.invalid/health"}),
    (rest_gate(headers='{"Authorization": "Bearer $(Token)", "PlanUrl": "$(system.CollectionUri)"}'),
     {"type": "rest", "name": "Health", "method": "GET", "url": "https://replace-me.invalid/health",
      "headersFromSettings": {"Authorization": "GATE_AUTHORIZATION"}}),
    (rest_gate(method="PUT"), {"type": "rest", "name": "Health", "method": "GET",
                               "url": "https://replace-me.invalid/health"}),
    (task(AZURE_MONITOR, {"ResourceGroupName": "rg", "filterType": "none", "severity": "Sev0,Sev1"},
          version="1.*", name="Alerts"), {"type": "alerts", "name": "Alerts", "severities": ["Sev0", "Sev1"]}),
    (task(AZURE_MONITOR, {"severity": "Sev0,Sev1,Sev2,Sev3,Sev4"}, version="1.*", name="Alerts"),
     {"type": "alerts", "name": "Alerts"}),
])
def test_gate_tasks_become_signals(gate: dict[str, Any], signal: dict[str, Any]) -> None:
    result = imported(document(environment(preDeploymentGates=gate_block(ON, gate))))
    parsed = parse_definition(result.definition)
    assert result.definition["stages"][0]["preGates"]["signals"] == [signal]
    assert parsed["stages"][0]["preGates"]["signals"][0]["type"] == signal["type"]
    row = entry(result, "$.environments[0].preDeploymentGates.gates[0].tasks[0]")
    assert (row.kind, row.became) == ("gate", "stages[0].preGates.signals[0]")


@pytest.mark.parametrize("gate_id", [AZURE_FUNCTION, QUERY_WORK_ITEMS, "8ba74703-e94f-4a35-814e-fc21f44578a2",
                                     "00000000-0000-0000-0000-000000000000"])
def test_gate_tasks_without_signal_are_dropped(gate_id: str) -> None:
    result = imported(document(environment(preDeploymentGates=gate_block(ON, rest_gate(), task(gate_id)))))
    assert len(result.definition["stages"][0]["preGates"]["signals"]) == 1
    row = entry(result, "$.environments[0].preDeploymentGates.gates[0].tasks[1]")
    assert (row.outcome, row.became) == ("dropped", "")


def test_two_gates_with_one_name_get_two_signal_names() -> None:
    result = imported(document(environment(preDeploymentGates=gate_block(ON, rest_gate(), rest_gate()))))
    assert [s["name"] for s in result.definition["stages"][0]["preGates"]["signals"]] == ["Health", "Health (2)"]


# -- tasks → steps -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("task_id", "version", "inputs", "step", "outcome"), [
    (WEB_APP_DEPLOYMENT, "3.*", {"WebAppName": "$(Site)", "WebAppKind": "app", "Package": f"{DRY}/web.zip"},
     {"type": "deploy-package", "artifact": "drop"}, "mapped"),
    (WEB_APP_DEPLOYMENT, "4.*", {"WebAppName": "$(Site)", "WebAppKind": "webApp", "DeployToSlotOrASEFlag": "true",
                                 "SlotName": "staging", "ResourceGroupName": "$(Group)",
                                 "Package": f"{DRY}/web.zip", "UseWebDeploy": "true", "DeploymentType": "runFromZip"},
     {"type": "deploy-package", "artifact": "drop", "method": "runFromPackage"}, "mapped"),
    (WEB_APP_DEPLOYMENT, "5.*", {"WebAppName": "contoso-web", "Package": "$(System.DefaultWorkingDirectory)/**/*.zip",
                                 "JSONFiles": "appsettings.json"},
     {"type": "deploy-package"}, "changed"),
    (WEB_APP_DEPLOYMENT, "4.*", {"WebAppName": "$(Site)", "DeployToSlotOrASEFlag": "true", "SlotName": "$(Slot)",
                                 "Package": f"{DRY}/web.zip"},
     {"type": "deploy-package", "artifact": "drop"}, "changed"),
    (WEB_APP_DEPLOYMENT, "4.*", {"WebAppName": "$(Site)", "WebAppKind": "webAppContainer",
                                 "DockerNamespace": "acr.io", "DockerRepository": "web"},
     {"type": "manual-intervention"}, "replaced"),
    (FUNCTION_APP, "1.*", {"appType": "functionApp", "appName": "contoso-fn", "package": f"{DRY}/fn.zip",
                           "deploymentMethod": "zipDeploy"},
     {"type": "deploy-package", "artifact": "drop", "method": "zipDeploy"}, "mapped"),
    (FUNCTION_APP, "2.*", {"appType": "functionAppLinux", "appName": "contoso-fn", "package": f"{DRY}/fn.zip"},
     {"type": "deploy-package", "artifact": "drop"}, "mapped"),
    (WEB_APP, "1.*", {"appName": "contoso-web", "package": f"{DRY}/web.zip", "deploymentMethod": "auto"},
     {"type": "deploy-package", "artifact": "drop", "method": "auto"}, "mapped"),
    (MANAGE, "0.*", {"Action": "Swap Slots", "WebAppName": "$(Site)", "SourceSlot": "staging",
                     "SwapWithProduction": "true"},
     {"type": "swap", "slot": "staging", "targetSlot": "production", "preserveVnet": False}, "mapped"),
    (MANAGE, "0.*", {"Action": "Swap Slots", "SourceSlot": "staging", "SwapWithProduction": "false",
                     "TargetSlot": "qa", "PreserveVnet": "true"},
     {"type": "swap", "slot": "staging", "targetSlot": "qa", "preserveVnet": True}, "mapped"),
    (MANAGE, "0.*", {"Action": "Start Swap With Preview", "SourceSlot": "staging"},
     {"type": "start-swap", "slot": "staging", "targetSlot": "production", "preserveVnet": False}, "mapped"),
    (MANAGE, "0.*", {"Action": "Complete Swap", "SourceSlot": "staging"},
     {"type": "complete-swap", "slot": "staging", "targetSlot": "production", "preserveVnet": False}, "mapped"),
    (MANAGE, "0.*", {"Action": "Cancel Swap", "Slot": "staging"}, {"type": "cancel-swap", "slot": "staging"},
     "mapped"),
    (MANAGE, "0.*", {"Action": "Swap Slots", "SourceSlot": "production"}, {"type": "manual-intervention"},
     "replaced"),
    (MANAGE, "0.*", {"Action": "Restart Azure App Service", "WebAppName": "$(Site)"}, {"type": "restart"}, "mapped"),
    (MANAGE, "0.*", {"Action": "Restart Azure App Service", "SpecifySlot": "true", "Slot": "staging"},
     {"type": "restart", "slot": "staging"}, "mapped"),
    (MANAGE, "0.*", {"Action": "Stop Azure App Service"}, {"type": "manual-intervention"}, "replaced"),
    (MANAGE, "0.*", {"Action": "Enable Continuous Monitoring"}, {"type": "manual-intervention"}, "replaced"),
    (SETTINGS, "1.*", {"appName": "$(Site)", "appSettings": '[{"name": "Mode", "value": "blue", "slotSetting": true},'
                                                            ' {"name": "Key", "value": "$(Token)"}]'},
     {"type": "set-app-settings", "settings": {"Mode": {"value": "blue", "secret": False},
                                               "Key": {"value": "$(Token)", "secret": True}}, "sticky": ["Mode"]},
     "mapped"),
    (SETTINGS, "1.*", {"appSettings": "-Mode blue"}, {"type": "manual-intervention"}, "replaced"),
    (ARM, "2.*", {"action": "Create Or Update Resource Group", "resourceGroupName": "$(Group)",
                  "templateLocation": "Linked artifact", "csmFile": f"{DRY}/infra/main.json",
                  "csmParametersFile": f"{DRY}/infra/main.parameters.json",
                  "overrideParameters": "-name $(Site) -count 3 -flag true -tags {\"a\":\"b\"} -label \"two words\"",
                  "deploymentMode": "Complete"},
     {"type": "arm-deployment", "artifact": "drop", "template": "infra/main.json",
      "parametersFile": "infra/main.parameters.json",
      "parameters": {"name": "$(Site)", "count": 3, "flag": True, "tags": {"a": "b"}, "label": "two words"},
      "mode": "Complete"}, "changed"),
    (ARM, "3.*", {"deploymentScope": "Subscription", "location": "West Europe", "templateLocation": "URL of the file",
                  "csmFileLink": "https://contoso.blob.core.windows.net/t/main.json"},
     {"type": "arm-deployment", "templateUrl": "https://contoso.blob.core.windows.net/t/main.json",
      "scope": "subscription", "location": "westeurope"}, "mapped"),
    (ARM, "3.*", {"resourceGroupName": "$(Group)", "csmFile": f"{DRY}/main.bicep"},
     {"type": "arm-deployment", "artifact": "drop", "template": "main.json"}, "changed"),
    (ARM, "2.*", {"action": "DeleteRG", "resourceGroupName": "rg"}, {"type": "manual-intervention"}, "replaced"),
    (ARM, "2.*", {"deploymentMode": "Validation", "csmFile": f"{DRY}/main.json"}, {"type": "manual-intervention"},
     "replaced"),
    (DELAY, "1.*", {"delayForMinutes": "30"}, {"type": "wait", "seconds": 1800}, "mapped"),
    (DELAY, "1.*", {"delayForMinutes": "$(Wait)"}, {"type": "manual-intervention"}, "replaced"),
    (INVOKE_REST_API, "1.*", {"connectedServiceNameSelector": "connectedServiceName", "method": "POST",
                              "urlSuffix": "changes?id=$(Release.ReleaseId)", "body": "{\"r\": \"$(Build.BuildId)\"}",
                              "headers": "{\"Content-Type\": \"application/json\", \"PlanId\": \"$(system.PlanId)\", "
                                         "\"Host\": \"internal\", \"X-Slipway-Callback\": \"x\"}",
                              "waitForCompletion": "false", "successCriteria": "eq(root['ok'], true)"},
     {"type": "http-request", "method": "POST", "url": "https://replace-me.invalid/changes?id=$(Release.ReleaseId)",
      "headers": {"Content-Type": "application/json"}, "body": "{\"r\": \"$(Release.Artifacts.drop.BuildId)\"}",
      "criteria": [{"jsonPath": "$.ok", "operator": "==", "value": True}]}, "changed"),
    (INVOKE_REST_API, "1.*", {"method": "GET", "urlSuffix": "https://api.contoso.com/ready",
                              "waitForCompletion": "true"},
     {"type": "http-request", "method": "GET", "url": "https://api.contoso.com/ready", "completion": "callback"},
     "changed"),
    (AZURE_FUNCTION, "1.*", {"function": "https://fn.azurewebsites.net/api/check", "key": "$(Token)",
                             "method": "POST", "body": "{}"},
     {"type": "http-request", "method": "POST", "url": "https://fn.azurewebsites.net/api/check",
      "headersFromSecrets": {"x-functions-key": "@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName=function-key)"},
      "body": "{}"}, "changed"),
    (MANUAL_INTERVENTION, "8.*", {"instructions": "Check $(Site) on $(System.TeamProject)",
                                  "emailRecipients": "ann@contoso.com;[Web]\\Ops", "onTimeout": "resume"},
     {"type": "manual-intervention", "instructions": "Check $(Site) on $ (System.TeamProject)",
      "assignees": ["ann@contoso.com"], "onTimeout": "resume", "timeoutMinutes": 86400}, "changed"),
    (MANUAL_INTERVENTION, "8.*", {"instructions": "Look"},
     {"type": "manual-intervention", "instructions": "Look", "assignees": [], "timeoutMinutes": 86400}, "mapped"),
    (AZURE_CLI, "2.*", {"scriptLocation": "inlineScript", "inlineScript": "az group list"},
     {"type": "manual-intervention"}, "replaced"),
    (POWERSHELL, "2.*", {"targetType": "inline", "script": "Write-Host hi"}, {"type": "manual-intervention"},
     "replaced"),
    (AZURE_POWERSHELL, "5.*", {"Inline": "Get-AzContext"}, {"type": "manual-intervention"}, "replaced"),
    (BASH, "3.*", {"script": "echo hi"}, {"type": "manual-intervention"}, "replaced"),
    (CMD_LINE, "2.*", {"script": "echo hi"}, {"type": "manual-intervention"}, "replaced"),
    (DACPAC, "1.*", {"DacpacFile": f"{DRY}/db.dacpac", "SqlPassword": "p4ss!word"}, {"type": "manual-intervention"},
     "replaced"),
    (VSTEST, "2.*", {"testAssemblyVer2": "**\\*test*.dll"}, {"type": "manual-intervention"}, "replaced"),
    ("11111111-2222-3333-4444-555555555555", "1.*", {}, {"type": "manual-intervention"}, "replaced"),
])
def test_each_task_becomes_its_step(task_id: str, version: str, inputs: dict[str, Any], step: dict[str, Any],
                                    outcome: str) -> None:
    found, row = one_task(task_id, inputs, version=version)
    assert found is not None
    if outcome == "replaced":
        assert (found["type"], found["name"]) == ("manual-intervention", "Imported: the task")
    else:
        assert found == {**step, "name": "the task"}
    assert (row.kind, row.outcome, row.became) == ("task", outcome, "stages[0].steps[0]")


def test_a_replaced_task_states_what_it_did_and_masks_secrets() -> None:
    found, row = one_task(DACPAC, {"DacpacFile": f"{DRY}/db.dacpac", "SqlPassword": "p4ss!word",
                                   "ServerName": "$(Site).database.windows.net", "Note": "uses hunter22"},
                          version="1.*", name="Deploy DB")
    assert found is not None
    text = found["instructions"]
    assert 'Azure DevOps task "Deploy DB"' in text and DACPAC in text and "version 1.*" in text
    assert "SqlAzureDacpacDeployment" in text and "SqlPackage" in text
    assert "p4ss!word" not in text and "- SqlPassword: ***" in text
    assert "hunter22" not in text, "the value of the secret variable Token"
    assert "$ (System.DefaultWorkingDirectory)/drop/db.dacpac" in text
    assert "$(Site).database.windows.net" in text
    assert found["name"] == "Imported: Deploy DB"
    assert "SqlPackage" in row.note


def test_scripts_say_how_slipway_runs_them() -> None:
    _, row = one_task(AZURE_CLI, {"inlineScript": "az group list"}, version="2.*")
    assert "Slipway runs scripts as a Container Apps job (`script` step): build an image with this script and " \
           "fill `job`/`image`" in row.note


@pytest.mark.parametrize(("extra", "field", "outcome"), [
    ({"enabled": False}, None, "dropped"),
    ({"continueOnError": True}, ("continueOnError", True), "mapped"),
    ({"condition": "always()"}, None, "changed"),
    ({"alwaysRun": True}, None, "changed"),
    ({"condition": "eq(variables['Run'], 'yes')"}, None, "changed"),
])
def test_task_flags(extra: dict[str, Any], field: tuple[str, Any] | None, outcome: str) -> None:
    found, row = one_task(DELAY, {"delayForMinutes": "1"}, version="1.*", **extra)
    assert row.outcome == outcome
    if outcome == "dropped":
        assert found is None and row.became == ""
    if field is not None:
        assert found is not None and found[field[0]] == field[1]


def test_a_task_group_is_replaced() -> None:
    found, row = one_task("9d0b7e7f-2c48-4c4c-8b8f-7f1b4b3c1a0e", {}, version="1.*", definitionType="metaTask")
    assert found is not None and row.outcome == "replaced" and "task group" in row.note


def test_the_stage_target_comes_from_its_first_app_service_task() -> None:
    deploy = task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Site)", "DeployToSlotOrASEFlag": "true",
                                       "ResourceGroupName": "$(Group)", "SlotName": "staging",
                                       "Package": f"{DRY}/web.zip"})
    result = imported(document(environment(tasks=[deploy])),
                      target={"subscriptionId": "11111111-2222-3333-4444-555555555555"})
    assert result.definition["stages"][0]["target"] == {
        "subscriptionId": "11111111-2222-3333-4444-555555555555", "resourceGroup": "rg-web", "site": "contoso-web",
        "slot": "staging"}
    assert entry(result, "$.environments[0]").outcome == "mapped"


def test_a_target_nothing_gives_is_a_reported_placeholder() -> None:
    deploy = task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Unknown)", "Package": f"{DRY}/web.zip"})
    result = imported(document(environment(tasks=[deploy])))
    assert result.definition["stages"][0]["target"] == {
        "subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "REPLACE-ME", "site": "replace-me"}
    row = entry(result, "$.environments[0]")
    assert row.outcome == "changed" and "REPLACE-ME" in row.note


def test_an_arm_deployment_to_another_group_than_the_stages_names_it() -> None:
    tasks = [task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Site)", "DeployToSlotOrASEFlag": "true",
                                       "ResourceGroupName": "$(Group)", "Package": f"{DRY}/a.zip"}),
             task(ARM, {"resourceGroupName": "rg-data", "csmFile": f"{DRY}/data.json"}, version="2.*")]
    result = imported(document(environment(tasks=tasks)))
    stage = result.definition["stages"][0]
    assert stage["target"]["resourceGroup"] == "rg-web"
    assert stage["steps"][1]["resourceGroup"] == "rg-data"


def test_the_default_target_fills_what_tasks_do_not_say() -> None:
    default = {"subscriptionId": "11111111-2222-3333-4444-555555555555", "resourceGroup": "rg-default",
               "site": "default-app"}
    result = imported(document(environment(tasks=[task(DELAY, {"delayForMinutes": "1"})])), target=default)
    assert result.definition["stages"][0]["target"] == default


def test_a_second_app_in_one_stage_is_replaced() -> None:
    tasks = [task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Site)", "Package": f"{DRY}/a.zip"}, name="A"),
             task(WEB_APP_DEPLOYMENT, {"WebAppName": "other-app", "Package": f"{DRY}/b.zip"}, name="B"),
             task(FUNCTION_APP, {"appName": "", "package": f"{DRY}/c.zip"}, name="C")]
    result = imported(document(environment(tasks=tasks)))
    assert [s["type"] for s in result.definition["stages"][0]["steps"]] == ["deploy-package", "manual-intervention",
                                                                          "manual-intervention"]
    assert [entry(result, f"$.environments[0].deployPhases[0].workflowTasks[{i}]").outcome for i in range(3)] == \
        ["mapped", "replaced", "replaced"]


def test_step_names_are_unique_in_a_stage() -> None:
    tasks = [task(DELAY, {"delayForMinutes": "1"}, name="Wait"), task(DELAY, {"delayForMinutes": "2"}, name="Wait")]
    result = imported(document(environment(tasks=tasks)))
    assert [s["name"] for s in result.definition["stages"][0]["steps"]] == ["Wait", "Wait (2)"]


def test_phases_are_reported_with_their_kind() -> None:
    env = environment(deployPhases=[
        {"rank": 2, "phaseType": 4, "name": "Machines", "workflowTasks": [task(DELAY, {"delayForMinutes": "2"})],
         "deploymentInput": {"condition": "succeeded()"}},
        {"rank": 1, "phaseType": 2, "name": "Server", "workflowTasks": [task(DELAY, {"delayForMinutes": "1"})],
         "deploymentInput": {"condition": "always()", "parallelExecution": {"parallelExecutionType": 0}}}])
    result = imported(document(env))
    assert [s["seconds"] for s in result.definition["stages"][0]["steps"]] == [60, 120], "rank order"
    machines, server = entry(result, "$.environments[0].deployPhases[0]"), \
        entry(result, "$.environments[0].deployPhases[1]")
    assert (machines.kind, machines.outcome, machines.became) == ("option", "changed", "stages[0].steps[1]")
    assert "deployment group" in machines.note
    assert (server.outcome, server.became) == ("changed", "stages[0].steps[0]")
    assert "condition" in server.note and "parallel" not in server.note


# -- variables, artifacts, names, options --------------------------------------------------------------------

def test_variables_secrets_and_groups() -> None:
    doc = document(variables={"Plain": {"value": "x"}, "Settable": {"value": "y", "allowOverride": True},
                              "Pwd": {"value": "s3cr3t-value", "isSecret": True}, "System.Debug": {"value": "true"},
                              "bad name": {"value": "z"}},
                   variableGroups=[12, {"name": "shared-web"}])
    result = imported(doc)
    assert result.definition["variables"] == {
        "Plain": "x", "Settable": {"value": "y", "allowOverride": True},
        "Pwd": "@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName=Pwd)"}
    assert result.definition["variableGroups"] == ["shared-web"]
    outcomes = {e.path: e.outcome for e in result.report if e.kind in ("variable", "variableGroup")}
    assert outcomes == {"$.variables.Plain": "mapped", "$.variables.Settable": "mapped", "$.variables.Pwd": "changed",
                        "$.variables['System.Debug']": "dropped", "$.variables['bad name']": "dropped",
                        "$.variableGroups[0]": "dropped", "$.variableGroups[1]": "changed"}
    assert "Key Vault" in entry(result, "$.variables.Pwd").note
    assert "s3cr3t-value" not in json.dumps(result.definition) + repr(result.report)


def test_stage_variables_win_over_the_definitions_for_the_target() -> None:
    env = environment(variables={"Site": {"value": "stage-app"}},
                      tasks=[task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Site)", "Package": f"{DRY}/a.zip"})])
    result = imported(document(env))
    stage = result.definition["stages"][0]
    assert stage["target"]["site"] == "stage-app"
    assert stage["variables"] == {"Site": "stage-app"}


def test_artifact_aliases_are_made_valid_and_paths_follow_them() -> None:
    doc = document(environment(tasks=[task(WEB_APP_DEPLOYMENT, {
        "WebAppName": "web", "Package": "$(System.DefaultWorkingDirectory)/_Web-CI/drop/web.zip"})]),
        artifacts=[{"alias": "_Web-CI", "type": "Build", "isPrimary": True,
                    "definitionReference": {"definition": {"name": "Web CI"}}},
                   {"alias": "Web-CI", "type": "GitHub"}],
        triggers=[{"artifactAlias": "_Web-CI", "triggerType": 1, "triggerConditions": []}])
    result = imported(doc)
    assert [(a["alias"], a["source"]) for a in result.definition["artifacts"]] == [("Web-CI", "Web-CI"),
                                                                                  ("Web-CI-2", "Web-CI-2")]
    assert result.definition["stages"][0]["steps"][0]["artifact"] == "Web-CI"
    assert result.definition["artifacts"][0]["trigger"]["enabled"] is True
    assert entry(result, "$.artifacts[0]").outcome == "changed"
    assert "GitHub" in entry(result, "$.artifacts[1]").note


def test_stage_names_are_made_valid_and_unique_and_conditions_follow() -> None:
    doc = document(environment("  QA\u200b  ", 1), environment("qa", 2, conditions=[state("  QA\u200b  ")]),
                   environment("x" * 80, 3, conditions=[state("qa")]))
    result = imported(doc)
    stages = result.definition["stages"]
    assert [s["name"] for s in stages] == ["QA", "qa (2)", "x" * 64]
    assert stages[1]["trigger"]["stages"] == ["QA"] and stages[2]["trigger"]["stages"] == ["qa (2)"]
    assert [entry(result, f"$.environments[{i}]").outcome for i in range(3)] == ["changed", "changed", "changed"]


def test_stages_in_rank_order() -> None:
    doc = document(environment("Prod", 3, conditions=[state("QA")]), environment("Dev", 1),
                   environment("QA", 2, conditions=[state("Dev")]))
    result = imported(doc)
    assert [s["name"] for s in result.definition["stages"]] == ["Dev", "QA", "Prod"]
    assert entry(result, "$.environments[0]").became == "stages[2]"


@pytest.mark.parametrize(("given", "expected", "outcome"), [
    ("Release-$(rev:r)", "Release-$(rev:r)", "mapped"),
    ("", "Release-$(rev:r)", "mapped"),
    ("$(Release.DefinitionName)_$(Build.BuildNumber)", "$(Release.DefinitionName)_$(Build.BuildNumber)", "mapped"),
    ("Release-$(date:yyyyMMdd)$(rev:rr)", "Release-$(rev:rr)", "changed"),
    ("$(date:yyyyMMdd)", "Release-$(rev:r)", "changed"),
])
def test_release_name_format(given: str, expected: str, outcome: str) -> None:
    result = imported(document(releaseNameFormat=given))
    assert result.definition["releaseNameFormat"] == expected
    assert entry(result, "$.releaseNameFormat").outcome == outcome


def test_queue_options_and_retention() -> None:
    env = environment(executionPolicy={"concurrencyCount": 1, "queueDepthCount": 1},
                      retentionPolicy={"daysToKeep": 30, "releasesToKeep": 3},
                      environmentOptions={"emailNotificationType": "OnlyOnFailure", "timeoutInMinutes": 60})
    result = imported(document(env))
    assert result.definition["stages"][0]["queue"] == {"parallel": 1, "policy": "latest"}
    assert entry(result, "$.environments[0].executionPolicy").became == "stages[0].queue"
    assert entry(result, "$.environments[0].retentionPolicy").outcome == "dropped"
    assert entry(result, "$.environments[0].environmentOptions").outcome == "dropped"


def test_the_name_option_wins() -> None:
    result = imported(document(), name="Imported web")
    assert result.definition["name"] == "Imported web"
    assert entry(result, "$").outcome == "changed"


# -- the samples ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_every_sample_imports_and_reports_every_stage_and_task(sample: Path) -> None:
    doc = json.loads(sample.read_text())
    result = imported(doc)
    paths = [e.path for e in result.report]
    assert len(paths) == len(set(paths)), "one entry per element"
    for i, env in enumerate(doc["environments"]):
        assert f"$.environments[{i}]" in paths
        for p, phase in enumerate(env["deployPhases"]):
            for t in range(len(phase["workflowTasks"])):
                assert f"$.environments[{i}].deployPhases[{p}].workflowTasks[{t}]" in paths
        for side in ("preDeployApprovals", "postDeployApprovals"):
            assert f"$.environments[{i}].{side}" in paths
        for k in range(len(env["conditions"])):
            assert f"$.environments[{i}].conditions[{k}]" in paths
        for name in env["variables"]:
            assert any(p.startswith(f"$.environments[{i}].variables") and name in p for p in paths)
    for k in range(len(doc.get("triggers") or [])):
        assert f"$.triggers[{k}]" in paths
    for name in doc.get("variables") or {}:
        assert any(p.startswith("$.variables") and name in p for p in paths)
    assert all(e.kind in KINDS and e.outcome in OUTCOMES for e in result.report)
    assert all(e.became == "" for e in result.report if e.outcome == "dropped")
    assert all(e.became or e.kind == "option" for e in result.report if e.outcome != "dropped")
    assert paths == sorted(paths, key=lambda p: _document_order(doc, p)), "the report follows the document"


def _document_order(doc: Any, path: str) -> tuple[int, ...]:
    import re

    here, out = doc, []
    for key, index, quoted in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]", path):
        if index:
            out.append(int(index))
            here = here[int(index)]
        else:
            name = key or quoted
            out.append(list(here).index(name))
            here = here[name]
    return (*out, -1)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_imported_instructions_expand_when_the_step_starts(sample: Path) -> None:
    """A manual intervention fails on a `$(Name)` nothing defines: the imported ones name only what every
    deployment defines (the definition's and stage's variables, the release's own)."""
    definition = imported(json.loads(sample.read_text())).definition
    for stage in definition["stages"]:
        known = {name: "x" for scope in (definition.get("variables") or {}, stage.get("variables") or {})
                 for name in scope}
        known.update({name: "x" for name in ALWAYS_DEFINED.values()})
        for step in stage["steps"]:
            if step["type"] == "manual-intervention":
                expand(step["instructions"], known)


def test_a_secret_the_export_holds_anyway_goes_nowhere() -> None:
    doc = json.loads(next(s for s in SAMPLES if s.stem == "demogen-8").read_text())
    result = imported(doc)
    everything = json.dumps(result.definition) + json.dumps([e.__dict__ for e in result.report])
    assert "P2ssw0rd@123" not in everything
    assert result.definition["variables"]["password"] == \
        "@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName=password)"


@pytest.mark.parametrize(("sample", "refused"), [
    ("demogen-3", ["$.environments[0].deployPhases[1].workflowTasks[0]",
                   "$.environments[0].deployPhases[2].workflowTasks[0]"]),
    ("demogen-8", ["$.environments[0].deployPhases[1].workflowTasks[0]",
                   "$.environments[0].deployPhases[2].workflowTasks[1]"]),
])
def test_strict_mode_refuses_tasks_without_equivalent_naming_each(sample: str, refused: list[str]) -> None:
    doc = json.loads(next(s for s in SAMPLES if s.stem == sample).read_text())
    with pytest.raises(Invalid) as raised:
        import_definition(doc, ImportOptions(strict=True))
    fields = [e.field for e in raised.value.errors]
    assert set(refused) <= set(fields)
    replaced = [e.path for e in import_definition(doc).report if e.outcome == "replaced"]
    assert fields == replaced
    assert all("no Slipway equivalent" in e.message for e in raised.value.errors)


def test_strict_mode_imports_what_maps() -> None:
    deploy = task(WEB_APP_DEPLOYMENT, {"WebAppName": "$(Site)", "Package": f"{DRY}/a.zip"})
    result = import_definition(document(environment(tasks=[deploy, {**task(DACPAC), "enabled": False}])),
                               ImportOptions(strict=True))
    assert [s["type"] for s in result.definition["stages"][0]["steps"]] == ["deploy-package"]


APP_DEPLOY = "497d490f-eea7-4f2b-ab94-48d9c1acdcb1"  # AzureRmWebAppDeployment
DEFAULT = {"subscriptionId": "11111111-1111-1111-1111-111111111111", "resourceGroup": "rg-default",
           "site": "default-app"}


@pytest.mark.parametrize("site, group, expected", [
    ("health-web", "rg-health", ("rg-health", "health-web")),      # the definition names the app: it wins
    ("$(Unknown)", "rg-health", ("rg-default", "default-app")),    # half an app: the default app, whole
    ("health-web", "$(Unknown)", ("rg-default", "default-app")),
    ("$(Unknown)", "$(Unknown)", ("rg-default", "default-app")),
])
def test_a_stage_deploys_to_an_app_named_whole(site: str, group: str, expected: tuple[str, str]) -> None:
    deploy = task(APP_DEPLOY, {"WebAppName": site, "ResourceGroupName": group, "DeployToSlotOrASEFlag": "true",
                               "SlotName": "dev", "Package": "$(System.DefaultWorkingDirectory)/web/drop/app.zip"})
    result = imported(document(environment("Dev", tasks=[deploy])), target=DEFAULT)
    target = result.definition["stages"][0]["target"]
    assert (target["resourceGroup"], target["site"]) == expected
    assert target["subscriptionId"] == DEFAULT["subscriptionId"]  # Azure DevOps never names one by id

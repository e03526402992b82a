"""Every input is hostile: a document that is not a definition is refused with the JSON path of what is
wrong (the caller's 400), anything else imports into a definition Slipway accepts, and nothing else is
ever raised (hypothesis, over arbitrary JSON and over the samples with parts replaced by arbitrary JSON)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.ado_import import ImportOptions, import_definition
from shared.domain.ado_import.refs import ALWAYS_DEFINED
from shared.domain.errors import Invalid
from shared.domain.variables import expand
from shared.schemas.definition import parse_definition

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "shared" / "ado-samples" / "definitions").glob("*.json"))
DOCUMENTS = [json.loads(s.read_text()) for s in SAMPLES]


def minimal(**extra: Any) -> dict[str, Any]:
    return {"name": "Web", "environments": [{"name": "Dev", "rank": 1}], **extra}


def env(**extra: Any) -> dict[str, Any]:
    return minimal(environments=[{"name": "Dev", "rank": 1, **extra}])


def stages(n: int) -> list[dict[str, Any]]:
    return [{"name": f"S{i}", "rank": i} for i in range(n)]


PHASE = {"phaseType": 1, "name": "Agent"}


@pytest.mark.parametrize(("document", "field"), [
    ([], "$"),
    ("definition", "$"),
    (None, "$"),
    (42, "$"),
    ({"environments": [{"name": "Dev"}]}, "$.name"),
    ({"name": "   ", "environments": [{"name": "Dev"}]}, "$.name"),
    ({"name": "Web"}, "$.environments"),
    (minimal(environments={"name": "Dev"}), "$.environments"),
    (minimal(environments=[]), "$.environments"),
    (minimal(environments=stages(51)), "$.environments"),
    (minimal(environments=[5]), "$.environments[0]"),
    (minimal(environments=[{"name": "Dev"}, {"rank": 2}]), "$.environments[1].name"),
    (minimal(environments=[{"name": ""}]), "$.environments[0].name"),
    (minimal(environments=[{"name": 7}]), "$.environments[0].name"),
    (env(conditions={"name": "ReleaseStarted"}), "$.environments[0].conditions"),
    (env(conditions=["ReleaseStarted"]), "$.environments[0].conditions[0]"),
    (env(schedules=[{"daysToRelease": 1, "startHours": 25}]), "$.environments[0].schedules[0].startHours"),
    (env(schedules=[{"daysToRelease": 1, "startMinutes": -1}]), "$.environments[0].schedules[0].startMinutes"),
    (env(deployPhases={"name": "Agent"}), "$.environments[0].deployPhases"),
    (env(deployPhases=[[]]), "$.environments[0].deployPhases[0]"),
    (env(deployPhases=[{**PHASE, "workflowTasks": "none"}]), "$.environments[0].deployPhases[0].workflowTasks"),
    (env(deployPhases=[{**PHASE, "workflowTasks": [None]}]), "$.environments[0].deployPhases[0].workflowTasks[0]"),
    (env(deployPhases=[{**PHASE, "workflowTasks": [{"taskId": "x", "inputs": ["a"]}]}]),
     "$.environments[0].deployPhases[0].workflowTasks[0].inputs"),
    (env(deployPhases=[{**PHASE, "deploymentInput": "x"}]), "$.environments[0].deployPhases[0].deploymentInput"),
    (env(preDeployApprovals={"approvals": {"rank": 1}}), "$.environments[0].preDeployApprovals.approvals"),
    (env(preDeployApprovals={"approvals": [{"isAutomated": False, "approver": "ann"}]}),
     "$.environments[0].preDeployApprovals.approvals[0].approver"),
    (env(postDeployApprovals=[]), "$.environments[0].postDeployApprovals"),
    (env(preDeploymentGates={"gatesOptions": {"isEnabled": True}, "gates": {}}),
     "$.environments[0].preDeploymentGates.gates"),
    (env(preDeploymentGates={"gatesOptions": {"isEnabled": True}, "gates": [{"tasks": [1]}]}),
     "$.environments[0].preDeploymentGates.gates[0].tasks[0]"),
    (env(variables=["a"]), "$.environments[0].variables"),
    (env(variables={"a b": 5}), "$.environments[0].variables['a b']"),
    (env(executionPolicy=1), "$.environments[0].executionPolicy"),
    (env(environmentOptions="x"), "$.environments[0].environmentOptions"),
    (minimal(variables={"A": 5}), "$.variables.A"),
    (minimal(variables={f"V{i}": "x" for i in range(201)}), "$.variables"),
    (minimal(variableGroups={"id": 1}), "$.variableGroups"),
    (minimal(artifacts={"alias": "drop"}), "$.artifacts"),
    (minimal(artifacts=["drop"]), "$.artifacts[0]"),
    (minimal(artifacts=[{"alias": f"a{i}"} for i in range(11)]), "$.artifacts"),
    (minimal(artifacts=[{"alias": "a", "definitionReference": "b"}]), "$.artifacts[0].definitionReference"),
    (minimal(triggers=[1]), "$.triggers[0]"),
    (minimal(triggers=[{"triggerType": 2, "schedule": None}]), "$.triggers[0].schedule"),
    (minimal(triggers=[{"triggerType": 1, "artifactAlias": "a", "triggerConditions": {}}],
             artifacts=[{"alias": "a"}]), "$.triggers[0].triggerConditions"),
    (minimal(environments=[{"name": "A", "conditions": [{"name": "B", "conditionType": 2, "value": "4"}]},
                           {"name": "B", "conditions": [{"name": "A", "conditionType": 2, "value": "4"}]}]),
     "$.environments[0].conditions"),
])
def test_malformed_documents_are_refused_naming_the_json_path(document: Any, field: str) -> None:
    with pytest.raises(Invalid) as raised:
        import_definition(document)
    assert [e.field for e in raised.value.errors] == [field]


@pytest.mark.parametrize(("target", "field"), [
    ({"subscriptionId": "not-a-guid"}, "target.subscriptionId"),
    ({"site": "-bad-"}, "target.site"),
    ({"resourceGroup": 5}, "target.resourceGroup"),
    ({"region": "westeurope"}, "target.region"),
])
def test_a_bad_default_target_is_refused_naming_its_field(target: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        import_definition(minimal(), ImportOptions(target=target))
    assert [e.field for e in raised.value.errors] == [field]


def test_a_truncated_export_is_the_callers_json_error() -> None:
    """Half a file is not JSON: the caller's 400 before the importer sees anything."""
    text = SAMPLES[0].read_text()
    with pytest.raises(ValueError):
        json.loads(text[: len(text) // 2])


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text(st.characters(exclude_categories=()), max_size=30),
                    st.sampled_from(["4", "12", "true", "False", "$(Site)", "$(System.X)", "UTC", "all", "monday",
                                     "environmentState", "event", "ReleaseStarted", "2", "-1", "1e999", "production",
                                     "Swap Slots", "..", "**/*.zip", "$(System.DefaultWorkingDirectory)/drop/a.json"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=20)


def _outcome(document: Any, options: ImportOptions) -> None:
    """An import either gives a definition Slipway's own validation accepts, or refuses with field errors."""
    try:
        result = import_definition(document, options)
    except Invalid as refused:
        assert refused.errors and all(e.field.startswith(("$", "target")) for e in refused.errors)
        return
    parse_definition(copy.deepcopy(result.definition))
    assert all(e.path.startswith("$") for e in result.report)
    for stage in result.definition["stages"]:
        known = {name: "x" for scope in (result.definition.get("variables") or {}, stage.get("variables") or {})
                 for name in scope}
        known.update({name: "x" for name in ALWAYS_DEFINED.values()})
        for step in stage["steps"]:
            if step["type"] == "manual-intervention":
                expand(step["instructions"], known)  # an imported intervention never fails on a name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, st.booleans())
def test_arbitrary_json_imports_or_is_refused(document: Any, strict: bool) -> None:
    _outcome(document, ImportOptions(strict=strict))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


PATHS = [[p for p in _paths(d) if p] for d in DOCUMENTS]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A sample with one to three of its values (anywhere, leaf or structure) replaced by arbitrary JSON."""
    index = draw(st.integers(0, len(DOCUMENTS) - 1))
    document = copy.deepcopy(DOCUMENTS[index])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[index]))
        here = document
        for segment in path[:-1]:
            if not _holds(here, segment):
                break
            here = here[segment]
        else:
            if _holds(here, path[-1]):
                here[path[-1]] = draw(JSON)
    return document


def _holds(container: Any, segment: Any) -> bool:
    if isinstance(container, dict):
        return segment in container
    return isinstance(container, list) and isinstance(segment, int) and segment < len(container)


@pytest.mark.skipif(not DOCUMENTS, reason="the Azure DevOps samples are not beside the repository")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_samples_with_hostile_parts_import_or_are_refused(document: Any, strict: bool) -> None:
    _outcome(document, ImportOptions(strict=strict))


TASK_IDS = ["497d490f-eea7-4f2b-ab94-48d9c1acdcb1", "501dd25d-1785-43e4-b4e5-a5c78ccc0573",
            "18bde28a-8172-45cb-b204-5cef1393dbb1", "f045e430-8704-11e6-968f-e717e6411619",
            "3eeea460-bffa-11e9-9cb5-2a2ae2dbcce4", "94a74903-f93f-4075-884f-dc11f34058b4",
            "28782b92-5e8e-4458-9751-a71cd1492bae", "9c3e8943-130d-4c78-ac63-8af81df62dfb",
            "537fdb7a-a601-4537-aa70-92645a2b5ce4", "bcb64569-d51a-4af0-9c01-ea5d05b3b622",
            "99a72e7f-25e4-4576-bf38-22a42b995ed8", "46e4be58-730b-4389-8a2f-ea10b3e5e815", "unknown"]
INPUT_NAMES = ["WebAppName", "WebAppKind", "DeployToSlotOrASEFlag", "DeployToSlotFlag", "ResourceGroupName",
               "SlotName", "Package", "UseWebDeploy", "DeploymentType", "appName", "appType", "deployToSlotOrASE",
               "resourceGroupName", "slotName", "package", "deploymentMethod", "Action", "SourceSlot",
               "SwapWithProduction", "TargetSlot", "PreserveVnet", "SpecifySlot", "Slot", "appSettings",
               "generalSettings", "action", "deploymentScope", "location", "templateLocation", "csmFile",
               "csmFileLink", "csmParametersFile", "overrideParameters", "deploymentMode", "deploymentName",
               "delayForMinutes", "connectedServiceNameSelector", "method", "urlSuffix", "headers", "body",
               "waitForCompletion", "successCriteria", "function", "key", "queryParameters", "instructions",
               "emailRecipients", "onTimeout", "severity", "ConnectionType", "ImageSource", "DockerRepository"]
INPUT_VALUES = st.one_of(SCALARS, st.sampled_from([
    "true", "false", "staging", "production", "Swap Slots", "Restart Azure App Service", "Cancel Swap",
    "Complete Swap", "Start Swap With Preview", "$(Site)", "contoso-web", "rg-web", "Subscription", "West Europe",
    "URL of the file", "https://x.example.com/t.json", "Linked artifact",
    "$(System.DefaultWorkingDirectory)/drop/a.json",
    "$(System.DefaultWorkingDirectory)/drop/a.zip", "-a 1 -b \"x y\" -c [1,2]", "-p (Get-Secret)", "Complete",
    "Validation", "30", "GET", "PUT", "/api?x=$(Build.BuildId)", '{"Authorization": "x", "A": "$(Site)"}',
    "eq(root['a'], 'b')", "ann@contoso.com;[x]\\y", "resume", '[{"name": "A", "value": "b", "slotSetting": true}]',
    "webAppContainer", "functionApp", "PublishProfile", "runFromZip", "zipDeploy", "Sev1,Sev2"]))


CANONICAL = [
    {"Action": "Swap Slots", "SourceSlot": "staging"}, {"Action": "Restart Azure App Service"},
    {"Action": "Cancel Swap", "Slot": "staging"}, {"Action": "Start Swap With Preview", "SourceSlot": "staging"},
    {"csmFile": "$(System.DefaultWorkingDirectory)/drop/infra/main.json", "overrideParameters": "-a 1"},
    {"deploymentScope": "Subscription", "location": "westeurope", "templateLocation": "URL of the file",
     "csmFileLink": "https://x.example.com/t.json"},
    {"WebAppName": "$(Site)", "DeployToSlotOrASEFlag": "true", "SlotName": "staging",
     "Package": "$(System.DefaultWorkingDirectory)/drop/a.zip"},
    {"delayForMinutes": "5"}, {"urlSuffix": "/x", "method": "GET"}, {"instructions": "do $(Site)"}, {}]


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    inputs = dict(draw(st.sampled_from(CANONICAL)))
    for name in draw(st.lists(st.sampled_from(INPUT_NAMES), max_size=3)):
        inputs[name] = draw(INPUT_VALUES)
    return {"taskId": draw(st.sampled_from(TASK_IDS)), "version": draw(st.sampled_from(["0.*", "1.*", "3.*", "4.*"])),
            "name": draw(st.sampled_from(["Deploy", "Deploy", "", "Swap", "x" * 70])),
            **draw(st.sampled_from(FLAGS)), "inputs": inputs}


FLAGS = [{"enabled": True, "continueOnError": False, "condition": "succeeded()"},
         {"enabled": True, "continueOnError": True, "condition": "always()"},
         {"enabled": False}, {"enabled": "true", "condition": "eq(1,1)"}]
CONDITIONS = [{"name": n, "conditionType": t, "value": v} for n, t, v in [
    ("ReleaseStarted", "event", ""), ("ReleaseStarted", 1, ""), ("Dev", "environmentState", "4"), ("QA", 2, "12"),
    ("Prod", 2, "132"), ("dev", 2, 16), ("Nowhere", 2, "4"), ("Dev", "artifact", "{}"), ("x", 9, ""),
    ("Dev", 2, "succeeded")]]
APPROVERS = [{"rank": r, "isAutomated": a, "approver": {"uniqueName": u, "displayName": d}} for r, a, u, d in [
    (1, True, "", ""), (1, False, "ann@x.com", "Ann"), (2, False, "bob@x.com", "Bob"), (1, False, "[P]\\G", "[P]\\G"),
    (1, False, "", ""), (0, False, "CONTOSO\\cy", "Cy")]]
APPROVAL_OPTIONS = [{}, {"requiredApproverCount": 1, "releaseCreatorCanBeApprover": True},
                    {"requiredApproverCount": 2, "timeoutInMinutes": 10**9, "executionOrder": 4},
                    {"requiredApproverCount": 99, "executionOrder": "beforeGates",
                     "autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped": True, "timeoutInMinutes": -5},
                    {"executionOrder": 7, "enforceIdentityRevalidation": True}]
GATE_OPTIONS = [None, {}, {"isEnabled": False}, {"isEnabled": True},
                {"isEnabled": True, "timeout": 5, "samplingInterval": 15, "stabilizationTime": 5000,
                 "minimumSuccessDuration": 2000},
                {"isEnabled": True, "timeout": 10**6, "samplingInterval": 0, "stabilizationTime": 0,
                 "minimumSuccessDuration": 30}]
SCHEDULES = [{"daysToRelease": d, "startHours": 3, "startMinutes": 30, "timeZoneId": z} for d, z in [
    (0, "UTC"), (31, "W. Europe Standard Time"), (127, "Nope"), ("monday,friday", "UTC")]]
TRIGGERS = [{"triggerType": 1, "artifactAlias": "drop", "triggerConditions": [{"sourceBranch": "main"}]},
            {"triggerType": "artifactSource", "artifactAlias": "_drop",
             "triggerConditions": [{"sourceBranch": "-dev", "tags": ["x"]}, {"useBuildDefinitionBranch": True}]},
            {"triggerType": 2, "schedule": {"daysToRelease": 31, "startHours": 3, "startMinutes": 0}},
            {"triggerType": 2, "schedule": {"daysToRelease": 0}}, {"triggerType": 6}, {"triggerType": 1}]


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """Definitions built from the parts the importer maps, with plausible and implausible values."""
    names = draw(st.lists(st.sampled_from(["Dev", "QA", "Prod", "dev", " Prod ", "x" * 70]), min_size=1,
                          max_size=3))
    environments = []
    for name in names:
        gates = [{"tasks": draw(st.lists(tasks(), max_size=2))}]
        environments.append({
            "name": name, "rank": draw(st.integers(0, 3)),
            "conditions": draw(st.lists(st.sampled_from(CONDITIONS), max_size=3)),
            "schedules": draw(st.lists(st.sampled_from(SCHEDULES), max_size=2)),
            "variables": {"Site": {"value": draw(st.sampled_from(["contoso-web", "bad name!", ""]))}},
            "preDeployApprovals": {"approvals": draw(st.lists(st.sampled_from(APPROVERS), max_size=3)),
                                   "approvalOptions": draw(st.sampled_from(APPROVAL_OPTIONS))},
            "postDeployApprovals": {"approvals": draw(st.lists(st.sampled_from(APPROVERS), max_size=2)),
                                    "approvalOptions": draw(st.sampled_from(APPROVAL_OPTIONS))},
            "preDeploymentGates": {"gatesOptions": draw(st.sampled_from(GATE_OPTIONS)), "gates": gates},
            "postDeploymentGates": {"gatesOptions": draw(st.sampled_from(GATE_OPTIONS)), "gates": []},
            "deployPhases": [{"rank": 1, "phaseType": draw(st.sampled_from([1, 2, 4, "runOnServer"])),
                              "name": "Job", "workflowTasks": draw(st.lists(tasks(), max_size=4))}],
            "executionPolicy": {"concurrencyCount": draw(st.sampled_from([-1, 0, 1, 200])), "queueDepthCount": 1}})
    return {"name": "Web", "environments": environments,
            "variables": {"Site": {"value": "contoso-web"}, "Token": {"value": "t0ken", "isSecret": True}},
            "artifacts": draw(st.sampled_from([[], [{"alias": "drop", "isPrimary": True}],
                                               [{"alias": "_drop"}, {"alias": "drop"}]])),
            "triggers": draw(st.lists(st.sampled_from(TRIGGERS), max_size=2)),
            "releaseNameFormat": draw(st.sampled_from(["", "Release-$(rev:r)", "$(date:yyyy)-$(rev:rr)", "$("]))}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions(), st.booleans())
def test_definitions_of_every_part_import_or_are_refused(document: dict[str, Any], strict: bool) -> None:
    _outcome(document, ImportOptions(strict=strict))

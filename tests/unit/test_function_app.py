"""The app indexes: every function is registered with the trigger we mean, schedules are NCRONTAB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from croniter import croniter

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "definitions_collection": ("httpTrigger", "api/definitions"),
    "definition_item": ("httpTrigger", "api/definitions/{definitionId:int}"),
    "definition_schema": ("httpTrigger", "api/schemas/definition.json"),
    "definition_revisions": ("httpTrigger", "api/definitions/{definitionId:int}/revisions"),
    "definition_revision": ("httpTrigger", "api/definitions/{definitionId:int}/revisions/{revision:int}"),
    "clone_stage": ("httpTrigger", "api/definitions/{definitionId:int}/stages/{stage}/clone"),
    "definition_environments": ("httpTrigger", "api/definitions/{definitionId:int}/environments"),
    "definition_metrics": ("httpTrigger", "api/definitions/{definitionId:int}/metrics"),
    "releases_collection": ("httpTrigger", "api/releases"),
    "release_item": ("httpTrigger", "api/releases/{releaseId:int}"),
    "abandon_release": ("httpTrigger", "api/releases/{releaseId:int}/abandon"),
    "deploy_stage": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/deploy"),
    "release_events": ("httpTrigger", "api/releases/{releaseId:int}/events"),
    "stage_preview": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}"),
    "ignore_gate": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/gates/{kind}/ignore"),
    "step_log": ("httpTrigger",
                 "api/releases/{releaseId:int}/stages/{stage}/deployments/{attempt:int}/steps/{step:int}/log"),
    "artifact_webhook": ("httpTrigger", "api/artifacts"),
    "github_hook": ("httpTrigger", "api/hooks/github"),
    "hook_deliveries": ("httpTrigger", "api/hooks/deliveries"),
    "acr_hook": ("httpTrigger", "api/hooks/acr"),
    "azure_devops_hook": ("httpTrigger", "api/hooks/azure-devops"),
    "release_logs": ("httpTrigger", "api/releases/{releaseId:int}/logs"),
    "health": ("httpTrigger", "api/health"),
    "openapi_document": ("httpTrigger", "api/openapi.json"),
    "decide_approval": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/approvals/{kind}"),
    "override_approval": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/approvals/{kind}/override"),
    "reassign_approval": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/approvals/{kind}/reassign"),
    "defer_deployment": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/defer"),
    "list_approvals": ("httpTrigger", "api/approvals"),
    "batch_decide": ("httpTrigger", "api/approvals/batch"),
    "run_event": ("queueTrigger", "slipway-events"),
    "run_gate_sample": ("queueTrigger", "slipway-gates"),
    "send_mail": ("queueTrigger", "slipway-mail"),
    "mail_poisoned": ("queueTrigger", "slipway-mail-poison"),
    "approval_page": ("httpTrigger", "api/approve/{token}"),
    "intervention_page": ("httpTrigger", "api/intervene/{token}"),
    "step_callback": ("httpTrigger", "api/callbacks/{token}"),
    "variable_groups_collection": ("httpTrigger", "api/variable-groups"),
    "variable_group_item": ("httpTrigger", "api/variable-groups/{name}"),
    "decide_intervention": ("httpTrigger", "api/releases/{releaseId:int}/stages/{stage}/interventions/{step:int}"),
    "run_step": ("queueTrigger", "slipway-steps"),
    "step_poisoned": ("queueTrigger", "slipway-steps-poison"),
    "sweep": ("timerTrigger", "%SLIPWAY_SWEEP_SCHEDULE%"),
    "schedule_tick": ("timerTrigger", "%SLIPWAY_SCHEDULER_SCHEDULE%"),
    "retention_tick": ("timerTrigger", "%SLIPWAY_RETENTION_SCHEDULE%"),
    "metrics_tick": ("timerTrigger", "%SLIPWAY_METRICS_SCHEDULE%"),
    "retain_release": ("httpTrigger", "api/releases/{releaseId:int}/retain"),
    "dashboard": ("httpTrigger", "{*path}"),
    "pipeline_editor": ("httpTrigger", "editor/{*path}"),
    "import_definition": ("httpTrigger", "api/definitions/import"),
    "tokens_collection": ("httpTrigger", "api/tokens"),
    "revoke_token": ("httpTrigger", "api/tokens/{tokenId}"),
    "ado_organization": ("httpTrigger", "ado/{organization}/_apis/{*rest}"),
    "ado_project": ("httpTrigger", "ado/{organization}/{project}/_apis/{*rest}"),
    "ado_elsewhere": ("httpTrigger", "ado/{*path}"),
}


@pytest.fixture(scope="module")
def functions() -> dict[str, object]:
    import function_app

    function_app.app.functions_bindings = {}  # get_functions() works once per app object
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def test_registered_functions_and_triggers(functions: dict[str, object]) -> None:
    seen = {}
    for name, f in functions.items():
        trigger = f.get_trigger()  # type: ignore[attr-defined]
        where = getattr(trigger, "route", None) or getattr(trigger, "queue_name", None) or trigger.schedule
        seen[name] = (trigger.get_binding_name(), where)
    assert seen == EXPECTED


def test_queue_triggers_use_the_storage_connection(functions: dict[str, object]) -> None:
    for f in functions.values():
        trigger = f.get_trigger()  # type: ignore[attr-defined]
        if trigger.get_binding_name() == "queueTrigger":
            assert trigger.connection == "AzureWebJobsStorage"


def test_every_timer_schedule_is_six_field_ncrontab_after_setting_expansion(functions: dict[str, object]) -> None:
    values = json.loads((REPO / "local.settings.example.json").read_text())["Values"]
    timers = [f.get_trigger() for f in functions.values()  # type: ignore[attr-defined]
              if f.get_trigger().get_binding_name() == "timerTrigger"]  # type: ignore[attr-defined]
    assert timers
    for trigger in timers:
        schedule = re.sub(r"%([^%]+)%", lambda m: values[m[1]], trigger.schedule)
        assert len(schedule.split()) == 6, schedule
        assert croniter.is_valid(schedule, second_at_beginning=True), schedule
        assert trigger.run_on_startup is False


def test_http_functions_keep_their_request_parameter_name(functions: dict[str, object]) -> None:
    import inspect

    for f in functions.values():
        trigger = f.get_trigger()  # type: ignore[attr-defined]
        params = list(inspect.signature(f.get_user_function()).parameters)  # type: ignore[attr-defined]
        assert params == [trigger.name]


def test_the_api_document_covers_exactly_the_registered_routes(functions: dict[str, object]) -> None:
    from shared.openapi import document

    registered = set()
    for f in functions.values():
        trigger = f.get_trigger()  # type: ignore[attr-defined]
        if trigger.get_binding_name() != "httpTrigger" or not trigger.route.startswith("api/"):
            continue  # the dashboard's pages are HTML, outside the API
        path = "/" + re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", trigger.route.removeprefix("api/"))
        registered |= {(path, str(getattr(m, "value", m)).lower()) for m in trigger.methods}
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert documented == registered


def test_the_api_document_is_valid_openapi_31() -> None:
    from openapi_spec_validator import validate

    from shared.openapi import document

    validate(document())

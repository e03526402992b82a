"""No secret leaves: setting values are write-only, gates send only allowlisted settings, package
URLs lose their signatures, logs lose keys and tokens. The scan at the end reads every API route
and every dashboard page as a reader and finds none of the secrets planted on the way."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any

import azure.functions as func
import pytest

import function_app
from functions import definitions_api as defs
from functions import releases_api as rels
from functions.http import api as api_errors
from tests.integration.conftest import SUB, World, stage
from tests.integration.test_dashboard import visit
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

PASSWORD = "PLANTED-db-password-7f3a"
SAS = "sv=2025-05-05&sr=b&sig=PLANTEDsasSIGNATURE%3D"
READER = as_("rita@contoso.com")


def settings_stage(values: dict[str, Any]) -> dict[str, Any]:
    return stage("Dev", {"type": "afterRelease"}, steps=[{"type": "set-app-settings", "settings": values},
                                                          {"type": "deploy-package"}])


def define(world: World, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"name": "Secrets", "artifacts": [{"alias": "web", "source": "secret-web"}],
            "stages": [settings_stage(values)], **extra}
    status, created = call(defs.definitions_collection, "POST", body)
    assert status == 201, created
    return created  # type: ignore[no-any-return]


def slot(world: World) -> dict[str, str]:
    return world.app_service.settings[f"/subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/"
                                      f"Microsoft.Web/sites/tailspin/slots/dev"]


def test_setting_values_are_write_only_and_an_update_keeps_what_it_does_not_send(api: World) -> None:  # noqa: F811
    created = define(api, {"DB_PASSWORD": PASSWORD, "FEATURE": {"value": "on", "secret": False}})
    shown = created["stages"][0]["steps"][0]["settings"]
    assert shown == {"DB_PASSWORD": {"secret": True}, "FEATURE": {"value": "on", "secret": False}}
    did = created["id"]
    status, read = call(defs.definition_item, "GET", definitionId=did, headers=READER)
    assert status == 200 and PASSWORD not in str(read)
    read["description"] = "changed by a round trip of what GET answered"
    status, updated = call(defs.definition_item, "PUT", read, definitionId=did)
    assert status == 200, updated
    assert PASSWORD not in str(call(defs.definition_revisions, "GET", definitionId=did, headers=READER)[1])
    api.deps.packages.blobs.add("secret-web/1.0.zip")  # type: ignore[attr-defined]
    status, rel = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [
        {"alias": "web", "version": "1.0", "package": "secret-web/1.0.zip"}]})
    assert status == 201, rel
    api.pump()
    assert slot(api)["DB_PASSWORD"] == PASSWORD and slot(api)["FEATURE"] == "on"  # applied, never shown
    log = call(rels.step_log, "GET", releaseId=rel["id"], stage="Dev", attempt=1, step=0, headers=READER)[1]
    assert "DB_PASSWORD" in log and PASSWORD not in log
    read["stages"][0]["steps"][0]["settings"]["NEW_SECRET"] = {"secret": True}
    status, problem = call(defs.definition_item, "PUT", read, definitionId=did)
    assert status == 400 and problem["errors"][0]["field"] == "stages[0].steps[0].settings.NEW_SECRET"
    bad = {"FEATURE": {"secret": False}}
    status, problem = call(defs.definitions_collection, "POST", {**read, "stages": [settings_stage(bad)]})
    assert status == 400 and problem["errors"][0]["field"].startswith("stages[0].steps[0].settings.FEATURE")


def test_a_gate_may_name_only_allowlisted_settings_for_its_host(api: World) -> None:  # noqa: F811
    signal = {"name": "status", "type": "rest", "url": "https://status.example/api", "jsonPath": "$.ok",
              "threshold": True, "headersFromSettings": {"X-Key": "STATUS_KEY"}}
    body = {"name": "Gated", "stages": [{**stage("Dev"), "steps": [], "postGates": {"signals": [signal]}}]}
    status, problem = call(defs.definitions_collection, "POST", body)
    field = "stages[0].postGates.signals[0].headersFromSettings.X-Key"
    assert status == 400 and problem["errors"][0]["field"] == field and "allowlist" in problem["errors"][0]["message"]
    api.deps.settings = api.deps.settings.__class__(**{**api.deps.settings.__dict__,
                                                       "gate_header_settings": "STATUS_KEY@status.example"})
    assert call(defs.definitions_collection, "POST", body)[0] == 201
    for url, word in (("https://evil.example/x", "status.example only"), ("http://status.example/x", "https")):
        elsewhere = {**body, "stages": [{**body["stages"][0], "postGates": {"signals": [{**signal, "url": url}]}}]}
        status, problem = call(defs.definitions_collection, "POST", elsewhere)
        assert status == 400 and word in problem["errors"][0]["message"]
    storage = {**signal, "headersFromSettings": {"X-Key": "AzureWebJobsStorage"}}
    status, problem = call(defs.definitions_collection, "POST",
                           {**body, "stages": [{**body["stages"][0], "postGates": {"signals": [storage]}}]})
    assert status == 400 and "never sent" in problem["errors"][0]["message"]


def test_the_error_handler_logs_the_url_without_keys_or_tokens(caplog: pytest.LogCaptureFixture) -> None:
    @api_errors
    def broken(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("boom")

    req = func.HttpRequest("GET", "https://slipway.example/api/approve/TOKEN123?code=KEY456&x=1", body=b"")
    with caplog.at_level(logging.ERROR):
        assert broken(req).status_code == 500
    assert "boom" in caplog.text and "KEY456" not in caplog.text and "TOKEN123" not in caplog.text
    assert "code=***" in caplog.text


# -- the scan


def _api_gets() -> list[tuple[Any, str]]:
    function_app.app.functions_bindings = {}
    out = []
    for f in function_app.app.get_functions():
        trigger = f.get_trigger()
        if trigger.get_binding_name() == "httpTrigger" and "GET" in {str(getattr(m, "value", m)) for m in
                                                                    trigger.methods or []}:
            out.append((f.get_user_function(), trigger.route))
    return out


def _fill(route: str, values: dict[str, str]) -> dict[str, str]:
    return {name: values[name] for name in re.findall(r"\{(\w+)(?::\w+)?\}", route) if name in values}


def _text(resp: func.HttpResponse) -> str:
    data = resp.get_body() or b""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(archive.read(n).decode(errors="replace") for n in archive.namelist())
    return data.decode(errors="replace") + str(dict(resp.headers))


def test_a_reader_finds_no_planted_secret_in_any_answer_or_page(api: World) -> None:  # noqa: F811
    key = api.deps.function_keys.keys["default"]  # type: ignore[attr-defined]
    url = f"https://builds.example/secret-web-2.0.zip?{SAS}"
    api.deps.packages.urls[url] = b"the package"  # type: ignore[attr-defined]
    gate = {"signals": [{"name": "ok", "type": "rest", "url": "https://status.example/", "threshold": True}],
            "intervalMinutes": 1, "timeoutMinutes": 5}
    created = define(api, {"DB_PASSWORD": PASSWORD}, releaseNameFormat="Release-$(rev:r)")
    did = created["id"]
    body = {**{k: v for k, v in created.items() if k not in ("id", "revision", "modifiedBy", "modifiedOn")}}
    body["stages"] = [{**body["stages"][0], "postGates": gate,
                       "preApprovals": {"approvers": ["tim@contoso.com"], "requesterCannotApprove": False}},
                      stage("Test", {"type": "afterStages", "stages": ["Dev"]})]
    assert call(defs.definition_item, "PUT", body, definitionId=did)[0] == 200
    from shared.domain.gates import Reading
    api.deps.signals.script["ok"] = [Reading("ok", value=True)]  # type: ignore[attr-defined]
    hook = {"source": "secret-web", "version": "2.0", "branch": "main", "packageUrl": url}
    status, out = call(rels.artifact_webhook, "POST", hook, headers={"x-functions-key": key})
    assert status in (200, 201), out
    status, rel = call(rels.releases_collection, "POST", {"definitionId": did, "debug": True,
                                                          "artifacts": [{"alias": "web", "version": "2.0"}]},
                       headers={"x-functions-key": key})
    assert status == 201, rel
    api.pump()
    values = {"definitionId": str(did), "releaseId": str(rel["id"]), "revision": "2", "stage": "Dev",
              "attempt": "1", "step": "1", "kind": "pre"}
    seen = []
    for function, route in _api_gets():
        req = func.HttpRequest("GET", f"http://localhost/{route}", body=b"", headers=READER,
                               params={"verify": "true", "status": "all"}, route_params=_fill(route, values))
        resp = function(req)
        assert resp.status_code < 500, route
        seen.append((route, _text(resp)))
    rid = rel["id"]
    for path in ["", f"pipelines/{did}", f"releases/{rid}", f"releases/{rid}?part=live", "approvals?all=1",
                 f"pipelines/{did}/environments?verify=true&a={rid}&b={rid}", "metrics",
                 f"releases/{rid}/logs.zip", f"releases/{rid}/stages/Dev/deployments/1/steps/0/log",
                 f"releases/{rid}/stages/Dev/deployments/1/steps/1/log?raw=1"]:
        route, _, query = path.partition("?")
        resp = visit(route, headers=READER, params=dict(p.split("=") for p in query.split("&")) if query else None)
        assert resp.status_code == 200, path
        seen.append((path, _text(resp)))
    assert len(seen) > 20
    for where, text in seen:
        assert PASSWORD not in text, where
        assert "PLANTEDsasSIGNATURE" not in text and "sig=" not in text, where
        assert key not in text, where
    assert any("secret-web-2.0.zip" in text for _, text in seen)  # the package is named, without its query

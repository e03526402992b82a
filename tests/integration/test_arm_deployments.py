"""ARM template deployments: the adapter drives the emulator through the real DeploymentsMgmtClient, and the
`arm-deployment` step runs with that adapter (a small fake of the package port serves the artifact zip)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from local.arm_deployments_emulator import ArmDeploymentsEmulator
from shared.adapters.arm_deployments import ArmDeployments
from shared.config import Settings
from shared.domain.keys import key_hash
from shared.domain.release import Deployment, Release, StepRun
from shared.domain.vocabulary import Reason, Status
from shared.ports import ArmTemplate, TargetError, WhatIfChange
from shared.schemas.step_arm import ArmDeploymentStep
from shared.services.deps import Deps
from shared.services.steps.arm import arm_deployment, describe, preview, stop_arm_deployment
from shared.services.steps.context import Outcome, StepContext
from tests.fakes import FakeClock, FakePackages

SUB = "00000000-0000-0000-0000-0000000000ab"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-app"
SUB_SCOPE = f"/subscriptions/{SUB}"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
STORAGE = "Microsoft.Storage/storageAccounts"


def storage_template(**extra_outputs: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA, "contentVersion": "1.0.0.0",
        "parameters": {"prefix": {"type": "string"},
                       "sku": {"type": "string", "defaultValue": "Standard_LRS",
                               "allowedValues": ["Standard_LRS", "Premium_LRS"]},
                       "adminKey": {"type": "securestring", "defaultValue": "s3cr3t-default"}},
        "variables": {"account": "[concat(parameters('prefix'), 'data')]"},
        "resources": [{"type": STORAGE, "apiVersion": "2023-01-01", "name": "[variables('account')]",
                       "location": "[resourceGroup().location]", "sku": {"name": "[parameters('sku')]"},
                       "properties": {"minimumTlsVersion": "TLS1_2"}}],
        "outputs": {"accountId": {"type": "string", "value": f"[resourceId('{STORAGE}', variables('account'))]"},
                    "settings": {"type": "object", "value": {"group": "[resourceGroup().name]", "tls": "TLS1_2"}},
                    "key": {"type": "securestring", "value": "[parameters('adminKey')]"}, **extra_outputs}}


def group_template() -> dict[str, Any]:
    """A subscription-scope template: a resource group."""
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "parameters": {"name": {"type": "string"}},
            "resources": [{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01",
                           "name": "[parameters('name')]", "location": "northeurope", "properties": {}}],
            "outputs": {"sub": {"type": "string", "value": "[subscription().subscriptionId]"}}}


@pytest.fixture
def emulator() -> Iterator[ArmDeploymentsEmulator]:
    with ArmDeploymentsEmulator() as running:
        running.add_resource_group(SUB, "rg-app", "westeurope")
        yield running


@pytest.fixture
def arm(emulator: ArmDeploymentsEmulator) -> ArmDeployments:
    return ArmDeployments(Settings(deployments_endpoint=emulator.url, arm_auth="local-emulator"))


def follow(arm: ArmDeployments, scope: str, name: str, looks: int = 10) -> Any:
    for _ in range(looks):
        found = arm.get(scope, name)
        assert found is not None
        if found.finished:
            return found
    raise AssertionError(f"{name} did not finish in {looks} looks")


def puts(emulator: ArmDeploymentsEmulator) -> list[str]:
    return [r.path for r in emulator.requests if r.method == "PUT"]


# -- the adapter against the emulator


def test_a_resource_group_deployment_runs_over_several_looks_and_keeps_its_resources(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    arm.deploy(RG, "web-1", ArmTemplate(template=storage_template(), parameters={"prefix": "tail"}))
    first = arm.get(RG, "web-1")
    assert first is not None and first.state == "Running" and not first.finished
    done = follow(arm, RG, "web-1")
    account = f"{RG}/providers/{STORAGE}/taildata"
    assert done.state == "Succeeded"
    assert done.outputs == {"accountId": account, "settings": {"group": "rg-app", "tls": "TLS1_2"}}
    assert "key" not in done.outputs and done.secure_outputs == ("key",)
    kept = emulator.resources[account]
    assert (kept.type, kept.api_version, kept.location, kept.properties, kept.sku) == \
        (STORAGE, "2023-01-01", "westeurope", {"minimumTlsVersion": "TLS1_2"}, {"name": "Standard_LRS"})
    assert [(o["resource"], o["operation"], o["state"]) for o in arm.operations(RG, "web-1")] == \
        [(account, "Create", "Succeeded")]
    assert arm.get(RG, "no-such-deployment") is None
    assert len(puts(emulator)) == 1


def test_a_subscription_deployment_needs_a_location_and_creates_resource_groups(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    arm.deploy(SUB_SCOPE, "groups-1", ArmTemplate(template=group_template(), parameters={"name": "rg-new"},
                                                  location="westeurope"))
    done = follow(arm, SUB_SCOPE, "groups-1")
    assert done.state == "Succeeded" and done.outputs == {"sub": SUB}
    assert (SUB, "rg-new") in {(g.subscription, g.name) for g in emulator.resource_groups.values()}
    body = {"properties": {"mode": "Incremental", "template": group_template(),
                           "parameters": {"name": {"value": "x"}}}}
    url = f"{emulator.url}{SUB_SCOPE}/providers/Microsoft.Resources/deployments/no-location?api-version=2026-06-01"
    refused = httpx.put(url, json=body, headers={"Authorization": "Bearer t"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "LocationRequired"
    with pytest.raises(TargetError) as err:
        arm.deploy(SUB_SCOPE, "groups-2", ArmTemplate(template=group_template(), parameters={"name": "y"}))
    assert not err.value.retryable and "location" in str(err.value)


def test_a_failing_resource_fails_the_deployment_with_the_providers_reason(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.fail_resource_type(STORAGE, "StorageAccountAlreadyTaken", "The storage account named taildata is "
                                                                       "already taken.")
    arm.deploy(RG, "web-2", ArmTemplate(template=storage_template(), parameters={"prefix": "tail"}))
    done = follow(arm, RG, "web-2")
    assert done.state == "Failed" and done.outputs == {}
    assert done.error.startswith("DeploymentFailed: At least one resource deployment operation failed")
    assert "StorageAccountAlreadyTaken: The storage account named taildata is already taken." in done.error
    failed = arm.operations(RG, "web-2")
    assert [(o["state"], o["message"]) for o in failed] == \
        [("Failed", "StorageAccountAlreadyTaken: The storage account named taildata is already taken.")]
    assert f"{RG}/providers/{STORAGE}/taildata" not in emulator.resources


def test_cancel_stops_a_running_deployment_and_leaves_a_finished_one(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.deployment_polls = 1000
    arm.deploy(RG, "slow", ArmTemplate(template=storage_template(), parameters={"prefix": "slow"}))
    assert arm.get(RG, "slow").state == "Running"  # type: ignore[union-attr]
    again = httpx.put(f"{emulator.url}{RG}/providers/Microsoft.Resources/deployments/slow?api-version=2026-06-01",
                      json={"properties": {"mode": "Incremental", "template": storage_template(),
                                           "parameters": {"prefix": {"value": "slow"}}}},
                      headers={"Authorization": "Bearer t"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "DeploymentActiveAndUneditable"
    arm.cancel(RG, "slow")
    assert arm.get(RG, "slow").state == "Canceled"  # type: ignore[union-attr]
    arm.cancel(RG, "slow")  # ARM answers 409 DeploymentCannotBeCancelled: nothing left to do
    raw = httpx.post(f"{emulator.url}{RG}/providers/Microsoft.Resources/deployments/slow/cancel"
                     f"?api-version=2026-06-01", headers={"Authorization": "Bearer t"})
    assert raw.status_code == 409 and raw.json()["error"]["code"] == "DeploymentCannotBeCancelled"
    arm.cancel(RG, "never-started")


def test_what_if_compares_with_what_is_there(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    stray = f"{RG}/providers/Microsoft.Web/serverfarms/old-plan"
    emulator.add_resource(stray, "Microsoft.Web/serverfarms", {"reserved": True})
    template = storage_template()
    template["resources"].append({"type": "Microsoft.Insights/components", "apiVersion": "2020-02-02",
                                  "name": "insights", "location": "westeurope", "kind": "web",
                                  "properties": {"Application_Type": "web"}})
    arm.deploy(RG, "base", ArmTemplate(template=template, parameters={"prefix": "tail"}))
    follow(arm, RG, "base")
    account, insights = f"{RG}/providers/{STORAGE}/taildata", f"{RG}/providers/Microsoft.Insights/components/insights"
    changed = storage_template()
    changed["resources"][0]["properties"]["allowBlobPublicAccess"] = False
    changed["resources"].append({"type": STORAGE, "apiVersion": "2023-01-01", "name": "newdata",
                                 "location": "westeurope", "properties": {}})
    incremental = {c.resource_id: c for c in arm.what_if(RG, ArmTemplate(template=changed,
                                                                         parameters={"prefix": "tail",
                                                                                     "sku": "Premium_LRS"}))}
    assert incremental[account] == WhatIfChange(account, "Modify",
                                                ("sku.name", "properties.allowBlobPublicAccess"))
    assert incremental[f"{RG}/providers/{STORAGE}/newdata"].change == "Create"
    assert incremental[stray].change == "Ignore" and incremental[insights].change == "Ignore"
    complete = {c.resource_id: c.change for c in arm.what_if(RG, ArmTemplate(template=template,
                                                                             parameters={"prefix": "tail"},
                                                                             mode="Complete"))}
    assert complete == {account: "NoChange", insights: "NoChange", stray: "Delete"}
    assert stray in emulator.resources  # what-if changes nothing
    assert describe([incremental[account], WhatIfChange(stray, "Delete"),
                     WhatIfChange(f"{RG}/providers/{STORAGE}/newdata", "Create")]) == [
        f"~ modify {account}: sku.name, properties.allowBlobPublicAccess", f"- delete {stray}",
        f"+ create {RG}/providers/{STORAGE}/newdata"]


def test_complete_mode_deletes_what_the_template_does_not_declare(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    stray = f"{RG}/providers/Microsoft.Web/serverfarms/old-plan"
    emulator.add_resource(stray, "Microsoft.Web/serverfarms", {})
    arm.deploy(RG, "complete", ArmTemplate(template=storage_template(), parameters={"prefix": "tail"},
                                           mode="Complete"))
    assert follow(arm, RG, "complete").state == "Succeeded"
    assert stray not in emulator.resources and f"{RG}/providers/{STORAGE}/taildata" in emulator.resources
    assert ("Delete", stray) in {(o["operation"], o["resource"]) for o in arm.operations(RG, "complete")}


def test_a_template_spec_version_and_a_template_url(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    spec = f"{RG}/providers/Microsoft.Resources/templateSpecs/storage/versions/1.0"
    emulator.add_template_spec(spec, storage_template())
    arm.deploy(RG, "from-spec", ArmTemplate(spec_id=spec, parameters={"prefix": "spec"}))
    assert follow(arm, RG, "from-spec").outputs["accountId"].endswith("/specdata")
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "no-spec", ArmTemplate(spec_id=spec.replace("1.0", "9.9"), parameters={"prefix": "x"}))
    assert not err.value.retryable and "9.9" in str(err.value)
    with serve_json(storage_template()) as url:
        arm.deploy(RG, "from-url", ArmTemplate(uri=url, parameters={"prefix": "url"}))
    assert follow(arm, RG, "from-url").outputs["accountId"].endswith("/urldata")
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "plain-http", ArmTemplate(uri="http://templates.example/main.json", parameters={}))
    assert not err.value.retryable and "InvalidContentLink" in str(err.value)


class serve_json:
    """A template served over plain http from 127.0.0.1 (which the emulator allows for tests only)."""

    def __init__(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/main.json"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_throttling_is_retryable_with_its_retry_after(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.inject("create", "throttle")
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "busy", ArmTemplate(template=storage_template(), parameters={"prefix": "b"}))
    assert err.value.retryable and err.value.retry_after == 2 and "429" in str(err.value)
    assert arm.get(RG, "busy") is None  # a throttled PUT created nothing
    emulator.inject("get", "error")
    with pytest.raises(TargetError) as err:
        arm.get(RG, "busy")
    assert err.value.retryable and "500" in str(err.value)


@pytest.mark.parametrize(("change", "named"), [
    (lambda t: t["resources"][0].__setitem__("name", "[format('{0}x', parameters('prefix'))]"),
     "[format('{0}x', parameters('prefix'))]"[1:-1]),
    (lambda t: t["variables"].__setitem__("account", "[toLower(parameters('prefix'))]"), "toLower"),
    (lambda t: t["resources"][0].__setitem__("location", "[resourceGroup().region]"), "'region' doesn't exist"),
    (lambda t: t["parameters"]["prefix"].__setitem__("type", "int"), "Expected 'Int'"),
    (lambda t: t.__setitem__("extra", 1), "Could not find member 'extra'"),
])
def test_an_invalid_template_is_refused_naming_the_problem(arm: ArmDeployments, change: Any, named: str) -> None:
    template = storage_template()
    change(template)
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "bad", ArmTemplate(template=template, parameters={"prefix": "tail"}))
    assert not err.value.retryable and "InvalidTemplate" in str(err.value) and named in str(err.value)


def test_a_missing_parameter_or_a_value_not_allowed_is_refused(arm: ArmDeployments) -> None:
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "bad", ArmTemplate(template=storage_template(), parameters={}))
    assert "The value for the template parameter 'prefix'" in str(err.value) and "is not provided" in str(err.value)
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "bad", ArmTemplate(template=storage_template(), parameters={"prefix": "a", "sku": "Gold"}))
    assert "not part of the allowed value(s): 'Standard_LRS,Premium_LRS'" in str(err.value)
    with pytest.raises(TargetError) as err:
        arm.deploy(RG, "bad", ArmTemplate(template=storage_template(), parameters={"prefix": "a", "nope": 1}))
    assert "'nope'" in str(err.value) and not err.value.retryable


def test_the_emulator_refuses_what_arm_refuses(emulator: ArmDeploymentsEmulator) -> None:
    body = {"properties": {"mode": "Incremental", "template": storage_template(),
                           "parameters": {"prefix": {"value": "a"}}}}
    base = f"{emulator.url}{RG}/providers/Microsoft.Resources/deployments"
    auth = {"Authorization": "Bearer t"}

    def code(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    assert code(httpx.put(f"{base}/ok", json=body)) == (401, "AuthenticationFailed")
    assert code(httpx.put(f"{base}/ok", json=body, headers=auth)) == (400, "MissingApiVersionParameter")
    assert code(httpx.put(f"{base}/ok?api-version=2019-01-01", json=body, headers=auth)) == \
        (400, "InvalidApiVersionParameter")
    assert code(httpx.put(f"{base}/{'n' * 65}?api-version=2026-06-01", json=body, headers=auth)) == \
        (400, "DeploymentNameLengthLimitExceeded")
    assert code(httpx.put(f"{base}/bad%20name?api-version=2026-06-01", json=body, headers=auth)) == \
        (400, "DeploymentNameInvalidCharacters")
    assert code(httpx.put(f"{base}/ok?api-version=2026-06-01", json={"properties": {"template": {}}},
                          headers=auth)) == (400, "InvalidRequestContent")
    other = f"{emulator.url}/subscriptions/{SUB}/resourcegroups/rg-none/providers/Microsoft.Resources/deployments"
    assert code(httpx.put(f"{other}/ok?api-version=2026-06-01", json=body, headers=auth)) == \
        (404, "ResourceGroupNotFound")
    assert code(httpx.get(f"{base}/missing?api-version=2026-06-01", headers=auth)) == (404, "DeploymentNotFound")
    created = httpx.put(f"{base}/ok?api-version=2026-06-01", json=body, headers=auth)
    assert created.status_code == 201 and created.json()["properties"]["provisioningState"] == "Accepted"
    assert "/operationStatuses/" in created.headers["Azure-AsyncOperation"]


# -- the step, with the adapter against the emulator


def artifact_zip(files: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body if isinstance(body, bytes | str) else json.dumps(body))
    return out.getvalue()


class World:
    """A release with one stage whose one step is an arm-deployment, and deps around the adapter."""

    def __init__(self, arm: ArmDeployments, step: dict[str, Any], files: dict[str, Any] | None = None) -> None:
        self.clock = FakeClock()
        self.packages = FakePackages()
        data = artifact_zip(files if files is not None else {"infra/main.json": storage_template()})
        self.packages.stored[("web/1.4.0.zip", "snap-1")] = data
        artifact = {"alias": "web", "version": "1.4.0", "isPrimary": True, "stored": "web/1.4.0.zip",
                    "snapshot": "snap-1", "sha256": hashlib.sha256(data).hexdigest()}
        ArmDeploymentStep.model_validate(step)
        stage = {"name": "Prod", "target": {"subscriptionId": SUB, "resourceGroup": "rg-app", "site": "tailspin"},
                 "steps": [step]}
        self.release = Release.new(id=41, definition_id="d1", revision=1, name="Release-41",
                                   created_at=self.clock.now().isoformat(), created_by="amita", reason="manual",
                                   description="", artifacts=[artifact], definition={"stages": [stage]})
        self.release.stages["Prod"].deployments.append(Deployment(
            attempt=2, status=Status.IN_PROGRESS, reason=Reason.MANUAL, requested_by="amita",
            queued_at=self.clock.now().isoformat()))
        self.deps = Deps(settings=Settings(), store=None, bus=None, clock=self.clock,  # type: ignore[arg-type]
                         app_service=None, packages=self.packages, logs=None, probe=None,  # type: ignore[arg-type]
                         mailer=None, signals=None, function_keys=None, arm_deployments=arm,  # type: ignore[arg-type]
                         container_jobs=None, pipelines=None, secrets=None,  # type: ignore[arg-type]
                         azure_pipelines=None)  # type: ignore[arg-type]
        self.intents: list[dict[str, Any]] = []
        """What the store kept of the step's intents (durable across crashes)."""
        self.lines: list[str] = []

    def context(self, state: dict[str, Any]) -> StepContext:
        stage = self.release.plan.stages[0]
        ctx = StepContext(self.release, stage, stage.steps[0], StepRun(0, "arm-deployment", "arm", state=dict(state)),
                          self.clock.now(), keep_intent=lambda intent: self.intents.append(intent) is None)
        return ctx

    def once(self, state: dict[str, Any]) -> Outcome:
        ctx = self.context(state)
        try:
            return arm_deployment(self.deps, ctx)
        finally:
            self.lines.extend(ctx.lines)

    def run(self, state: dict[str, Any] | None = None, limit: int = 20) -> Outcome:
        """Run the step as the runner would, message after message, until it ends."""
        outcome = self.once(state or {})
        for _ in range(limit):
            if outcome.kind != "retry":
                return outcome
            self.clock.advance(outcome.delay)
            outcome = self.once(outcome.state)
        raise AssertionError(f"the step did not end: {outcome}")

    def stop(self, state: dict[str, Any]) -> str:
        return stop_arm_deployment(self.deps, self.context(state))


NAME = f"slipway-41-{key_hash('Prod')[:10]}-2-0"
STEP = {"type": "arm-deployment", "name": "infra", "template": "infra/main.json",
        "parameters": {"prefix": "tail", "adminKey": "hunter2-from-a-variable"}}


def test_the_step_deploys_the_artifacts_template_once_and_keeps_its_outputs(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    world = World(arm, STEP)
    outcome = world.run()
    assert outcome.kind == "succeeded", outcome.message
    assert outcome.state["outputs"] == {"accountId": f"{RG}/providers/{STORAGE}/taildata",
                                        "settings": '{"group":"rg-app","tls":"TLS1_2"}'}
    assert outcome.state["deployment"] == NAME and outcome.state["scope"] == RG
    assert [p.lower() for p in puts(emulator)] == [f"{RG}/providers/Microsoft.Resources/deployments/{NAME}".lower()]
    assert world.intents == [{"deployment": NAME, "scope": RG, "deadline": world.intents[0]["deadline"],
                              "before": None}]
    log = "\n".join(world.lines)
    assert "output key = (secure)" in log and "hunter2" not in log and "s3cr3t" not in log
    assert "hunter2" not in json.dumps(outcome.state) and "key" not in outcome.state["outputs"]
    assert f"Create {RG}/providers/{STORAGE}/taildata: Running" in log
    assert f"Create {RG}/providers/{STORAGE}/taildata: Succeeded" in log
    # Delivered again (a second message for the same step, which finds the durable intent): the deployment
    # that succeeded is not made again, and the step ends the same way.
    again = world.run({"intent": world.intents[0]})
    assert again.kind == "succeeded" and again.state["outputs"] == outcome.state["outputs"]
    assert len(puts(emulator)) == 1


def test_a_crash_after_the_put_finds_the_deployment_by_its_name(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    world = World(arm, STEP)
    first = world.once({})
    assert first.kind == "retry" and len(puts(emulator)) == 1
    # The invocation died before the outcome was recorded: only the intent (written before the PUT) remains.
    outcome = world.run({"intent": world.intents[-1]})
    assert outcome.kind == "succeeded" and outcome.state["outputs"]["accountId"].endswith("/taildata")
    assert len(puts(emulator)) == 1 and len(emulator.deployments) == 1


def test_a_put_whose_answer_was_lost_is_not_made_again(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    world = World(arm, STEP)
    emulator.inject("create", "lost")  # ARM took the deployment, then the answer was a 500
    with pytest.raises(TargetError) as err:
        world.once({})
    assert err.value.retryable
    outcome = world.run({"intent": world.intents[-1]})  # what the runner keeps: the state with the intent
    assert outcome.kind == "succeeded" and len(puts(emulator)) == 1


def test_a_throttled_put_is_retried_and_a_failing_look_never_succeeds(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    world = World(arm, STEP)
    emulator.inject("create", "throttle")
    with pytest.raises(TargetError) as err:
        world.once({})
    assert err.value.retryable and err.value.retry_after == 2
    started = world.once({"intent": world.intents[-1]})
    assert started.kind == "retry" and len(emulator.deployments) == 1
    emulator.inject("get", "error", count=3)
    for _ in range(3):
        with pytest.raises(TargetError):
            world.once(started.state)
    assert world.run(started.state).kind == "succeeded"
    assert len(emulator.deployments) == 1


def test_a_failed_deployment_fails_the_step_with_arms_reason(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.fail_resource_type(STORAGE, "InvalidResourceLocation", "The resource 'taildata' already exists in "
                                                                    "location 'eastus'.")
    outcome = World(arm, STEP).run()
    assert outcome.kind == "failed"
    assert f"ARM deployment {NAME} failed: DeploymentFailed" in outcome.message
    assert "InvalidResourceLocation: The resource 'taildata' already exists in location 'eastus'." in outcome.message


def test_the_steps_own_timeout_cancels_the_deployment(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.deployment_polls = 1000
    world = World(arm, {**STEP, "timeoutMinutes": 5})
    started = world.once({})
    looked = world.once(started.state)
    assert looked.kind == "retry"
    world.clock.advance(5 * 60)
    outcome = world.once(looked.state)
    assert outcome.kind == "failed" and "did not finish within 5 minutes" in outcome.message
    assert emulator.deployment(RG, NAME).state == "Canceled"  # type: ignore[union-attr]


def test_stop_cancels_the_running_deployment_from_the_intent_alone(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.deployment_polls = 1000
    world = World(arm, STEP)
    assert world.stop({}) == "no ARM deployment was started: nothing to stop"
    world.once({})
    said = world.stop({"intent": world.intents[-1]})
    assert said.startswith(f"canceled ARM deployment {NAME}")
    assert emulator.deployment(RG, NAME).state == "Canceled"  # type: ignore[union-attr]
    assert world.stop({"intent": world.intents[-1]}) == f"ARM deployment {NAME} had already ended (Canceled)"
    outcome = world.once({"intent": world.intents[-1]})
    assert outcome.kind == "failed" and "canceled" in outcome.message


def test_a_template_spec_at_a_subscription_with_a_parameters_file(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.add_subscription(SUB)
    spec = f"{RG}/providers/Microsoft.Resources/templateSpecs/groups/versions/2"
    emulator.add_template_spec(spec, group_template())
    step = {"type": "arm-deployment", "templateSpecId": spec, "scope": "subscription", "location": "westeurope",
            "parametersFile": "infra/groups.parameters.json", "deploymentName": "groups-41"}
    files = {"infra/groups.parameters.json": {"$schema": SCHEMA, "contentVersion": "1.0.0.0",
                                              "parameters": {"name": {"value": "rg-from-file"}}}}
    outcome = World(arm, step, files).run()
    assert outcome.kind == "succeeded" and outcome.state["outputs"] == {"sub": SUB}
    assert outcome.state["deployment"] == "groups-41" and outcome.state["scope"] == SUB_SCOPE
    assert ("rg-from-file",) in {(g.name,) for g in emulator.resource_groups.values()}


def test_a_tampered_package_or_a_missing_file_deploys_nothing(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    world = World(arm, STEP)
    world.packages.stored[("web/1.4.0.zip", "snap-1")] = artifact_zip({"infra/main.json": group_template()})
    outcome = world.run()
    assert outcome.kind == "failed" and "is not what was registered" in outcome.message
    missing = World(arm, {**STEP, "template": "infra/other.json"}).run()
    assert missing.kind == "failed" and "has no file infra/other.json" in missing.message
    bicep = World(arm, STEP, {"infra/main.json": b"param prefix string\n"}).run()
    assert bicep.kind == "failed" and "az bicep build" in bicep.message
    assert puts(emulator) == []


def test_preview_shows_the_steps_changes_before_it_runs(arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    stray = f"{RG}/providers/Microsoft.Web/serverfarms/old-plan"
    emulator.add_resource(stray, "Microsoft.Web/serverfarms", {})
    emulator.add_resource(f"{RG}/providers/{STORAGE}/taildata", STORAGE, {"minimumTlsVersion": "TLS1_0"},
                          api_version="2023-01-01")
    world = World(arm, {**STEP, "mode": "Complete"})
    stage = world.release.plan.stages[0]
    lines = describe(preview(world.deps, world.release, stage, stage.steps[0]))
    assert lines == [f"~ modify {RG}/providers/{STORAGE}/taildata: properties.minimumTlsVersion, sku",
                     f"- delete {stray}"]
    assert puts(emulator) == [] and stray in emulator.resources
    broken = World(arm, {**STEP, "template": "infra/absent.json"})
    with pytest.raises(TargetError) as err:
        preview(broken.deps, broken.release, stage, broken.release.plan.stages[0].steps[0])
    assert "has no file infra/absent.json" in str(err.value)


def test_parameters_take_variables_and_preview_says_when_it_cannot_know_them(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    step = {**STEP, "parameters": {"prefix": "t$(Release.ReleaseId)", "adminKey": "k"}}
    outcome = World(arm, step).run()
    assert outcome.kind == "succeeded" and outcome.state["outputs"]["accountId"].endswith("/t41data")
    later = World(arm, {**STEP, "parameters": {"prefix": "$(storagePrefix)"}})
    stage = later.release.plan.stages[0]
    with pytest.raises(TargetError) as err:
        preview(later.deps, later.release, stage, stage.steps[0])
    assert "$(storagePrefix)" in str(err.value) and not err.value.retryable


def test_a_running_deployment_of_a_reused_name_is_waited_for_not_replaced(
        arm: ArmDeployments, emulator: ArmDeploymentsEmulator) -> None:
    emulator.deployment_polls = 3
    arm.deploy(RG, "main", ArmTemplate(template=storage_template(), parameters={"prefix": "old"}))
    world = World(arm, {**STEP, "deploymentName": "main"})
    waiting = world.once({})
    assert waiting.kind == "retry" and "waiting" in waiting.message and len(puts(emulator)) == 1
    outcome = world.run(waiting.state)
    assert outcome.kind == "succeeded" and outcome.state["outputs"]["accountId"].endswith("/taildata")
    assert len(puts(emulator)) == 2 and world.intents[-1]["before"]["state"] == "Succeeded"
    # A lost record with a reused name: the correlation id tells the step's deployment from the older one.
    again = world.run({"intent": world.intents[-1]})
    assert again.kind == "succeeded" and len(puts(emulator)) == 2


# -- the step's model


def test_the_step_model_is_strict() -> None:
    model = TypeAdapter(ArmDeploymentStep)
    ok = model.validate_python(STEP)
    assert (ok.mode, ok.scope, ok.timeoutMinutes) == ("Incremental", "resourceGroup", 60)
    for bad, why in [
        ({**STEP, "templateUrl": "https://x.example/t.json"}, "exactly one"),
        ({"type": "arm-deployment"}, "exactly one"),
        ({**STEP, "template": "../secrets/main.json"}, "relative path"),
        ({**STEP, "template": "/etc/main.json"}, "relative path"),
        ({**STEP, "template": "infra/main.bicep"}, "pattern"),
        ({**STEP, "scope": "subscription", "location": "westeurope", "mode": "Complete"}, "Complete"),
        ({**STEP, "scope": "subscription"}, "needs `location`"),
        ({**STEP, "location": "westeurope"}, "only for `scope: subscription`"),
        ({**STEP, "templateUrl": "http://x.example/t.json", "template": None}, "pattern"),
        ({**STEP, "deploymentName": "a" * 65}, "at most 64"),
        ({**STEP, "deploymentName": "has space"}, "pattern"),
        ({**STEP, "timeoutMinutes": 1441}, "less than or equal"),
        ({**STEP, "unknown": 1}, "Extra inputs"),
    ]:
        with pytest.raises(ValidationError) as err:
            model.validate_python(bad)
        assert why in str(err.value), (bad, str(err.value))


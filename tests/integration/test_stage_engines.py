"""Stage tasks on other engines, through the release engine: approvers see what an ARM deployment will
change before they approve (release page, approval page, mail), and abandoning a release stops what
an engine runs for it (an ARM deployment, a Container Apps job execution)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from functions import approval_links
from functions import releases_api as rels
from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.container_apps_emulator import ContainerAppsEmulator
from local.monitor_emulator import MonitorEmulator
from shared import bootstrap
from shared.adapters.arm_deployments import ArmDeployments
from shared.adapters.container_jobs import ContainerJobs
from shared.config import MAIL_QUEUE, STEPS_QUEUE, Settings
from shared.domain.access import Principal
from shared.services import approvals
from tests.integration.conftest import SUB, World, stage
from tests.integration.test_approvals_api import AMITA
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)

SPEC = f"/subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/Microsoft.Resources/templateSpecs/data/versions/1.0"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
TEMPLATE = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "parameters": {"name": {"type": "string"}},
            "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
                           "name": "[parameters('name')]", "location": "[resourceGroup().location]",
                           "properties": {"minimumTlsVersion": "TLS1_2"}}],
            "outputs": {"account": {"type": "string", "value": "[parameters('name')]"}}}
INFRA = {"type": "arm-deployment", "name": "infrastructure", "templateSpecId": SPEC,
         "parameters": {"name": "tailspin$(Release.ReleaseId)"}}


@pytest.fixture
def arm(world: World) -> Iterator[ArmDeploymentsEmulator]:
    with ArmDeploymentsEmulator() as emulator:
        emulator.add_resource_group(SUB, "rg-tailspin")
        emulator.add_template_spec(SPEC, TEMPLATE)
        world.deps.arm_deployments = ArmDeployments(Settings(deployments_endpoint=emulator.url,
                                                             arm_auth="local-emulator"))
        yield emulator


def test_approvers_see_what_the_infrastructure_will_change_before_they_approve(
        api: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    production = {**stage("Production", steps=[INFRA, {"type": "wait", "name": "settle", "seconds": 0}]),
                  "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = int(api.define([production])["id"])
    rel = api.release(did)
    api.pump()
    dep = api.get(rel.id).stages["Production"].current
    assert dep.phase == "preApproval"
    assert dep.previews["0"]["changes"] == [
        f"+ create /subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/Microsoft.Storage/storageAccounts/"
        f"tailspin{rel.id}"]
    assert not arm.deployments  # a what-if deploys nothing
    mail = next(m for m in api.deps.mailer.sent if m["to"] == ["tim@contoso.com"])  # type: ignore[attr-defined]
    assert "What the infrastructure steps will change (what-if):" in mail["text"]
    assert f"storageAccounts/tailspin{rel.id}" in mail["text"]
    token = re.search(r"/api/approve/([A-Za-z0-9_-]+)", str(mail["text"]))[1]  # type: ignore[index]
    page = approval_links.approval_page(func.HttpRequest("GET", f"http://localhost/api/approve/{token}", body=b"",
                                                         route_params={"token": token})).get_body().decode()
    assert "What the infrastructure will change" in page and f"storageAccounts/tailspin{rel.id}" in page
    view = call(rels.release_item, "GET", releaseId=rel.id)[1]
    assert view["stages"][0]["deployments"][0]["whatIf"][0]["name"] == "infrastructure"
    approvals.cast_vote(api.deps, rel.id, "Production", "pre", Principal("tim@contoso.com"), "approve", "",
                        attempt=None, if_match=None)
    api.pump()
    dep = api.get(rel.id).stages["Production"].current
    assert dep.status == "succeeded", dep.failure
    assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rel.id}"}
    assert len([r for r in arm.requests if r.method == "PUT"]) == 1  # type: ignore[attr-defined]


def deliver_until(world: World, done: Any, limit: int = 50) -> None:
    """Run step messages one at a time (a pump would run a long deployment to its end) until `done()`."""
    for _ in range(limit):
        if done():
            return
        msgs = world.receive()
        for msg in msgs[:1]:
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            world.queue().delete_message(msg)
        if not msgs:
            time.sleep(0.05)
    raise AssertionError("never got there")


def test_abandoning_the_release_cancels_its_running_arm_deployment(
        api: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    arm.deployment_polls = 10_000  # it stays running
    did = int(api.define([stage("Production", steps=[INFRA])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: any(d.state == "Running" for d in arm.deployments.values()))
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    (deployment,) = arm.deployments.values()
    assert deployment.state == "Canceled"
    assert api.get(rel.id).stages["Production"].current.steps[0].status == "canceled"


@pytest.fixture
def apps(world: World) -> Iterator[ContainerAppsEmulator]:
    with MonitorEmulator() as monitor, ContainerAppsEmulator() as emulator:
        emulator.feed(monitor)
        emulator.retry_after = "0"
        emulator.stop_grace_seconds = 1.0
        env = f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/managedEnvironments/env-db"
        emulator.add_job(SUB, "rg-db", "migrate", env, log_workspace_id="6f1c1f3e-0000-4000-8000-00000000c0de")
        world.deps.container_jobs = ContainerJobs(Settings(container_apps_endpoint=emulator.url,
                                                           logs_endpoint=monitor.url, arm_auth="local-emulator"))
        yield emulator


def test_abandoning_the_release_stops_its_running_script(api: World, apps: ContainerAppsEmulator) -> None:  # noqa: F811
    job = f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/jobs/migrate"
    script = {"type": "script", "name": "migrate", "job": job, "image": "slipway/sample-migrate:1",
              "env": {"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "0.5"}}
    did = int(api.define([stage("Production", steps=[script])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: bool(apps.executions("migrate")))
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    deadline = time.monotonic() + 10
    while apps.executions("migrate")[0].status == "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert apps.executions("migrate")[0].status == "Stopped"
    api.deliver(MAIL_QUEUE)

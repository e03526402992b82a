"""An Azure DevOps classic release definition, imported as it was exported, runs on the local stack:
the Demo Generator's MyHealthClinic pipeline (an ARM deployment and the app to slot Dev, then QA's
Staging slot, then production) becomes a Slipway definition whose continuous-deployment trigger turns
a build on master into a release that reaches production through every stage."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import TAILSPIN_TARGET, LocalStack

pytestmark = pytest.mark.e2e
ADMIN = {"X-Slipway-Acting-As": "ines@contoso.com; roles=Slipway.Admin"}  # development mode
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "ado-samples" / "definitions" / "demogen-1.json"
TEMPLATE = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "parameters": {"WebsiteName": {"type": "string"}, "MHC_ServerName": {"type": "string"},
                           "MHC_HostingPlanName": {"type": "string"}},
            "resources": [],
            "outputs": {"plan": {"type": "string", "value": "[parameters('MHC_HostingPlanName')]"}}}
PARAMETERS = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
              "contentVersion": "1.0.0.0", "parameters": {}}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def eventually(check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def publish(stack: LocalStack, version: str) -> None:
    """The build as the team's pipeline drops it: the app, with the ARM templates beside it."""
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    app = zipfile.ZipFile(io.BytesIO(sample_build.build_package(version)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in app.namelist():
            archive.writestr(name, app.read(name))
        archive.writestr("drop/ARM templates/azuredeploy.json", json.dumps(TEMPLATE))
        archive.writestr("drop/ARM templates/azuredeploy.parameters.json", json.dumps(PARAMETERS))
    data = buffer.getvalue()
    sample_build.upload(data, f"mhc/{version}.zip", stack.azurite.connection_string)
    import hashlib

    hook = {"source": "MyHealthClinicE2E", "version": version, "buildId": version, "branch": "refs/heads/master",
            "package": f"mhc/{version}.zip", "sha256": hashlib.sha256(data).hexdigest()}
    answer = httpx.post(f"{stack.api}/artifacts", json=hook, timeout=60)
    assert answer.status_code == 201, answer.text


def test_an_imported_definition_takes_a_build_to_production(stack: LocalStack) -> None:
    document = json.loads(SAMPLE.read_text(encoding="utf-8-sig"))
    # the team's resource group, where its ARM task deploys (the Demo Generator's own does not exist here)
    document["variables"]["ResourceGroupName"]["value"] = TAILSPIN_TARGET["resourceGroup"]
    target = {"subscriptionId": TAILSPIN_TARGET["subscriptionId"], "resourceGroup": TAILSPIN_TARGET["resourceGroup"],
              "site": TAILSPIN_TARGET["site"]}
    assert stack.deployments is not None
    stack.deployments.add_resource_group(target["subscriptionId"], target["resourceGroup"])  # where ARM deploys
    imported = httpx.post(f"{stack.api}/definitions/import", json=document, params=target, headers=ADMIN, timeout=60)
    assert imported.status_code == 201, imported.text
    definition = imported.json()["definition"]
    assert [s["name"] for s in definition["stages"]] == ["Dev", "QA", "Production"]

    publish(stack, "7.1.0")

    def finished() -> dict[str, Any] | None:
        page = httpx.get(f"{stack.api}/releases", params={"definitionId": definition["id"]}, timeout=30).json()
        if not page["value"]:
            return None
        release = httpx.get(f"{stack.api}/releases/{page['value'][0]['id']}", timeout=30).json()
        done = all(s["status"] in ("succeeded", "failed", "rejected", "canceled") for s in release["stages"])
        return release if done else None

    release = eventually(finished)
    if not release:
        page = httpx.get(f"{stack.api}/releases", params={"definitionId": definition["id"]}, timeout=30).json()
        shown = [httpx.get(f"{stack.api}/releases/{r['id']}", timeout=30).json() for r in page["value"]]
        raise AssertionError(f"the release did not finish: {json.dumps(shown)[:3000]}")  # what it waits for
    failures = {s["name"]: s["deployments"][-1].get("failure") for s in release["stages"] if s["status"] != "succeeded"}
    assert [s["status"] for s in release["stages"]] == ["succeeded"] * 3, failures
    dev = release["stages"][0]["deployments"][-1]
    log = httpx.get(f"{stack.api}/releases/{release['id']}/stages/Dev/deployments/{dev['attempt']}/steps/0/log",
                    timeout=30).text
    assert "mhce2e" in log  # the ARM deployment's output: the hosting plan parameter, from the definition's variable
    where = httpx.get(f"{stack.api}/definitions/{definition['id']}/environments", timeout=30).json()
    assert "7.1.0" in json.dumps(where)

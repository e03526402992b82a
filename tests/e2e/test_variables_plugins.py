"""Variables, a Key Vault secret and a plugin on the local stack: one definition through Dev and
Production with stage-scoped variables and a release-time value; a step sends the database password
read from the Key Vault emulator (masked in every answer, page and log); the example plugin's Slack step
posts to a webhook whose URL is itself a secret, and its Statuspage signal gates Production."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack
from shared import redaction
from tests.integration.test_http_request import Service

pytestmark = pytest.mark.e2e
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.ReleaseManager"}
ADMIN = {"X-Slipway-Acting-As": "ops@contoso.com; roles=Slipway.Admin"}
PASSWORD = "pw-" + "Zq7-very-secret"
VAULT = "https://sample-kv.vault.azure.net/secrets"
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg-sample",
          "site": "sample-webapp"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def steps(service: Service) -> list[dict[str, Any]]:
    return [
        {"type": "http-request", "name": "Configure", "url": service.url + "/configure",
         "body": {"site": "$(SiteName)", "ring": "$(Ring)", "password": "$(DbPassword)"}},
        {"type": "slack-message", "name": "Tell the channel", "webhookSecret": f"{VAULT}/slack-webhook",
         "text": "$(Release.ReleaseName) is in $(Release.EnvironmentName) ($(SiteName), ring $(Ring))"},
    ]


def test_stage_variables_a_release_time_value_a_secret_and_a_plugin_through_two_stages(
        stack: LocalStack, caplog: pytest.LogCaptureFixture) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    from local.functions_host import FunctionsHost

    # the host runs in this process (threads, not a host process): everything the app logs reaches caplog
    assert not stack.host_process and isinstance(stack.host, FunctionsHost)
    caplog.set_level(logging.DEBUG)
    # what the host's log handlers print: Slipway puts its filter on them when it starts (redaction.install)
    caplog.handler.addFilter(redaction.RedactingFilter())

    assert stack.key_vault is not None and stack.azurite is not None and stack.host is not None
    service, slack, status = Service(), Service(), Service()
    status.answers = [(200, {}, json.dumps({"status": {"indicator": "none"}}))] * 50
    stack.key_vault.set_secret("sample-kv", "db-password", PASSWORD)
    stack.key_vault.set_secret("sample-kv", "slack-webhook", slack.url + "/services/T000/B000/XXXX")
    try:
        definition = {
            "name": "Variables and plugins", "artifacts": [{"alias": "webapp", "source": "sample-webapp",
                                                            "trigger": {"enabled": False}}],
            "variables": {"Ring": {"value": "ring-0", "allowOverride": True},
                          "DbPassword": f"@Microsoft.KeyVault(SecretUri={VAULT}/db-password)"},
            "stages": [
                {"name": "Dev", "target": {**TARGET, "slot": "dev"}, "trigger": {"type": "afterRelease"},
                 "variables": {"SiteName": "tailspin-dev"}, "steps": steps(service)},
                {"name": "Production", "target": TARGET, "trigger": {"type": "afterStages", "stages": ["Dev"]},
                 "variables": {"SiteName": "tailspin"}, "steps": steps(service),
                 "postGates": {"signals": [{"type": "statuspage", "name": "status", "url": status.url + "/api"}],
                               "intervalMinutes": 0.05, "timeoutMinutes": 5}},
            ]}
        created = httpx.post(f"{stack.api}/definitions", json=definition, headers=ADMIN, timeout=30)
        assert created.status_code == 201, created.text
        did = created.json()["id"]
        sample_build.publish(version="8.0.0", storage_connection=stack.azurite.connection_string, api=stack.api)
        release = httpx.post(f"{stack.api}/releases", json={"definitionId": did, "variables": {"Ring": "canary"}},
                             headers=AMITA, timeout=30).json()
        done = stack.wait_for(release["id"], lambda r: all(s["status"] in ("succeeded", "failed", "rejected")
                                                           for s in r["stages"]), timeout=120)
        assert [s["status"] for s in done["stages"]] == ["succeeded", "succeeded"], done["stages"]
        sent = [json.loads(c["body"]) for c in service.calls]
        assert sent == [{"site": "tailspin-dev", "ring": "canary", "password": PASSWORD},
                        {"site": "tailspin", "ring": "canary", "password": PASSWORD}]
        assert [json.loads(c["body"])["text"] for c in slack.calls] == [
            f"{done['name']} is in Dev (tailspin-dev, ring canary)",
            f"{done['name']} is in Production (tailspin, ring canary)"]
        assert status.calls and done["stages"][1]["deployments"][0]["gates"]["post"]["status"] == "succeeded"
        rid, base = release["id"], stack.host.base_url
        surfaces = [httpx.get(f"{stack.api}/releases/{rid}", timeout=30).text,
                    httpx.get(f"{stack.api}/releases/{rid}/events", timeout=30).text,
                    httpx.get(f"{base}/releases/{rid}", timeout=30).text]
        for stage in ("Dev", "Production"):
            for step in (0, 1):
                surfaces.append(httpx.get(f"{stack.api}/releases/{rid}/stages/{stage}/deployments/1/steps/{step}/log",
                                          timeout=30).text)
        host_logs = caplog.text  # the function app's logs, at every level, while both stages ran
        assert f"created release {rid} (" in host_logs  # the app's own records are there
        for text in [*surfaces, host_logs]:
            assert PASSWORD not in text and "/services/T000/B000/XXXX" not in text
        assert done["stages"][0]["deployments"][0]["variables"]["DbPassword"] == "***"
        health = httpx.get(f"{stack.api}/health", timeout=30).json()
        assert "slack-message" in health["plugins"]["steps"] and "statuspage" in health["plugins"]["signals"]
    finally:
        for server in (service, slack, status):
            server.server.shutdown()

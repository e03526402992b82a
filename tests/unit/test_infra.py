"""Offline checks of the deployment: Bicep parses, settings agree everywhere, the package is lean."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.config import ENV_NAMES

REPO = Path(__file__).resolve().parents[2]
BICEP = sorted((REPO / "infra").rglob("*.bicep"))
HOST_OWNED = {"FUNCTIONS_WORKER_RUNTIME", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "AzureWebJobsDisableHomepage",
              "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
              "WEBSITE_AUTH_AAD_ALLOWED_TENANTS"}
"""Settings the Functions host, App Service authentication or the Azure Monitor SDK read, not shared/config.py."""
IDENTITY_STORAGE = {"AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
                    "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri",
                    "AzureWebJobsStorage__tableServiceUri"}


def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", BICEP, ids=[p.relative_to(REPO).as_posix() for p in BICEP])
def test_every_bicep_file_parses(path: Path) -> None:
    assert parse(path)["resources"] or parse(path)["modules"]


def test_main_is_at_subscription_scope_and_every_module_exists() -> None:
    main = parse(REPO / "infra" / "main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    for module in main["modules"].values():
        assert (REPO / "infra" / module["detail"]["path"]).exists()


def bicep_app_settings() -> dict[str, str]:
    text = (REPO / "infra" / "app" / "function.bicep").read_text()
    return dict(re.findall(r"\{ name: '([^']+)', value: ([^}]+?) \}", text))


def local_settings() -> dict[str, str]:
    return json.loads((REPO / "local.settings.example.json").read_text())["Values"]  # type: ignore[no-any-return]


def test_the_config_module_local_settings_and_bicep_declare_the_same_settings() -> None:
    declared = set(ENV_NAMES.values())
    local, azure = set(local_settings()) - HOST_OWNED, set(bicep_app_settings()) - HOST_OWNED
    slipway = {n for n in declared if n.startswith(("SLIPWAY_", "APPLICATIONINSIGHTS_"))}
    assert local - {"AzureWebJobsStorage"} == slipway
    assert azure - IDENTITY_STORAGE == slipway
    # storage: a connection string locally, identity-based in Azure; both read by shared/config.py
    assert "AzureWebJobsStorage" in declared and "AzureWebJobsStorage" in local
    assert IDENTITY_STORAGE - {"AzureWebJobsStorage__credential"} <= declared
    assert IDENTITY_STORAGE <= azure


def test_azure_uses_no_secret_and_no_shared_key() -> None:
    settings = bicep_app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["SLIPWAY_ARM_AUTH"] == "'managed-identity'"
    assert not any("AccountKey" in v or "SharedAccessSignature" in v for v in settings.values())
    storage = parse(REPO / "infra" / "app" / "storage.bicep")["resources"]["account"]["config"]
    assert storage["properties"]["allowSharedKeyAccess"] is False


def test_the_readme_documents_exactly_the_main_parameters() -> None:
    params = set(parse(REPO / "infra" / "main.bicep")["parameters"])
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Parameters", 1)[1].split("\n#", 1)[0]
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", section, re.MULTILINE))
    assert documented == params


def test_funcignore_keeps_development_files_out_of_the_package() -> None:
    ignored = set((REPO / ".funcignore").read_text().split())
    assert {"tests", "local", "bench", "infra", "local.settings.json", "examples", ".venv*"} <= ignored


def test_azd_deploys_the_function_app_from_the_repository_root() -> None:
    text = (REPO / "azure.yaml").read_text()
    assert "host: function" in text and "project: ." in text and "language: python" in text


def test_the_host_sends_opentelemetry_and_serves_the_dashboard_at_the_root() -> None:
    host = json.loads((REPO / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    assert host["extensions"]["http"]["routePrefix"] == ""
    settings = bicep_app_settings()
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "'true'"
    assert settings["AzureWebJobsDisableHomepage"] == "'true'"


def test_app_service_authentication_is_on_with_entra_and_no_client_secret() -> None:
    auth = parse(REPO / "infra" / "app" / "auth.bicep")["resources"]["auth"]
    assert auth["type"] == "Microsoft.Web/sites/config" and auth["config"]["name"] == "authsettingsV2"
    props = auth["config"]["properties"]
    assert props["platform"]["enabled"] is True
    # the app decides: browsers are sent to sign in by the dashboard, the API answers 401
    assert props["globalValidation"]["unauthenticatedClientAction"] == "AllowAnonymous"
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True and aad["registration"]["openIdIssuer"].endswith("/v2.0")
    assert aad["registration"]["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    assert "api://${clientId}" in aad["validation"]["allowedAudiences"]
    settings = bicep_app_settings()
    assert settings["OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"] == "authIdentityClientId"
    main = parse(REPO / "infra" / "main.bicep")
    assert {"auth", "selfKeys", "authIdentity", "uploaders", "packageReaders"} <= set(main["modules"])
    roles = {r["value"] for r in json.loads((REPO / "infra" / "app-roles.json").read_text())}
    assert roles == {"Slipway.Admin", "Slipway.ReleaseManager", "Slipway.Reader"}
    hooks = (REPO / "azure.yaml").read_text()
    assert "infra/hooks/entra-app.sh" in hooks and "infra/hooks/auth-postprovision.sh" in hooks


def test_slipways_identity_may_list_its_own_host_keys_and_nothing_else_there() -> None:
    keys = parse(REPO / "infra" / "app" / "self-keys.bicep")["resources"]
    actions = keys["keyReader"]["config"]["properties"]["permissions"][0]["actions"]
    assert actions == ["Microsoft.Web/sites/read", "Microsoft.Web/sites/host/listkeys/action"]
    assert bicep_app_settings()["SLIPWAY_FUNCTION_APP_ID"] == "selfId"


def test_every_http_route_is_anonymous_to_the_host_and_checks_its_caller_itself() -> None:
    import function_app

    function_app.app.functions_bindings = {}
    levels = {f.get_function_name(): f.get_trigger().auth_level for f in function_app.app.get_functions()
              if f.get_trigger().get_binding_name() == "httpTrigger"}
    assert levels and all(str(getattr(level, "value", level)).upper() == "ANONYMOUS" for level in levels.values())


def test_endpoints_and_token_scopes_follow_one_cloud_setting() -> None:
    from shared.config import Settings

    assert bicep_app_settings()["SLIPWAY_CLOUD"] == "environment().name"
    gov = Settings(cloud="AzureUSGovernment")
    assert gov.arm_url == "https://management.usgovcloudapi.net" == gov.monitor_url
    assert gov.arm_scope == "https://management.usgovcloudapi.net/.default"
    assert gov.logs_url == "https://api.loganalytics.us"
    china = Settings(cloud="AzureChinaCloud")
    assert china.logs_url == "https://api.loganalytics.azure.cn" and "chinacloudapi.cn" in china.arm_scope
    local = Settings(arm_endpoint="http://127.0.0.1:7073", monitor_endpoint="http://127.0.0.1:7075")
    assert local.arm_url == "http://127.0.0.1:7073" and local.arm_scope == "https://management.azure.com/.default"


def test_the_hosts_storage_role_is_blob_data_owner() -> None:
    text = (REPO / "infra" / "app" / "rbac.bicep").read_text()
    assert "b7e6dc6d-f1e8-4753-8033-0f276bb0955b" in text  # Storage Blob Data Owner
    assert "ba92f5b4-2d11-453d-a403-e96b0029c9fe" not in text  # not Contributor


def test_builds_write_only_uploads_and_target_apps_read_only_slipways_copies() -> None:
    modules = parse(REPO / "infra" / "main.bicep")["modules"]
    grants = {name: (modules[name]["config"]["params"]["containerName"],
                     modules[name]["config"]["params"]["roleDefinitionId"]) for name in ("uploaders", "packageReaders")}
    assert grants == {"uploaders": ("packages", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),  # Blob Data Contributor
                      "packageReaders": ("slipway-packages", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")}  # Reader
    resources = parse(REPO / "infra" / "app" / "container-access.bicep")["resources"]
    assert resources["assignments"]["config"]["config"]["scope"] == "container"  # the one container only
    assert resources["container"]["type"].endswith("/blobServices/containers")


def test_slipways_identity_reads_secrets_in_the_configured_key_vaults_and_nothing_more() -> None:
    modules = parse(REPO / "infra" / "main.bicep")["modules"]
    [vaults] = [m for m in modules.values()
                if m["config"].get("loop_type", {}).get("detail", {}).get("array_name") == "keyVaultResourceGroupNames"]
    item = vaults["config"]["loop_type"]["detail"]["item_name"]
    config = vaults["config"]["config"]
    assert config["scope"]["function"]["type"] == "resource_group"  # each configured vault's resource group
    assert config["scope"]["function"]["parameters"]["resource_group_name"] == item
    assert config["params"]["roles"] == ["4633458b-17de-408a-b874-0445c86b69e6"]  # Key Vault Secrets User only
    assert json.dumps(config["params"]["principalId"]).count('"identity"') == 1  # Slipway's own identity
    rbac = parse(REPO / "infra" / vaults["detail"]["path"])["resources"]["assignments"]
    assert rbac["config"]["loop_type"]["detail"]["array_name"] == "roles"
    assert rbac["config"]["config"]["properties"]["principalType"] == "ServicePrincipal"
    assert "keyVaultResourceGroupNames" in json.loads((REPO / "infra" / "main.parameters.json").read_text())[
        "parameters"]

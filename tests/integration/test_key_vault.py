"""The Key Vault adapter reads secrets through the real azure-keyvault-secrets client from the emulator,
challenge authentication included."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from local.key_vault_emulator import KeyVaultEmulator
from shared.adapters.key_vault import KeyVaultSecrets, parse_reference
from shared.config import Settings
from shared.ports import TargetError

VALUES = {"db-password": "PLANTED-kv-db-7f3a", "api-key": "PLANTED-kv-api-91c2", "old": "PLANTED-kv-old-0d4e",
          "off": "PLANTED-kv-off-5b6a", "late": "PLANTED-kv-late-33aa", "early": "PLANTED-kv-early-8e1f"}


@pytest.fixture
def kv() -> Iterator[KeyVaultEmulator]:
    with KeyVaultEmulator() as running:
        yield running


def adapter(kv: KeyVaultEmulator, **settings: Any) -> KeyVaultSecrets:
    return KeyVaultSecrets(Settings(keyvault_endpoint=kv.url, **settings), ca_file=kv.ca_file)


def failure(secrets: KeyVaultSecrets, reference: str) -> TargetError:
    with pytest.raises(TargetError) as caught:
        secrets.get(reference)
    return caught.value


def test_every_reference_syntax_reads_the_secret(kv: KeyVaultEmulator) -> None:
    version = kv.set_secret("tailspin-kv", "db-password", VALUES["db-password"])
    secrets = adapter(kv)
    for reference in [
        "https://tailspin-kv.vault.azure.net/secrets/db-password",
        "https://tailspin-kv.vault.azure.net/secrets/db-password/",
        f"https://tailspin-kv.vault.azure.net/secrets/db-password/{version}",
        "https://TAILSPIN-KV.vault.azure.net:443/secrets/db-password",
        "@Microsoft.KeyVault(SecretUri=https://tailspin-kv.vault.azure.net/secrets/db-password/)",
        f"@Microsoft.KeyVault(SecretUri=https://tailspin-kv.vault.azure.net/secrets/db-password/{version})",
        "@Microsoft.KeyVault(VaultName=tailspin-kv;SecretName=db-password)",
        f"@Microsoft.KeyVault(VaultName=tailspin-kv;SecretName=db-password;SecretVersion={version})",
        " @Microsoft.KeyVault( vaultname=tailspin-kv ; secretname=db-password ; ) ",
    ]:
        assert secrets.get(reference) == VALUES["db-password"], reference


def test_anything_else_is_not_a_reference_and_is_never_echoed(kv: KeyVaultEmulator) -> None:
    secrets = adapter(kv)
    for text in [
        VALUES["api-key"],  # the value pasted where its reference belongs
        f"http://tailspin-kv.vault.azure.net/secrets/{VALUES['api-key']}",
        "https://tailspin-kv.vault.azure.net/keys/signing",
        "https://tailspin-kv.vault.azure.net/secrets/db-password?api-version=7.4",
        "https://tailspin-kv.vault.azure.net:8443/secrets/db-password",
        "https://tailspin-kv.example.com/secrets/db-password",
        "https://tailspin-kv.managedhsm.azure.net/secrets/db-password",
        "https://tailspin-kv.vault.azure.net/secrets/db_password",
        "https://tailspin-kv.vault.azure.net/secrets/db-password/not-a-version",
        "https://tailspin-kv.vault.azure.net/secrets/db-password/1/2",
        "https://kv.vault.azure.net/secrets/db-password",  # vault names have 3 to 24 characters
        "https://tail--spin.vault.azure.net/secrets/db-password",
        "@Microsoft.KeyVault(VaultName=tailspin-kv)",
        "@Microsoft.KeyVault(SecretName=db-password)",
        f"@Microsoft.KeyVault(VaultName=tailspin-kv;SecretName=db-password;Password={VALUES['api-key']})",
        "@Microsoft.KeyVault(VaultName=tailspin-kv;VaultName=other-kv;SecretName=db-password)",
        "@Microsoft.KeyVault(SecretUri=https://tailspin-kv.example.com/secrets/db-password)",
        "@AppConfig(Endpoint=https://x.azconfig.io; Key=db-password)",
        "",
    ]:
        error = failure(secrets, text)
        assert not error.retryable and "not a Key Vault secret reference" in str(error), text
        assert VALUES["api-key"] not in str(error)
    assert kv.requests == []


def test_versions_and_a_rotation_is_read_fresh(kv: KeyVaultEmulator) -> None:
    first = kv.set_secret("tailspin-kv", "api-key", "PLANTED-kv-v1")
    secrets = adapter(kv)
    latest = "https://tailspin-kv.vault.azure.net/secrets/api-key"
    assert secrets.get(latest) == "PLANTED-kv-v1"
    second = kv.set_secret("tailspin-kv", "api-key", "PLANTED-kv-v2")
    assert secrets.get(latest) == "PLANTED-kv-v2"  # no cache: the rotated value at once
    assert secrets.get(f"{latest}/{first}") == "PLANTED-kv-v1"
    assert secrets.get(f"{latest}/{second.upper()}") == "PLANTED-kv-v2"


def test_each_vault_is_its_own_and_secret_names_ignore_case(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-dev", "api-key", "PLANTED-dev")
    kv.set_secret("tailspin-prod", "api-key", "PLANTED-prod")
    secrets = adapter(kv)
    assert secrets.get("https://tailspin-dev.vault.azure.net/secrets/api-key") == "PLANTED-dev"
    assert secrets.get("@Microsoft.KeyVault(VaultName=tailspin-prod;SecretName=API-KEY)") == "PLANTED-prod"


def test_the_challenge_comes_first_and_the_token_is_for_the_vaults_resource_and_tenant() -> None:
    asked: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    class Recording:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            asked.append((scopes, kwargs))
            return AccessToken("slipway-identity", 2**31 - 1)

    # `localhost`: the SDK keeps challenges per host and port for the process; no other test uses this host.
    with KeyVaultEmulator(host="localhost", tenant="11111111-2222-3333-4444-555555555555") as kv:
        kv.set_secret("tailspin-kv", "db-password", VALUES["db-password"])
        secrets = KeyVaultSecrets(Settings(keyvault_endpoint=kv.url), credential=Recording(), ca_file=kv.ca_file)
        assert secrets.get("https://tailspin-kv.vault.azure.net/secrets/db-password") == VALUES["db-password"]
        assert secrets.get("https://tailspin-kv.vault.azure.net/secrets/db-password") == VALUES["db-password"]
    assert [(r.status, r.principal) for r in kv.requests] == [(401, None), (200, "slipway-identity"),
                                                              (200, "slipway-identity")]
    assert asked[0][0] == ("https://vault.azure.net/.default",)
    assert asked[0][1].get("tenant_id") == "11111111-2222-3333-4444-555555555555"


def test_a_disabled_secret_is_final_and_named(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-kv", "off", VALUES["off"], enabled=False)
    old = kv.set_secret("tailspin-kv", "old", VALUES["old"])
    kv.set_secret("tailspin-kv", "old", "PLANTED-kv-old-new")
    kv.set_enabled("tailspin-kv", "old", False)  # the latest version is disabled, the first is not
    secrets = adapter(kv)
    error = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/off")
    assert not error.retryable and "disabled" in str(error)
    assert "tailspin-kv" in str(error) and "off" in str(error)
    assert not failure(secrets, "@Microsoft.KeyVault(VaultName=tailspin-kv;SecretName=old)").retryable
    assert secrets.get(f"https://tailspin-kv.vault.azure.net/secrets/old/{old}") == VALUES["old"]
    assert [r.status for r in kv.requests if r.principal] == [403, 403, 200]


def test_expired_and_not_yet_valid_secrets_are_served_by_the_vault_but_not_used(kv: KeyVaultEmulator) -> None:
    now = datetime.now(UTC)
    kv.set_secret("tailspin-kv", "late", VALUES["late"], expires=now - timedelta(hours=1))
    kv.set_secret("tailspin-kv", "early", VALUES["early"], not_before=now + timedelta(days=1))
    kv.set_secret("tailspin-kv", "api-key", VALUES["api-key"], expires=now + timedelta(days=30),
                  not_before=now - timedelta(days=1))
    secrets = adapter(kv)
    late = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/late")
    assert not late.retryable and "expired" in str(late) and "late" in str(late)
    early = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/early")
    assert not early.retryable and "not valid before" in str(early)
    assert secrets.get("https://tailspin-kv.vault.azure.net/secrets/api-key") == VALUES["api-key"]
    assert [r.status for r in kv.requests if r.principal] == [200, 200, 200]  # Key Vault itself served them


def test_a_missing_secret_or_version_is_final_and_named(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-kv", "api-key", VALUES["api-key"])
    secrets = adapter(kv)
    missing = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/nothing-here")
    assert not missing.retryable and "not found" in str(missing)
    assert "nothing-here" in str(missing) and "tailspin-kv" in str(missing)
    no_version = failure(secrets, f"https://tailspin-kv.vault.azure.net/secrets/api-key/{'0' * 32}")
    assert not no_version.retryable and "not found" in str(no_version)
    assert [r.status for r in kv.requests if r.principal] == [404, 404]


def test_a_caller_without_the_secrets_user_role_is_refused(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-prod", "api-key", VALUES["api-key"])
    kv.set_secret("tailspin-dev", "api-key", "PLANTED-dev")
    kv.allow("tailspin-prod", "release-pipeline")  # not Slipway's identity
    secrets = adapter(kv)
    error = failure(secrets, "https://tailspin-prod.vault.azure.net/secrets/api-key")
    assert not error.retryable and "Key Vault Secrets User" in str(error) and "tailspin-prod" in str(error)
    assert secrets.get("https://tailspin-dev.vault.azure.net/secrets/api-key") == "PLANTED-dev"
    kv.allow("tailspin-prod", "local-emulator")  # the role is granted: the next read works
    assert secrets.get("https://tailspin-prod.vault.azure.net/secrets/api-key") == VALUES["api-key"]


def test_throttling_is_retryable_with_retry_after_and_a_500_is_retryable(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-kv", "api-key", VALUES["api-key"])
    secrets = adapter(kv)
    kv.inject("secrets", "throttle")
    throttled = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/api-key")
    assert throttled.retryable and throttled.retry_after == 2.0 and "429" in str(throttled)
    kv.inject("secrets", "error")
    failed = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/api-key")
    assert failed.retryable and "500" in str(failed)
    assert secrets.get("https://tailspin-kv.vault.azure.net/secrets/api-key") == VALUES["api-key"]


def test_a_vault_that_does_not_answer_in_time_is_retryable(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-kv", "api-key", VALUES["api-key"])
    secrets = adapter(kv)
    secrets.read_timeout = 0.5
    kv.inject("secrets", "timeout", seconds=3)
    error = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/api-key")
    assert error.retryable and "unreachable" in str(error)


def test_an_unreachable_endpoint_or_unknown_vault_is_retryable(kv: KeyVaultEmulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    nowhere = KeyVaultSecrets(Settings(keyvault_endpoint=f"https://127.0.0.1:{closed}"), ca_file=kv.ca_file)
    error = failure(nowhere, "https://tailspin-kv.vault.azure.net/secrets/api-key")
    assert error.retryable and "tailspin-kv" in str(error)
    # A vault that does not exist has no DNS name in Azure: nothing answers either.
    unknown = failure(adapter(kv), "https://no-such-kv.vault.azure.net/secrets/api-key")
    assert unknown.retryable and "no-such-kv" in str(unknown)


def test_a_plain_http_endpoint_is_refused_because_the_sdk_sends_tokens_over_tls_only(kv: KeyVaultEmulator) -> None:
    secrets = KeyVaultSecrets(Settings(keyvault_endpoint=kv.url.replace("https://", "http://")))
    error = failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/api-key")
    assert not error.retryable and "https" in str(error)


def test_sovereign_clouds_read_their_own_vaults_only(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-gov", "api-key", VALUES["api-key"])
    gov = adapter(kv, cloud="AzureUSGovernment")
    assert gov.get("https://tailspin-gov.vault.usgovcloudapi.net/secrets/api-key") == VALUES["api-key"]
    assert gov.get("@Microsoft.KeyVault(VaultName=tailspin-gov;SecretName=api-key)") == VALUES["api-key"]
    other = failure(gov, "https://tailspin-gov.vault.azure.net/secrets/api-key")
    assert not other.retryable and "AzureUSGovernment" in str(other)
    assert parse_reference("https://tailspin-cn.vault.azure.cn/secrets/x").suffix == "vault.azure.cn"
    assert parse_reference("@Microsoft.KeyVault(VaultName=tailspin-cn;SecretName=x)", "AzureChinaCloud").suffix \
        == "vault.azure.cn"


def test_the_emulator_refuses_an_api_version_key_vault_does_not_know(kv: KeyVaultEmulator) -> None:
    kv.set_secret("tailspin-kv", "api-key", VALUES["api-key"])
    status, body, _ = kv.handle("GET", "/tailspin-kv/secrets/api-key/?api-version=2099-01-01", b"",
                                {"Authorization": "Bearer someone"}, kv.url)
    assert status == 400 and body["error"]["code"] == "BadParameter"
    status, body, _ = kv.handle("GET", "/tailspin-kv/secrets/api-key/", b"", {"Authorization": "Bearer x"}, kv.url)
    assert status == 400
    status, body, headers = kv.handle("GET", "/tailspin-kv/secrets/api-key/?api-version=7.6", b"", {}, kv.url)
    assert status == 401 and 'resource="https://vault.azure.net"' in headers["WWW-Authenticate"]
    assert VALUES["api-key"] not in str(body)


def test_no_secret_value_is_recorded_by_the_emulator_nor_put_in_an_error(kv: KeyVaultEmulator) -> None:
    now = datetime.now(UTC)
    for name, value in VALUES.items():
        kv.set_secret("tailspin-kv", name, value, enabled=name != "off",
                      expires=now - timedelta(hours=1) if name == "late" else None,
                      not_before=now + timedelta(hours=1) if name == "early" else None)
    kv.allow("locked-kv", "release-pipeline")
    kv.set_secret("locked-kv", "api-key", VALUES["api-key"])
    secrets = adapter(kv)
    messages: list[str] = []
    assert secrets.get("https://tailspin-kv.vault.azure.net/secrets/db-password") == VALUES["db-password"]
    for reference in ["https://tailspin-kv.vault.azure.net/secrets/off", "https://tailspin-kv.vault.azure.net/"
                      "secrets/late", "https://tailspin-kv.vault.azure.net/secrets/early",
                      "https://locked-kv.vault.azure.net/secrets/api-key", VALUES["old"]]:
        messages.append(str(failure(secrets, reference)))
    for fault in ("throttle", "error"):
        kv.inject("secrets", fault)
        messages.append(str(failure(secrets, "https://tailspin-kv.vault.azure.net/secrets/api-key")))
    recorded = repr(kv.requests)
    assert len(messages) == 7 and "Bearer" not in recorded
    for value in VALUES.values():
        assert value not in recorded
        assert all(value not in message for message in messages), value

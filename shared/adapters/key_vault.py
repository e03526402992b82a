"""Key Vault secrets with `azure-keyvault-secrets`, read with Slipway's managed identity.

A reference is one of (anything else is refused, and never echoed: it might be a pasted value):

* a secret URI, `https://{vault}.vault.azure.net/secrets/{name}[/{version}][/]` (the sovereign clouds' vaults
  end in `vault.usgovcloudapi.net` and `vault.azure.cn`);
* an App Service Key Vault reference, `@Microsoft.KeyVault(SecretUri={secret URI})` or
  `@Microsoft.KeyVault(VaultName={vault};SecretName={name}[;SecretVersion={version}])`
  (learn.microsoft.com, "Use Key Vault references for App Service and Azure Functions", Reference syntax).

One SecretClient per vault, built on first use (the SDK loads on first use only, and a client keeps its
connection pool and the vault's authentication challenge). The SDK's retries are off: a throttled or failing
read becomes a TargetError and the step decides when to try again.

The local stack (`keyvault_endpoint` set) reads vault `{vault}` at `{keyvault_endpoint}/{vault}` with a fixed
token. The endpoint must be https: the SDK's ChallengeAuthPolicy refuses to send a token over anything else
and, unlike azure-core's BearerTokenCredentialPolicy (request option `enforce_https=False`), has no switch
for it. So the emulator serves TLS with its own CA, which the client trusts through azure-core's
`connection_verify` (the `keyvault_ca_file` setting, or `ca_file` here), and `verify_challenge_resource=False`
lets the challenge's resource (`https://vault.azure.net`) differ from the host (127.0.0.1): the SDK's own,
documented switch for that check.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared import redaction
from shared.adapters.azure_auth import EmulatorToken, managed_identity, target_error
from shared.config import Settings
from shared.ports import TargetError

logger = logging.getLogger(__name__)

VAULT_SUFFIXES = {"AzureCloud": "vault.azure.net", "AzureUSGovernment": "vault.usgovcloudapi.net",
                  "AzureChinaCloud": "vault.azure.cn"}
"""Each cloud's Key Vault DNS suffix (learn.microsoft.com, "Azure Government developer guide" and "Azure China
developer guide": the Key Vault endpoints)."""
_VAULT = r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]"
"""3-24 letters, digits and dashes; a letter first, no dash last, no two dashes in a row (resource naming rules)."""
VAULT_NAME = re.compile(rf"^{_VAULT}$")
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
SECRET_VERSION = re.compile(r"^[0-9a-fA-F]{32}$")
_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\((?P<inner>.*)\)$", re.I | re.S)
_PATH = re.compile(r"^/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]+))?/?$", re.I)
NOT_A_REFERENCE = ("not a Key Vault secret reference (expected https://{vault}.vault.azure.net/secrets/{name}"
                   "[/{version}], @Microsoft.KeyVault(SecretUri=…) or @Microsoft.KeyVault(VaultName=…;SecretName=…))")
"""Never followed by what was given: a user may have pasted the secret itself where a reference belongs."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is: its vault (and that vault's DNS suffix), its name and optionally one version."""

    vault: str
    name: str
    version: str | None
    suffix: str

    def __str__(self) -> str:
        return f"secret {self.name}{'/' + self.version if self.version else ''} in vault {self.vault}"


def parse_reference(reference: str, cloud: str = "AzureCloud") -> SecretRef:
    """The vault, name and version a reference names; TargetError (not retryable) when it is none of the
    accepted forms. The VaultName form takes the cloud's vault suffix."""
    text = reference.strip()
    wrapped = _REFERENCE.match(text)
    if wrapped is None:
        return _parse_uri(text)
    inner = wrapped["inner"].strip()
    if inner.lower().startswith("secreturi="):
        return _parse_uri(inner.split("=", 1)[1].strip())
    parts: dict[str, str] = {}
    for item in inner.split(";"):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in ("vaultname", "secretname", "secretversion") or key in parts:
            raise TargetError(NOT_A_REFERENCE, retryable=False)
        parts[key] = value.strip()
    vault, name, version = parts.get("vaultname", ""), parts.get("secretname", ""), parts.get("secretversion")
    return _checked(vault, name, version or None, VAULT_SUFFIXES.get(cloud, VAULT_SUFFIXES["AzureCloud"]))


def _parse_uri(text: str) -> SecretRef:
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise TargetError(NOT_A_REFERENCE, retryable=False) from exc
    host = (url.hostname or "").lower()
    if url.scheme.lower() != "https" or port not in (None, 443) or url.query or url.fragment or url.username:
        raise TargetError(NOT_A_REFERENCE, retryable=False)
    vault, _, suffix = host.partition(".")
    path = _PATH.match(url.path)
    if suffix not in VAULT_SUFFIXES.values() or path is None:
        raise TargetError(NOT_A_REFERENCE, retryable=False)
    return _checked(vault, path["name"], path["version"], suffix)


def _checked(vault: str, name: str, version: str | None, suffix: str) -> SecretRef:
    if not VAULT_NAME.match(vault) or not SECRET_NAME.match(name) or (
            version is not None and not SECRET_VERSION.match(version)):
        raise TargetError(NOT_A_REFERENCE, retryable=False)
    return SecretRef(vault.lower(), name, version.lower() if version else None, suffix)


class KeyVaultSecrets:
    """SecretsPort over Key Vault.

    Nothing is cached between calls: a reference without a version means "the latest", and a secret rotated
    (or revoked) between two steps must be read as it is now, not as the first step saw it (App Service
    caches reference values and re-reads them every 24 hours, so a rotation takes up to a day to reach an app
    there). Key Vault's throttling guidance suggests caching for apps that read at run time; Slipway reads a
    secret a few times per release, far below the 4,000 secret transactions per 10 seconds a vault allows per
    region (learn.microsoft.com, "Azure Key Vault service limits" and "Azure Key Vault throttling guidance").

    Never logs or puts a secret's value in an error: errors name the vault and the secret.
    """

    connection_timeout = 10.0
    read_timeout = 30.0

    def __init__(self, settings: Settings, credential: Any = None, *, ca_file: str | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._ca_file = ca_file if ca_file is not None else settings.keyvault_ca_file
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def _local(self) -> bool:
        return bool(self.settings.keyvault_endpoint)

    def get(self, reference: str) -> str:
        ref = parse_reference(reference, self.settings.cloud)
        cloud_suffix = VAULT_SUFFIXES.get(self.settings.cloud, VAULT_SUFFIXES["AzureCloud"])
        if ref.suffix != cloud_suffix:
            raise TargetError(f"{ref}: the vault is a {ref.suffix} vault but Slipway runs in {self.settings.cloud} "
                              f"({cloud_suffix}); its identity cannot read another cloud's vaults", retryable=False)
        client = self._client(ref)
        try:
            secret = client.get_secret(ref.name, ref.version, connection_timeout=self.connection_timeout,
                                       read_timeout=self.read_timeout)
        except (AzureError, ValueError) as exc:  # a TargetError naming the secret, never its value
            raise _error(ref, exc) from exc
        properties = secret.properties
        now = datetime.now(UTC)
        # Key Vault serves expired and not-yet-valid secrets ("About Azure Key Vault secrets", Date-time
        # controlled operations); their exp / nbf say they "SHOULD NOT be retrieved", and Slipway does not use
        # them: an expired credential would fail later, somewhere harder to understand.
        if properties.expires_on is not None and properties.expires_on <= now:
            raise TargetError(f"{ref} expired at {properties.expires_on.isoformat()}", retryable=False)
        if properties.not_before is not None and properties.not_before > now:
            raise TargetError(f"{ref} is not valid before {properties.not_before.isoformat()}", retryable=False)
        if secret.value is None:
            raise TargetError(f"{ref} has no value", retryable=False)
        logger.debug("read %s (version %s)", ref, properties.version)
        redaction.remember(str(secret.value))  # masked in every log line of this process from now on
        return str(secret.value)

    def _client(self, ref: SecretRef) -> Any:
        key = (ref.vault, ref.suffix)
        with self._lock:
            if key not in self._clients:
                from azure.keyvault.secrets import SecretClient

                options: dict[str, Any] = {"retry_total": 0}
                if self._local:
                    endpoint = self.settings.keyvault_endpoint.rstrip("/")
                    if not endpoint.lower().startswith("https://"):
                        raise TargetError("SLIPWAY_KEYVAULT_ENDPOINT must be https: the Key Vault SDK sends tokens "
                                          "over TLS only", retryable=False)
                    url, credential = f"{endpoint}/{ref.vault}", self._credential or EmulatorToken()
                    options["verify_challenge_resource"] = False
                    if self._ca_file:
                        options["connection_verify"] = self._ca_file
                else:
                    url = f"https://{ref.vault}.{ref.suffix}"
                    credential = self._credential or managed_identity(self.settings)
                self._clients[key] = SecretClient(vault_url=url, credential=credential, **options)
            return self._clients[key]


def _error(ref: SecretRef, exc: Exception) -> TargetError:
    """What went wrong, naming the vault and the secret: not found and forbidden are final; throttling, 5xx
    and the network are worth another try (after Retry-After when Key Vault says it)."""
    if isinstance(exc, ResourceNotFoundError):
        return TargetError(f"{ref}: not found ({getattr(exc.error, 'code', None) or 'SecretNotFound'})",
                           retryable=False)
    if isinstance(exc, ClientAuthenticationError):
        return TargetError(f"{ref}: Key Vault did not accept Slipway's token ({_reason(exc)})", retryable=False)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TargetError(f"{ref}: vault unreachable ({type(exc).__name__}; is the vault name right?)",
                           retryable=True)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        inner = _inner_code(exc)
        if status == 403 and inner == "SecretDisabled":
            return TargetError(f"{ref} is disabled", retryable=False)
        if status == 403:
            return TargetError(f"{ref}: Slipway's identity may not read it ({inner or _reason(exc)}); it needs the "
                               f"Key Vault Secrets User role on the vault (or an access policy with get)",
                               retryable=False)
        return target_error(exc, str(ref), service="Key Vault", explain=_reason)
    if isinstance(exc, ValueError):  # the SDK refused the vault's authentication challenge
        return TargetError(f"{ref}: the vault's authentication challenge was refused ({exc})", retryable=False)
    return TargetError(f"{ref}: reading failed ({type(exc).__name__})", retryable=True)  # other transport errors


def _reason(exc: Exception) -> str:
    """Key Vault's error code and the first line of its message (never a value: errors carry none)."""
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", "") or "")
    message = str(getattr(error, "message", "") or "") if code else str(getattr(exc, "message", "") or "")
    first = message.strip().splitlines()[0][:200] if message.strip() else ""
    return ": ".join(p for p in (code, first) if p) or type(exc).__name__


def _inner_code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    inner = getattr(error, "innererror", None) if error is not None else None
    if isinstance(inner, dict):
        return str(inner.get("code") or "")
    return str(getattr(error, "code", "") or "") if error is not None else ""


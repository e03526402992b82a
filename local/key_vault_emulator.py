"""A Key Vault emulator for secrets, speaking the data-plane REST API the real `SecretClient` sends.

* `GET {vault}/secrets/{name}/{version}?api-version=…` and `GET {vault}/secrets/{name}[/]?api-version=…`
  (the latest version): azure-rest-api-specs specification/keyvault/data-plane/Microsoft.KeyVault/stable/
  2025-07-01/secrets.json, GetSecret ("secret-version … is optional. If not specified, the latest version of
  the secret is returned"). `SecretClient.get_secret(name)` sends `/secrets/{name}/` with an empty version.
* Key Vault's challenge-based authentication: a request without a bearer token is answered 401 with
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="…"`; the
  SDK's ChallengeAuthPolicy (azure-keyvault-secrets `_shared/challenge_auth_policy.py`) sends its first
  request without a token, reads the tenant and the resource from that header, gets a token for
  `{resource}/.default` and sends the request again. Any bearer token is accepted; the token's text is
  the caller's principal for `allow`.
* Several vaults. In Azure each vault is its own host, `https://{name}.vault.azure.net` (sovereign clouds:
  `vault.usgovcloudapi.net`, `vault.azure.cn`); one emulator serves every vault on one port, vault `{name}`
  under the path prefix `/{name}`, so a client is built with `vault_url=f"{url}/{name}"`. Secret ids in the
  answers keep the Azure form (`https://{name}.vault.azure.net/secrets/…`), which the SDK parses.
* TLS. The SDK sends a token only over https: ChallengeAuthPolicy's `_enforce_tls` refuses any other
  scheme, without the `enforce_https` option that azure-core's BearerTokenCredentialPolicy has. So the
  emulator serves https with a certificate of its own CA, made at `start()`; pass `ca_file` to the client
  as `connection_verify`, and `verify_challenge_resource=False` (127.0.0.1 is not a `*.vault.azure.net`).

Strict as Key Vault: an unknown api-version is refused; a disabled secret is 403 Forbidden / SecretDisabled;
an unknown secret or version is 404 SecretNotFound; a caller outside a vault's access list is 403
ForbiddenByRbac (the "Key Vault Secrets User" role missing); an unknown vault has no DNS name in Azure, so
its connections are dropped without an answer. Expired and not-yet-valid secrets are served, as Key Vault
does (learn.microsoft.com, "About Azure Key Vault secrets", "Date-time controlled operations": a secret's get
works outside the nbf / exp window).

`requests` records the method, path, status and caller of each request, never a header or a body: no token
and no secret value is ever kept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from local.rest_emulator import Reply, RestEmulator

API_VERSIONS = ("2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01")
"""The versions azure-keyvault-secrets 4.12 can send (`_shared/client_base.py`, ApiVersion); the default is
2026-04-01. Anything else is refused as Key Vault refuses a version it does not know."""
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
"""3-24 characters, letters, digits and dashes, starting with a letter, ending with a letter or digit, no
consecutive dashes (learn.microsoft.com, "Naming rules and restrictions for Azure resources", Microsoft.KeyVault)."""
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
"""secrets.json SetSecret: `"pattern": "^[0-9a-zA-Z-]+$"`; 127 characters at most (learn.microsoft.com, "About
keys, secrets, and certificates", object identifiers)."""
SECRET_PATH = re.compile(r"^/(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?$")
KINDS = ("secrets",)
FAULTS = ("throttle", "error", "timeout")
NOT_FOUND_HINT = ("If you recently deleted this secret you may be able to recover it using the correct recovery "
                  "command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


@dataclass
class SecretVersion:
    version: str
    value: str
    enabled: bool
    expires: datetime | None
    not_before: datetime | None
    created: datetime
    content_type: str | None = None


@dataclass
class Vault:
    name: str
    secrets: dict[str, list[SecretVersion]] = field(default_factory=dict)
    """Lower-cased secret name (Key Vault names are case-insensitive) → versions, oldest first."""
    display: dict[str, str] = field(default_factory=dict)
    """Lower-cased name → the name as first set, for ids."""
    allowed: set[str] | None = None
    """Principals that may get secrets; None: everyone."""


@dataclass
class Fault:
    fault: str
    count: int
    seconds: float | None = None
    vault: str | None = None


@dataclass(frozen=True)
class Request:
    """What the emulator was asked: never a header (tokens) nor a body (secret values)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    principal: str | None


class KeyVaultEmulator(RestEmulator):
    protocol_version = "HTTP/1.1"
    scheme = "https"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tenant: str = DEFAULT_TENANT,
                 resource: str = "https://vault.azure.net", dns_suffix: str = "vault.azure.net") -> None:
        super().__init__(host, port)
        self.tenant = tenant
        self.resource = resource
        """What the challenge names as the token's audience (`https://vault.usgovcloudapi.net`,
        `https://vault.azure.cn` in the sovereign clouds)."""
        self.dns_suffix = dns_suffix
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.requests: list[Request] = []
        self.vaults: dict[str, Vault] = {}
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._dir: str | None = None
        self.ca_file = ""
        """The PEM of the CA that signed the emulator's certificate (set by `start`)."""

    # -- lifecycle

    def vault_url(self, vault: str) -> str:
        """What a SecretClient is given for one vault here (`https://{vault}.vault.azure.net` in Azure)."""
        return f"{self.url}/{vault}"

    def stop(self) -> None:
        super().stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def tls_context(self) -> ssl.SSLContext:
        """A CA and a server certificate it signed for 127.0.0.1 and localhost, valid for a day, in a new
        temporary directory (`stop` removes it)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self._dir = directory = tempfile.mkdtemp(prefix="kv-emulator-")
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Slipway Key Vault emulator CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        if self.host not in ("127.0.0.1", "localhost"):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(self.host)))
            except ValueError:
                names.append(x509.DNSName(self.host))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file = os.path.join(directory, "ca.pem")
        with open(self.ca_file, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        chain, key_file = os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
        with open(chain, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
        return context

    # -- seeding and test hooks

    def add_vault(self, vault: str) -> None:
        if not VAULT_NAME.match(vault):
            raise ValueError(f"{vault!r} is not a valid Key Vault name")
        with self._lock:
            self.vaults.setdefault(vault.lower(), Vault(vault.lower()))

    def set_secret(self, vault: str, name: str, value: str, enabled: bool = True, expires: datetime | None = None,
                   not_before: datetime | None = None, content_type: str | None = None) -> str:
        """A new version of the secret (creating the vault and the secret as needed); returns the version,
        32 hex digits as Key Vault's are. The new version is the latest."""
        if not SECRET_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid secret name")
        self.add_vault(vault)
        version = uuid.uuid4().hex
        with self._lock:
            kv = self.vaults[vault.lower()]
            kv.display.setdefault(name.lower(), name)
            kv.secrets.setdefault(name.lower(), []).append(SecretVersion(
                version, value, enabled, _utc(expires), _utc(not_before), datetime.now(UTC), content_type))
        return version

    def set_enabled(self, vault: str, name: str, enabled: bool, version: str | None = None) -> None:
        """Enable or disable one version (the latest when None), as UpdateSecret does."""
        with self._lock:
            versions = self.vaults[vault.lower()].secrets[name.lower()]
            chosen = versions[-1] if version is None else next(v for v in versions if v.version == version)
            chosen.enabled = enabled

    def allow(self, vault: str, principal: str) -> None:
        """From now on only the principals allowed here may get the vault's secrets (as a role assignment of
        Key Vault Secrets User on the vault). A vault nobody was allowed on lets everyone in."""
        self.add_vault(vault)
        with self._lock:
            kv = self.vaults[vault.lower()]
            kv.allowed = (kv.allowed or set()) | {principal}

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None,
               vault: str | None = None) -> None:
        """The next `count` authenticated requests of `kind` ("secrets"; of one vault when `vault` is given)
        misbehave: `throttle` (429 with Retry-After: 2), `error` (500) or `timeout` (held `seconds`, default
        `timeout_seconds`, then answered). The unauthenticated challenge round trip is not counted."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        with self._lock:
            self._faults.append(Fault(fault, count, seconds, vault.lower() if vault else None))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parsed.path))
        query = dict(parse_qsl(parsed.query, keep_blank_values=True))
        principal = _bearer(headers)
        status, body, out = self._handle(method, path, query, principal)
        with self._lock:
            self.requests.append(Request(method, path, query, status, principal))
        return status, body, {"x-ms-request-id": str(uuid.uuid4()), "x-ms-keyvault-service-version": "1.9.0.0",
                              **out}

    def _handle(self, method: str, path: str, query: dict[str, str], principal: str | None) -> Reply:
        vault_name = path.strip("/").split("/", 1)[0].lower()
        with self._lock:
            vault = self.vaults.get(vault_name)
        if vault is None:
            # In Azure `{name}.vault.azure.net` does not resolve for a vault that does not exist: the client
            # never reaches a server.
            return 0, None, {}
        if principal is None:
            # The challenge (azure-keyvault-secrets HttpChallenge: "authorization" or "authorization_uri",
            # the tenant as its path, "resource" or "scope"); Key Vault answers AKV10000 to a request
            # without a token.
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", '
                         f'resource="{self.resource}"')
            return 401, _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."), {
                "WWW-Authenticate": challenge}
        version_error = self._check_api_version(query)
        if version_error is not None:
            return version_error
        match = SECRET_PATH.match(path)
        if match is None:
            return 404, _error("NotFound", f"{method} {path} is not emulated"), {}
        if method != "GET":
            return 405, _error("MethodNotAllowed", f"{method} is not emulated for secrets"), {}
        fault = self._take_fault(vault.name)
        if fault is not None:
            if fault.fault == "timeout":
                self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            elif fault.fault == "throttle":
                # Key Vault throttles per vault and region with 429 and Retry-After (learn.microsoft.com,
                # "Azure Key Vault throttling guidance").
                return 429, _error("Throttled", "Request was not allowed because of throttling (injected). "
                                   "Retry after 2 seconds."), {"Retry-After": "2"}
            else:
                return 500, _error("InternalServerError", "An internal error occurred (injected)."), {}
        if vault.allowed is not None and principal not in vault.allowed:
            # Azure RBAC on the vault's data plane: without "Key Vault Secrets User" (or an access policy with
            # "get"), 403 Forbidden with inner error ForbiddenByRbac and the action it checked.
            resource = f"/vaults/{vault.name}/secrets/{match['name']}"
            return 403, _error(
                "Forbidden", "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                "assignments or role definitions were changed recently, please observe propagation time.\r\n"
                f"Caller: oid={principal}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
                f"Resource: '{resource}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'"
                f"\r\nVault: {vault.name}", inner="ForbiddenByRbac"), {}
        name, version = match["name"], match["version"] or ""
        if not SECRET_NAME.match(name):
            return 400, _error("BadParameter", f"The secret name '{name}' is invalid: a secret name has 1 to 127 "
                                               "letters, digits and dashes."), {}
        with self._lock:
            versions = list(vault.secrets.get(name.lower(), []))
            display = vault.display.get(name.lower(), name)
        chosen = (versions[-1] if versions else None) if not version else next(
            (v for v in versions if v.version == version.lower()), None)
        if chosen is None:
            shown = f"{name}/{version}" if version else name
            return 404, _error("SecretNotFound", f"A secret with (name/id) {shown} was not found in this key vault. "
                                                 f"{NOT_FOUND_HINT}"), {}
        if not chosen.enabled:
            # Get on a disabled version: 403 Forbidden, inner error SecretDisabled (the service's answer as seen in
            # Azure/azure-sdk-for-js#24756 and ansible-collections/azure#1989).
            return 403, _error("Forbidden", "Operation get is not allowed on a disabled secret.",
                               inner="SecretDisabled"), {}
        return 200, self._bundle(vault.name, display, chosen), {}

    def _check_api_version(self, query: dict[str, str]) -> Reply | None:
        api_version = query.get("api-version")
        if not api_version:
            return 400, _error("BadParameter", "The 'api-version' query parameter is missing."), {}
        if api_version not in API_VERSIONS:
            return 400, _error("BadParameter", f"The specified version ({api_version}) is not recognized. Consider "
                                               f"using the latest supported version ({API_VERSIONS[-1]})."), {}
        return None

    def _take_fault(self, vault: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.vault in (None, vault):
                    fault.count -= 1
                    return fault
            self._faults = [f for f in self._faults if f.count > 0]
        return None

    def _bundle(self, vault: str, name: str, secret: SecretVersion) -> dict[str, Any]:
        """SecretBundle (secrets.json): the value, the version's id in Azure's form, its attributes with times
        as seconds since 1970 (IntDate)."""
        attributes: dict[str, Any] = {"enabled": secret.enabled, "created": _epoch(secret.created),
                                      "updated": _epoch(secret.created), "recoveryLevel": "Recoverable+Purgeable",
                                      "recoverableDays": 90}
        if secret.not_before is not None:
            attributes["nbf"] = _epoch(secret.not_before)
        if secret.expires is not None:
            attributes["exp"] = _epoch(secret.expires)
        body: dict[str, Any] = {"value": secret.value, "id": f"https://{vault}.{self.dns_suffix}/secrets/{name}/"
                                f"{secret.version}", "attributes": attributes, "tags": {}}
        if secret.content_type is not None:
            body["contentType"] = secret.content_type
        return body


def _bearer(headers: dict[str, str]) -> str | None:
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def _error(code: str, message: str, *, inner: str | None = None) -> dict[str, Any]:
    """KeyVaultError (secrets.json): {"error": {"code", "message", "innererror": {"code"}}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner is not None:
        error["innererror"] = {"code": inner}
    return {"error": error}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


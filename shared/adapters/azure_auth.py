"""How Slipway authenticates to Azure and to its local emulators, and what a failed Azure SDK call tells the step.

Slipway calls Azure as its managed identity (`managed_identity_client_id`, the user-assigned one; empty: the
system-assigned one). On the local stack (`arm_auth = local-emulator`) the SDKs talk plain http to emulators that
check no token: `EmulatorToken` satisfies the SDKs' constructors, and `EmulatorAuthPolicy` sends a fixed
`Bearer local-emulator` in place of azure-core's bearer-token policy, which sends no token over http.

The SDKs' own retries are off (`retry_total: 0`): a throttled or failing call becomes a `TargetError`
(`target_error`), retryable with the service's Retry-After or final, and the step decides when to try again,
without holding an invocation. The SDKs and azure-identity load on first use only (they are heavy to import).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.config import Settings
from shared.ports import TargetError

EMULATOR_TOKEN = "local-emulator"
"""The token every local emulator is sent (none checks it)."""
CALL_ERRORS = (HttpResponseError, ServiceRequestError, ServiceResponseError)
"""What `target_error` turns into a TargetError: the service's answer, or no answer (network trouble)."""


class EmulatorToken:
    """A credential that satisfies an SDK's constructor; the emulators check no token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(EMULATOR_TOKEN, 2**31 - 1)


class EmulatorAuthPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """The fixed token, sent over http too (azure-core's bearer-token policy refuses a non-https URL)."""

    def on_request(self, request: Any) -> None:
        request.http_request.headers["Authorization"] = f"Bearer {EMULATOR_TOKEN}"


def managed_identity(settings: Settings) -> Any:
    """Slipway's managed identity, as an azure-identity credential (which caches its tokens)."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id or None)


def client_args(settings: Settings, credential: Any = None, **options: Any) -> tuple[Any, dict[str, Any]]:
    """(credential, client options) for an azure-core client: with `arm_auth = local-emulator` the fixed token and
    its policy; otherwise `credential` (a test's, or one made before and kept) or a new managed identity. The SDK's
    retries are off; `options` (timeouts) are added."""
    options = {"retry_total": 0, **options}
    if settings.arm_auth == "local-emulator":
        options["authentication_policy"] = EmulatorAuthPolicy()
        return EmulatorToken(), options
    return credential or managed_identity(settings), options


def mgmt_client_args(settings: Settings, base_url: str, scopes: Iterable[str], credential: Any = None,
                     **options: Any) -> tuple[Any, dict[str, Any]]:
    """(credential, client options) for an azure-mgmt client of the ARM endpoint at `base_url`, with tokens for
    `scopes`: as `client_args`, and a long-running operation looked at every second."""
    return client_args(settings, credential, base_url=base_url, polling_interval=1, credential_scopes=list(scopes),
                       **options)


def reason(exc: HttpResponseError) -> str:
    """The service's error as `code: message`, or else the first line of what the answer says."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        return f"{error.code}: {error.message}"
    return str(exc.reason or exc.message or "").splitlines()[0][:300]


def retry_after(exc: HttpResponseError) -> float | None:
    """The answer's Retry-After, in seconds (None when it has none, or not as a number)."""
    response: Any = exc.response  # an HttpResponse: the common API's type omits its headers
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def transient(status: int) -> bool:
    """A status worth another try: timeout, throttling, the service's own failure."""
    return status in (408, 429) or status >= 500


def target_error(exc: HttpResponseError | ServiceRequestError | ServiceResponseError, what: str, *,
                 service: str = "ARM", explain: Callable[[HttpResponseError], str] = reason, hint: str = "",
                 retryable: Callable[[int], bool] = transient) -> TargetError:
    """A failed call as a TargetError saying `what` failed: `{what}: {service} unreachable (…)` (retryable) when
    no answer came, else `{what}: {service} answered {status} ({explain(exc)}){hint}`, retryable as `retryable`
    says of the status, after the answer's Retry-After. What a caller reads otherwise (a 404 meaning "none", the
    operation's own verdict, a missing role) it says before calling this."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TargetError(f"{what}: {service} unreachable ({exc})", retryable=True)
    status = exc.status_code or 0
    return TargetError(f"{what}: {service} answered {status} ({explain(exc)}){hint}", retryable=retryable(status),
                       retry_after=retry_after(exc))

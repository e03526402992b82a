"""The `http-request` step as a definition gives it (Azure DevOps' Invoke REST API / Invoke Azure
Function tasks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from shared.domain.gates import JSON_PATH
from shared.domain.headers import RESERVED, RESERVED_PREFIX, SENSITIVE
from shared.schemas.step_base import StepBase, Strict

HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]
SettingName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
SecretUri = Annotated[str, StringConstraints(
    pattern=r"^(https://[a-zA-Z0-9-]{3,24}\.vault\.(azure\.net|usgovcloudapi\.net|azure\.cn)/secrets/[A-Za-z0-9-]{1,127}"
            r"(/[0-9a-fA-F]{32})?|@Microsoft\.KeyVault\([^)]{1,500}\))$", max_length=600)]
JsonPath = Annotated[str, StringConstraints(pattern=JSON_PATH.pattern, max_length=200)]


class Criterion(Strict):
    """A value of the JSON answer (or callback) that must hold for success: `$.status == "Healthy"`."""

    jsonPath: JsonPath
    operator: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: str | int | float | bool | None


class HttpRequestStep(StepBase):
    """Call a REST API or an Azure Function and succeed on its answer, or on its callback: with
    `completion: callback` the call carries a single-use URL (header `X-Slipway-Callback`, and
    `$(Slipway.CallbackUrl)` in the body) to which the service POSTs `{"result": "succeeded" | "failed",
    "message": "…", "outputs": {…}}` before the timeout. Every call of one step carries the same
    `Idempotency-Key` header, so a service can recognise a call repeated after a crash.

    Headers are a denylist, not an allowlist (a REST API's own headers are unknowable in advance): refused
    at save are credential headers in plain `headers` (give them in `headersFromSecrets`, read from Key
    Vault with Slipway's identity, or `headersFromSettings`), and in every header source the framing and
    hop-by-hop headers the client sets (`Host`, `Content-Length`, `Transfer-Encoding`, `Connection`, …),
    `Idempotency-Key` and any `X-Slipway-*` header, which only Slipway sets."""

    type: Literal["http-request"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """`$(Name)` variables allowed. https, except for hosts the app allows locally."""
    headers: dict[HeaderName, Annotated[str, StringConstraints(max_length=1000)]] = Field(default_factory=dict,
                                                                                          max_length=20)
    """Plain headers (never credentials: see `headersFromSecrets`)."""
    headersFromSettings: dict[HeaderName, SettingName] = Field(default_factory=dict, max_length=10)
    """Header → an app setting on the allowlist SLIPWAY_GATE_HEADER_SETTINGS (the same as REST gates')."""
    headersFromSecrets: dict[HeaderName, SecretUri] = Field(default_factory=dict, max_length=10)
    """Header → a Key Vault secret, read with Slipway's identity when the step runs; never logged."""
    body: str | dict[str, Any] | list[Any] | None = None
    """Text or JSON; `$(Name)` variables in every string."""
    expectStatus: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=list, max_length=20)
    """Statuses that count as success; any 2xx when empty."""
    criteria: list[Criterion] = Field(default_factory=list, max_length=10)
    """Conditions on the JSON answer (with `completion: response`) or on the callback's body."""
    outputs: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], JsonPath] = \
        Field(default_factory=dict, max_length=20)
    """Variables for later steps: name → a JSON path in the answer (or the callback's `outputs`)."""
    completion: Literal["response", "callback"] = "response"
    timeoutMinutes: int = Field(10, ge=1, le=60 * 24 * 2)
    """With a callback: how long to wait for it. With a response: how long to keep retrying a call that
    failed with 429, 5xx or a network error."""
    requestTimeoutSeconds: int = Field(20, ge=1, le=120)

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in SENSITIVE:
                raise ValueError(f"header {name} carries credentials: give it in `headersFromSecrets` (Key Vault) "
                                 f"or `headersFromSettings`, never in the definition")
        return headers

    @field_validator("headers", "headersFromSettings", "headersFromSecrets")
    @classmethod
    def _not_reserved(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            lowered = name.lower()
            if lowered.startswith(RESERVED_PREFIX):
                raise ValueError(f"header {name}: X-Slipway-* headers are Slipway's own and cannot be set")
            if lowered in RESERVED:
                raise ValueError(f"header {name} is set by the HTTP client or Slipway (framing, hop-by-hop or "
                                 f"idempotency) and cannot be set by a definition")
        return headers

    @model_validator(mode="after")
    def _one_source_per_header(self) -> HttpRequestStep:
        names = [n.lower() for n in (*self.headers, *self.headersFromSettings, *self.headersFromSecrets)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"header(s) {', '.join(twice)} given more than once")
        return self

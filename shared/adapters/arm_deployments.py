"""ARM template deployments and what-if with `azure-mgmt-resource-deployments` (DeploymentsMgmtClient).

One management client per subscription, built on first use (the SDK loads on first use only). The SDK's
own retries are off: a throttled or failing call becomes a `TargetError` and the step decides when to
look again, without holding an invocation. A deployment is started without waiting for it (`polling=False`:
one PUT, nothing else); the step follows it by GETting it by name. Template specs are passed to ARM as
`templateLink.id` and resolved by ARM itself, as Azure does. `arm_auth = local-emulator` sends a fixed
token over http, and is only for the local ARM deployments emulator.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shared.adapters.azure_auth import CALL_ERRORS, mgmt_client_args, reason, target_error
from shared.config import Settings
from shared.ports import ArmDeployment, ArmTemplate, TargetError, WhatIfChange

SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/?$", re.I)
SECURE_TYPES = ("securestring", "secureobject")
WHAT_IF_SECONDS = 120.0
"""How long `what_if` waits for ARM's answer (what-if usually answers within a minute)."""


@dataclass(frozen=True)
class Deployment(ArmDeployment):
    """An `ArmDeployment` that also names its secure outputs (ARM keeps no value for them: outputs of type
    secureString / secureObject are not recorded in the deployment history; learn.microsoft.com,
    bicep/outputs), absent from `outputs`, and carries ARM's correlation id, which tells one deployment of a
    name from a later one of the same name."""

    secure_outputs: tuple[str, ...] = ()
    correlation_id: str = ""


class ArmDeployments:
    def __init__(self, settings: Settings, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, subscription_id: str) -> Any:
        with self._lock:
            if subscription_id not in self._clients:
                from azure.mgmt.resource.deployments import DeploymentsMgmtClient

                credential, options = mgmt_client_args(self.settings, self.settings.deployments_url,
                                                       [self.settings.arm_scope], self._credential)
                self._clients[subscription_id] = DeploymentsMgmtClient(credential, subscription_id, **options)
            return self._clients[subscription_id]

    def deploy(self, scope: str, name: str, what: ArmTemplate) -> None:
        """One PUT of the deployment; ARM runs it on (201 Accepted) and `get` follows it."""
        sub, rg = _scope(scope)
        deployments = self._client(sub).deployments
        body = _body(what, rg)
        with _errors(f"starting ARM deployment {name} at {scope}"):
            if rg is not None:
                deployments.begin_create_or_update(rg, name, body, polling=False)
            else:
                deployments.begin_create_or_update_at_subscription_scope(name, body, polling=False)

    def get(self, scope: str, name: str) -> ArmDeployment | None:
        sub, rg = _scope(scope)
        deployments = self._client(sub).deployments
        with _errors(f"reading ARM deployment {name} at {scope}", missing="DeploymentNotFound") as seen:
            found = deployments.get(rg, name) if rg is not None else deployments.get_at_subscription_scope(name)
        if seen.missing:
            return None
        props = found.properties
        outputs: dict[str, Any] = {}
        secure: list[str] = []
        for key, output in dict(props.outputs or {}).items():
            if str(output.get("type", "")).lower() in SECURE_TYPES:
                secure.append(key)  # never read, never kept: ARM sends no value for them anyway
            else:
                outputs[key] = output.get("value")
        return Deployment(state=_enum(props.provisioning_state), outputs=outputs, error=_error_text(props.error),
                          secure_outputs=tuple(secure), correlation_id=str(props.correlation_id or ""))

    def operations(self, scope: str, name: str) -> list[dict[str, Any]]:
        sub, rg = _scope(scope)
        client = self._client(sub).deployment_operations
        with _errors(f"listing the operations of ARM deployment {name} at {scope}"):
            found = list(client.list(rg, name) if rg is not None else client.list_at_subscription_scope(name))
        out = []
        for op in found:
            props = op.properties
            if props is None:
                continue
            target = props.target_resource
            status = props.status_message
            message = ""
            if status is not None and status.error is not None:
                message = _error_text(status.error)
            out.append({"resource": (target.id if target else None) or "", "type": (target.resource_type
                                                                                     if target else None) or "",
                        "operation": _enum(props.provisioning_operation),
                        "state": _enum(props.provisioning_state), "message": message})
        return out

    def cancel(self, scope: str, name: str) -> None:
        """Cancel a running deployment. ARM answers 409 for one that is no longer running and 404 for none:
        both leave nothing to cancel, so both are done."""
        sub, rg = _scope(scope)
        deployments = self._client(sub).deployments
        with _errors(f"canceling ARM deployment {name} at {scope}", missing="DeploymentNotFound",
                     finished="DeploymentCannotBeCancelled"):
            if rg is not None:
                deployments.cancel(rg, name)
            else:
                deployments.cancel_at_subscription_scope(name)

    def what_if(self, scope: str, what: ArmTemplate) -> list[WhatIfChange]:
        """POST .../whatIf under a throwaway name and follow its operation to ARM's answer."""
        sub, rg = _scope(scope)
        deployments = self._client(sub).deployments
        name = f"slipway-what-if-{uuid.uuid4().hex[:12]}"
        body = _body(what, rg)
        with _errors(f"what-if at {scope}"):
            if rg is not None:
                poller = deployments.begin_what_if(rg, name, body)
            else:
                poller = deployments.begin_what_if_at_subscription_scope(name, body)
            poller.wait(timeout=WHAT_IF_SECONDS)
            if not poller.done():
                raise TargetError(f"what-if at {scope}: ARM gave no answer within {WHAT_IF_SECONDS:g}s",
                                  retryable=True)
            result = poller.result()
        if result.error is not None or str(result.status or "Succeeded").lower() == "failed":
            raise TargetError(f"what-if at {scope} failed: {_error_text(result.error) or result.status}",
                              retryable=False)
        return [WhatIfChange(resource_id=str(c.resource_id or ""), change=_enum(c.change_type),
                             properties=tuple(_paths(c.delta or [])))
                for c in (result.properties.changes if result.properties else None) or []]


def _enum(value: Any) -> str:
    """An SDK enum member (`ProvisioningState.SUCCEEDED`) or a string the SDK does not know, as ARM sent it."""
    return str(getattr(value, "value", value) or "")


def _scope(scope: str) -> tuple[str, str | None]:
    m = SCOPE.match(scope)
    if m is None:
        raise TargetError(f"'{scope}' is not a subscription or resource group scope", retryable=False)
    return m["sub"], m["rg"]


def _body(what: ArmTemplate, rg: str | None) -> dict[str, Any]:
    """The request body (`Deployment` / `DeploymentWhatIf`), as the REST API spells it."""
    given = [k for k, v in (("template", what.template), ("spec_id", what.spec_id), ("uri", what.uri))
             if v is not None]
    if len(given) != 1:
        raise TargetError(f"a deployment needs exactly one of a template, a template spec or a URL (got "
                          f"{', '.join(given) or 'none'})", retryable=False)
    if rg is None and not what.location:
        raise TargetError("a subscription-scope deployment needs a location", retryable=False)
    if rg is None and what.mode == "Complete":
        raise TargetError("Complete mode is only for resource-group deployments", retryable=False)
    props: dict[str, Any] = {"mode": what.mode,
                             "parameters": {k: {"value": v} for k, v in (what.parameters or {}).items()}}
    if what.template is not None:
        props["template"] = what.template
    elif what.spec_id is not None:
        props["templateLink"] = {"id": what.spec_id}
    else:
        props["templateLink"] = {"uri": what.uri}
    body: dict[str, Any] = {"properties": props}
    if what.location:
        body["location"] = what.location
    return body


def _error_text(error: Any) -> str:
    """ARM's error: `code: message`, with the first nested details (where the real reason is)."""
    if error is None:
        return ""
    text = f"{error.code}: {error.message}" if error.code else str(error.message or "")
    details = list(error.details or [])[:3]
    if details:
        text += " (" + "; ".join(_error_text(d) for d in details) + ")"
    return text


def _paths(delta: list[Any], prefix: str = "") -> list[str]:
    """Property paths a what-if delta changes, leaves only (`properties.siteConfig.alwaysOn`,
    `properties.rules[1]`); `NoEffect` changes are left out."""
    out: list[str] = []
    for change in delta:
        path = str(change.path or "")
        full = (f"{prefix}[{path}]" if path.isdigit() else f"{prefix}.{path}") if prefix else path
        if change.children:
            out.extend(_paths(change.children, full))
        elif _enum(change.property_change_type) != "NoEffect":
            out.append(full)
    return out


class _errors:
    """Turn SDK errors into TargetError: retryable for throttling, 5xx and network trouble; `missing` names
    the 404 code that means "there is none" (recorded in `missing`, not raised), `finished` the 409 code
    that means there is nothing left to do."""

    def __init__(self, what: str, *, missing: str | None = None, finished: str | None = None) -> None:
        self.what, self.missing_code, self.finished_code = what, missing, finished
        self.missing = False

    def __enter__(self) -> _errors:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            return False
        if isinstance(exc, ClientAuthenticationError):
            raise TargetError(f"{self.what}: not authorised ({_reason(exc)}); Slipway's identity needs a role "
                              f"that may deploy there (Contributor, or Template Spec Reader for a template spec)",
                              retryable=False) from exc
        if isinstance(exc, HttpResponseError):
            status = exc.status_code or 0
            code = _code(exc)
            if status == 404 and self.missing_code and code == self.missing_code:
                self.missing = True
                return True
            if status == 409 and self.finished_code and code == self.finished_code:
                return True
        if isinstance(exc, CALL_ERRORS):
            raise target_error(exc, self.what, explain=_reason) from exc
        return False


def _code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


def _reason(exc: HttpResponseError) -> str:
    """ARM's error with its first nested details, or what the answer says."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        return _error_text(error)[:1000]
    return reason(exc)

"""An ARM template deployments emulator that speaks the Microsoft.Resources deployments REST API as
`azure.mgmt.resource.deployments.DeploymentsMgmtClient` (azure-mgmt-resource-deployments 2.0.0,
api-version 2026-06-01) sends it.

Source for every route, body and status below unless a comment says otherwise: azure-rest-api-specs,
specification/resources/resource-manager/Microsoft.Resources/deployments/stable/2026-06-01/
deployments.json (and its examples), and the SDK's own request builders.

* Deployments at resource-group scope (`/subscriptions/{s}/resourcegroups/{rg}/providers/
  Microsoft.Resources/deployments/{name}`) and subscription scope (`/subscriptions/{s}/providers/
  Microsoft.Resources/deployments/{name}`, location required): create-or-update (long-running: Accepted,
  then Running for `deployment_polls` looks, then Succeeded / Failed), get, cancel, operations list,
  what-if (`POST .../whatIf`, long-running through its `Location`).
* Template spec versions (`.../providers/Microsoft.Resources/templateSpecs/{name}/versions/{v}`), seeded
  with `add_template_spec`, used by `templateLink.id`; `templateLink.uri` is fetched with httpx.
* The resources deployments create are kept (`resources`: id → type, apiVersion, location, properties),
  and what-if compares templates with them.

The template language is evaluated strictly, for a small documented subset only (see `Evaluator`):
parameters (defaultValue, type, allowedValues, min/max value and length), variables, and the expressions
`parameters('x')`, `variables('x')`, `concat(...)`, `resourceGroup()` (`.location`, `.name`, `.id`),
`subscription()` (`.subscriptionId`, `.id`), `resourceId(type, name...)`, `reference(id)` and property
and index access. Anything else is refused with 400 InvalidTemplate naming the expression: stricter
than Azure, never more lenient. Template errors are found before the deployment starts (ARM's preflight
validation: 400 at the PUT); resource failures (`fail_resource_type`) happen while it runs.

Seed it with `add_resource_group(subscription, name, location)`; point the SDK at `url` with an
authentication policy that allows http. Tests make it misbehave with `inject` and read `requests`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

import httpx

from local.rest_emulator import Fault, Reply, Request, RestEmulator

logger = logging.getLogger(__name__)


API_VERSIONS = ("2026-06-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01",
                "2022-09-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-08-01", "2020-06-01")
"""Deployments api-versions accepted (stable versions of the spec that have what-if and templateLink.id);
any other is refused as ARM refuses it (400 InvalidApiVersionParameter)."""
TEMPLATE_SPEC_API_VERSIONS = ("2022-02-01", "2021-05-01")
"""Template specs api-versions (specification/resources/.../Microsoft.Resources/templateSpecs/stable)."""

_RG = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_DEP = r"/providers/microsoft\.resources/deployments/(?P<name>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("deployment", re.compile(rf"^{_RG}{_DEP}$", re.I)),
    ("deployment", re.compile(rf"^{_SUB}{_DEP}$", re.I)),
    ("cancel", re.compile(rf"^{_RG}{_DEP}/cancel$", re.I)),
    ("cancel", re.compile(rf"^{_SUB}{_DEP}/cancel$", re.I)),
    ("whatif", re.compile(rf"^{_RG}{_DEP}/whatIf$", re.I)),
    ("whatif", re.compile(rf"^{_SUB}{_DEP}/whatIf$", re.I)),
    ("status", re.compile(rf"^{_RG}{_DEP}/operationStatuses/(?P<op>[^/]+)$", re.I)),
    ("status", re.compile(rf"^{_SUB}{_DEP}/operationStatuses/(?P<op>[^/]+)$", re.I)),
    # DeploymentOperations_List at a resource group has no `providers/Microsoft.Resources` segment
    # (routes.tsp, DeploymentOperations_List); at a subscription it has.
    ("operations", re.compile(rf"^{_RG}/deployments/(?P<name>[^/]+)/operations$", re.I)),
    ("operations", re.compile(rf"^{_SUB}{_DEP}/operations$", re.I)),
    ("whatif-result", re.compile(rf"^{_SUB}/operationresults/(?P<op>[^/]+)$", re.I)),
    ("templatespec", re.compile(rf"^{_RG}/providers/microsoft\.resources/templatespecs/(?P<spec>[^/]+)/versions/"
                                r"(?P<version>[^/]+)$", re.I)),
]
FAULT_KINDS = {"deployment": "get", "status": "get", "cancel": "cancel", "operations": "operations",
               "whatif": "whatif", "whatif-result": "whatif", "templatespec": "templatespecs"}
KINDS = ("create", "get", "cancel", "operations", "whatif", "templatespecs")
FAULTS = ("throttle", "error", "timeout", "lost")
NAME = re.compile(r"^[-\w._()]+$")
"""Deployment names: `minLength: 1, maxLength: 64, pattern: ^[-\\w\\._\\(\\)]+$` (the spec)."""
SPEC_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Resources/"
                     r"templateSpecs/(?P<spec>[^/]+)/versions/(?P<version>[^/]+)$", re.I)
FINISHED = ("Succeeded", "Failed", "Canceled")
TEMPLATE_KEYS = {"$schema", "contentVersion", "apiProfile", "parameters", "variables", "functions", "resources",
                 "outputs", "metadata", "languageVersion", "definitions"}
RESOURCE_KEYS = {"type", "apiVersion", "name", "location", "properties", "tags", "sku", "kind", "dependsOn",
                 "condition", "comments", "identity", "zones", "plan", "metadata"}
PARAMETER_KEYS = {"type", "defaultValue", "allowedValues", "minValue", "maxValue", "minLength", "maxLength",
                  "metadata"}
OUTPUT_KEYS = {"type", "value", "condition", "metadata"}
TYPES = {"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool", "object": "Object",
         "secureobject": "SecureObject", "array": "Array"}
SECURE = ("securestring", "secureobject")
LIMITS = {"parameters": 256, "variables": 256, "resources": 800, "outputs": 64}
"""Template limits (learn.microsoft.com, azure-resource-manager/templates/best-practices, "Template limits")."""
FUNCTIONS = ("parameters", "variables", "concat", "resourceGroup", "subscription", "resourceId", "reference")
OPERATIONS_DOC = "Please see https://aka.ms/arm-deployment-operations for usage details."


class ArmError(Exception):
    """An answer in ARM's error shape: {"error": {"code", "message", "details"?}}."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str) -> ArmError:
    """Preflight template validation failure: 400 InvalidTemplate, message as ARM words it."""
    return ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{message}'.")


@dataclass
class ResourceGroup:
    subscription: str
    name: str
    location: str

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.name}"


@dataclass
class Resource:
    id: str
    type: str
    api_version: str
    location: str | None
    properties: Any
    tags: dict[str, Any] | None = None
    sku: Any = None
    kind: Any = None

    def body(self) -> dict[str, Any]:
        """The resource as what-if shows it before and after."""
        out: dict[str, Any] = {"id": self.id, "name": self.id.rsplit("/", 1)[-1], "type": self.type,
                               "apiVersion": self.api_version}
        for key, value in (("location", self.location), ("tags", self.tags), ("sku", self.sku),
                           ("kind", self.kind), ("properties", self.properties)):
            if value is not None:
                out[key] = copy.deepcopy(value)
        return out


@dataclass
class Operation:
    """One deployment operation (Microsoft.Resources `DeploymentOperation`)."""

    id: str
    resource: Resource
    operation: str
    """provisioningOperation: Create or Delete."""
    state: str = "Running"
    error: dict[str, Any] | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Plan:
    """What a template evaluates to at a scope: the resources it writes and its outputs."""

    resources: list[Resource]
    outputs: dict[str, dict[str, Any]]
    """name → {"type": "String", "value": …}; secure outputs have no value (they are not kept in the
    deployment history: learn.microsoft.com, bicep/outputs, "Secure outputs")."""
    parameters: dict[str, dict[str, Any]]
    """What the deployment echoes: name → {"type", "value"}; secure parameters without a value."""
    deletes: list[Resource]
    """Complete mode: resources of the resource group the template does not declare."""
    failing: dict[str, tuple[str, str]]
    """Resource id → (code, message) for resources whose type `fail_resource_type` made fail."""


@dataclass
class Deployment:
    id: str
    name: str
    subscription: str
    group: ResourceGroup | None
    location: str | None
    mode: str
    plan: Plan
    template_link: dict[str, Any] | None
    template_hash: str
    state: str = "Accepted"
    error: dict[str, Any] | None = None
    looks: int = 0
    started: float = field(default_factory=time.monotonic)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    correlation: str = field(default_factory=lambda: str(uuid.uuid4()))
    status_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    operations: list[Operation] = field(default_factory=list)


@dataclass
class WhatIf:
    subscription: str
    result: dict[str, Any]
    polls: int


class ArmDeploymentsEmulator(RestEmulator):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.deployment_polls = 2
        """How many looks (GETs of the deployment or of its operation status) a deployment stays Running for
        after it was Accepted; it completes at the next one. A large number holds it running."""
        self.deployment_seconds: float | None = None
        """If set, a deployment also completes once this many seconds passed, however few looks it had (ARM
        runs deployments by itself; the emulator notices at the next request about it); None: only looks
        move it on (deterministic tests)."""
        self.whatif_polls = 1
        """How many polls a what-if answers 202 (still running) before it gives its result."""
        self.retry_after = 0
        """The Retry-After (seconds) of long-running answers (ARM sends its own; 0 keeps tests fast)."""
        self.throttle_seconds = 2
        """The Retry-After of an injected 429."""
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.resource_groups: dict[tuple[str, str], ResourceGroup] = {}
        self.subscriptions: set[str] = set()
        self.resources: dict[str, Resource] = {}
        """Resource id → what deployments wrote there (the latest write)."""
        self.deployments: dict[tuple[str, str, str], Deployment] = {}
        self.template_specs: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.what_ifs: dict[str, WhatIf] = {}
        self._failing_types: dict[str, tuple[str, str]] = {}
        self._faults: dict[str, list[Fault]] = {kind: [] for kind in KINDS}
        self._lock = threading.RLock()

    # -- seeding and test hooks

    def add_resource_group(self, subscription_id: str, name: str, location: str = "westeurope") -> str:
        """A resource group deployments may target (ARM answers 404 ResourceGroupNotFound for others).
        Returns its id."""
        with self._lock:
            self.subscriptions.add(subscription_id.lower())
            group = ResourceGroup(subscription_id, name, _location(location))
            self.resource_groups[(subscription_id.lower(), name.lower())] = group
            return group.id

    def add_subscription(self, subscription_id: str) -> None:
        """A subscription for subscription-scope deployments (ARM answers 404 SubscriptionNotFound for others)."""
        with self._lock:
            self.subscriptions.add(subscription_id.lower())

    def add_template_spec(self, version_id: str, template: dict[str, Any], location: str = "westeurope") -> None:
        """A template spec version (`/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Resources/
        templateSpecs/{name}/versions/{version}`) holding `template` as its main template."""
        if SPEC_ID.match(version_id) is None:
            raise ValueError(f"{version_id!r} is not a template spec version id")
        with self._lock:
            self.template_specs[version_id.lower()] = {"template": copy.deepcopy(template), "id": version_id,
                                                       "location": _location(location)}

    def add_resource(self, resource_id: str, type: str, properties: Any, *, api_version: str = "2024-01-01",
                     location: str | None = "westeurope", tags: dict[str, Any] | None = None) -> None:
        """A resource that exists already (made outside any deployment)."""
        with self._lock:
            self.resources[resource_id] = Resource(resource_id, type, api_version, location,
                                                   copy.deepcopy(properties), tags)

    def fail_resource_type(self, resource_type: str, code: str = "BadRequest",
                           message: str = "The resource provider refused the request (emulated)") -> None:
        """Deployments that write a resource of this type fail: its operation ends Failed with this error,
        and the deployment with DeploymentFailed (ARM's envelope) and the resource's error in its details."""
        with self._lock:
            self._failing_types[resource_type.lower()] = (code, message)

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next `count` requests of `kind` misbehave. Kinds: create (PUT of a deployment), get (GET of a
        deployment or of its operation status), cancel, operations, whatif (the POST and its polls),
        templatespecs. Faults: `throttle` (429 with Retry-After), `error` (500 without doing anything),
        `timeout` (held `seconds`, default `timeout_seconds`, then answered), `lost` (done, then answered 500:
        the caller cannot tell whether it happened)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        with self._lock:
            self._faults[kind].append(Fault(fault, count, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            for faults in self._faults.values():
                faults.clear()

    def deployment(self, scope: str, name: str) -> Deployment | None:
        """The deployment `name` at `/subscriptions/{s}[/resourceGroups/{rg}]`, for tests to look at."""
        parts = scope.strip("/").split("/")
        key = (parts[1].lower(), parts[3].lower() if len(parts) > 3 else "", name.lower())
        with self._lock:
            return self.deployments.get(key)

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parsed.path)).rstrip("/")
        query = dict(parse_qsl(parsed.query, keep_blank_values=True))
        route, match = next(((r, m) for r, p in ROUTES if (m := p.match(path))), (None, None))
        kind = "create" if route == "deployment" and method == "PUT" else FAULT_KINDS.get(route or "")
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self.requests.append(Request(method, path, query, body, headers))
            fault = self._take_fault(kind)
        if fault is not None:
            if fault.fault == "timeout":
                self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            elif fault.fault == "throttle":
                return 429, ArmError(429, "TooManyRequests", "The request is being throttled (injected).").body(), \
                    {"Retry-After": str(self.throttle_seconds)}
            elif fault.fault == "error":
                return 500, ArmError(500, "InternalServerError", "An internal error occurred (injected).").body(), {}
        try:
            reply = self._route(method, route, match, query, body, headers, base)
        except ArmError as exc:
            reply = exc.status, exc.body(), {}
        if fault is not None and fault.fault == "lost":
            return 500, ArmError(500, "InternalServerError", "An internal error occurred after the request was "
                                 "carried out (injected).").body(), {}
        return reply

    def _take_fault(self, kind: str | None) -> Fault | None:
        if kind is None:
            return None
        queue = self._faults[kind]
        while queue and queue[0].count <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].count -= 1
        return queue[0]

    def _route(self, method: str, route: str | None, match: re.Match[str] | None, query: dict[str, str],
               body: Any, headers: dict[str, str], base: str) -> Reply:
        if route is None or match is None:
            raise ArmError(404, "NotFound", "The requested path is not emulated.")
        if not _bearer(headers):
            # ARM refuses requests without a token before anything else.
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                                        "missing.")
        versions = TEMPLATE_SPEC_API_VERSIONS if route == "templatespec" else API_VERSIONS
        version = query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in versions:
            raise ArmError(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The "
                                                              f"supported versions are '{','.join(versions)}'.")
        groups = match.groupdict()
        with self._lock:
            if route == "templatespec":
                return self._template_spec(method, groups)
            if route == "whatif-result":
                return self._whatif_result(method, groups, version, base)
            sub = groups["sub"]
            rg = groups.get("rg")
            name = _check_name(groups["name"])
            if sub.lower() not in self.subscriptions:
                raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
            group = self._group(sub, rg) if rg is not None else None
            key = (sub.lower(), rg.lower() if rg else "", name.lower())
            if route == "deployment":
                if method == "PUT":
                    return self._create(sub, group, name, key, body, version, base)
                if method in ("GET", "HEAD"):
                    dep = self._found(key, name)
                    if method == "HEAD":
                        return 204, None, {}
                    self._look(dep)
                    return 200, _deployment_body(dep), {}
                raise ArmError(405, "MethodNotAllowed", f"{method} is not emulated on deployments.")
            if route == "status" and method == "GET":
                dep = self._found(key, name)
                if dep.status_id != groups["op"]:
                    raise ArmError(404, "NotFound", "The operation could not be found.")
                self._look(dep)
                status: dict[str, Any] = {"status": dep.state}
                if dep.error:
                    status["error"] = dep.error
                return 200, status, {"Retry-After": str(self.retry_after)} if dep.state not in FINISHED else {}
            if route == "cancel" and method == "POST":
                return self._cancel(self._found(key, name))
            if route == "operations" and method == "GET":
                dep = self._found(key, name)
                return 200, {"value": [_operation_body(op, dep) for op in dep.operations]}, {}
            if route == "whatif" and method == "POST":
                return self._what_if(sub, group, name, body, version, base)
        raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed here.")

    def _group(self, sub: str, rg: str) -> ResourceGroup:
        group = self.resource_groups.get((sub.lower(), rg.lower()))
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return group

    def _found(self, key: tuple[str, str, str], name: str) -> Deployment:
        dep = self.deployments.get(key)
        if dep is None:
            raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return dep

    # -- create

    def _create(self, sub: str, group: ResourceGroup | None, name: str, key: tuple[str, str, str], body: Any,
                version: str, base: str) -> Reply:
        existing = self.deployments.get(key)
        if existing is not None:
            self._look(existing, advance=False)
            if existing.state not in FINISHED:
                # learn.microsoft.com, troubleshooting/common-deployment-errors: DeploymentActiveAndUneditable,
                # "Wait for concurrent deployment to this resource group to complete."
                raise ArmError(409, "DeploymentActiveAndUneditable",
                               f"Unable to edit or replace deployment '{name}': previous deployment from "
                               f"'{existing.at.isoformat()}' is still active. Please see https://aka.ms/arm-deploy "
                               f"for usage details.")
        properties, location = self._request(body, group)
        if group is None and existing is not None and existing.location != location:
            # common-deployment-errors: InvalidDeploymentLocation, "you've provided a different location for a
            # previously used deployment name" (subscription scope).
            raise ArmError(400, "InvalidDeploymentLocation",
                           f"Invalid deployment location '{location}'. The deployment '{name}' already exists in "
                           f"location '{existing.location}'.")
        template, link = self._template(properties, group)
        plan = self._plan(template, properties, sub, group)
        scope = group.id if group else f"/subscriptions/{sub}"
        dep = Deployment(id=f"{scope}/providers/Microsoft.Resources/deployments/{name}", name=name, subscription=sub,
                         group=group, location=location, mode=properties["mode"], plan=plan, template_link=link,
                         template_hash=str(int(hashlib.sha256(json.dumps(template, sort_keys=True).encode())
                                               .hexdigest()[:15], 16)))
        self.deployments[key] = dep
        headers = {"Azure-AsyncOperation": f"{base}{dep.id}/operationStatuses/{dep.status_id}?api-version={version}",
                   "Retry-After": str(self.retry_after)}
        return (200 if existing is not None else 201), _deployment_body(dep), headers

    def _request(self, body: Any, group: ResourceGroup | None) -> tuple[dict[str, Any], str | None]:
        """The request's `properties` and location, checked as the spec's `Deployment` (resource group) and
        `ScopedDeployment` (subscription: location required) say."""
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                                         "deserialized: the body must be a JSON object.")
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                                         "deserialized: 'Required property 'properties' not found'.")
        if properties.get("mode") not in ("Incremental", "Complete"):
            raise ArmError(400, "InvalidRequestContent", f"The request content was invalid: 'mode' must be "
                                                         f"'Incremental' or 'Complete', not "
                                                         f"{properties.get('mode')!r}.")
        location = body.get("location")
        if group is None:
            if not location:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            if properties["mode"] == "Complete":
                # Complete mode deletes resources of a resource group: it has no meaning at a subscription
                # (learn.microsoft.com, templates/deploy-to-subscription: deployments there are incremental).
                raise ArmError(400, "InvalidDeploymentMode", "Complete mode is only supported for deployments at "
                                                             "resource group scope.")
        if location is not None and not isinstance(location, str):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'location' must be a "
                                                         "string.")
        if ("template" in properties) == ("templateLink" in properties):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: use either the "
                                                         "templateLink property or the template property, one of "
                                                         "them and not both.")
        if "parametersLink" in properties:
            raise ArmError(400, "InvalidRequestContent", "parametersLink is not emulated: pass `parameters`.")
        params = properties.get("parameters") or {}
        if not isinstance(params, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'parameters' must be "
                                                         "an object.")
        for pname, value in params.items():
            if not isinstance(value, dict) or set(value) - {"value", "reference", "expression"}:
                raise ArmError(400, "InvalidRequestContent", f"The request content was invalid: parameter "
                                                             f"'{pname}' must be {{\"value\": …}}.")
            if "value" not in value:
                raise ArmError(400, "InvalidRequestContent", f"Parameter '{pname}': only literal values are "
                                                             f"emulated (no Key Vault references or expressions).")
        return properties, _location(location) if isinstance(location, str) else None

    def _template(self, properties: dict[str, Any], group: ResourceGroup | None
                  ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if "template" in properties:
            template = properties["template"]
            if isinstance(template, str):  # "It can be a JObject or well-formed JSON string." (the spec)
                try:
                    template = json.loads(template)
                except ValueError:
                    raise invalid("The template is not valid JSON") from None
            if not isinstance(template, dict):
                raise invalid("The template must be a JSON object")
            return template, None
        link = properties["templateLink"]
        if not isinstance(link, dict) or ("id" in link) == ("uri" in link):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: templateLink needs "
                                                         "either the uri or the id property, not both.")
        if "id" in link:
            spec = self.template_specs.get(str(link["id"]).lower())
            if spec is None:
                m = SPEC_ID.match(str(link["id"]))
                what = f"Microsoft.Resources/templateSpecs/{m['spec']}/versions/{m['version']}" if m else link["id"]
                raise ArmError(404, "ResourceNotFound", f"The Resource '{what}' under resource group "
                                                        f"'{m['rg'] if m else '?'}' was not found.")
            return copy.deepcopy(spec["template"]), {"id": spec["id"], "contentVersion":
                                                     spec["template"].get("contentVersion", "1.0.0.0")}
        return self._fetch(str(link["uri"])), {"uri": link["uri"]}

    def _fetch(self, uri: str) -> dict[str, Any]:
        parsed = urlparse(uri)
        # ARM downloads linked templates itself. Slipway's emulator refuses anything but https, except plain
        # http from 127.0.0.1, which exists only so that tests can serve a template from a local server.
        if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname == "127.0.0.1"):
            raise ArmError(400, "InvalidContentLink", f"The provided content link '{uri}' is invalid or not "
                                                      f"supported: the link must use https.")
        try:
            response = httpx.get(uri, timeout=10)
        except httpx.HTTPError as exc:
            raise ArmError(400, "InvalidContentLink", f"Unable to download deployment content from '{uri}': "
                                                      f"{exc}.") from exc
        if response.status_code != 200:
            raise ArmError(400, "InvalidContentLink", f"Unable to download deployment content from '{uri}'. The "
                                                      f"download answered {response.status_code}.")
        try:
            template = response.json()
        except ValueError:
            raise invalid(f"The content at '{uri}' is not valid JSON") from None
        if not isinstance(template, dict):
            raise invalid(f"The content at '{uri}' is not a JSON object")
        return template

    def _plan(self, template: dict[str, Any], properties: dict[str, Any], sub: str,
              group: ResourceGroup | None) -> Plan:
        given = {k: v["value"] for k, v in (properties.get("parameters") or {}).items()}
        ev = Evaluator(template, given, sub, group, self._lookup)
        resources = ev.resources()
        outputs = ev.outputs()
        failing = {r.id: self._failing_types[r.type.lower()] for r in resources
                   if r.type.lower() in self._failing_types}
        deletes: list[Resource] = []
        if properties["mode"] == "Complete" and group is not None:
            declared = [r.id.lower() for r in resources]
            deletes = [r for r in self.resources.values() if _in_group(r.id, group)
                       and r.id.lower() not in declared and not any(r.id.lower().startswith(d + "/")
                                                                    for d in declared)]
        return Plan(resources, outputs, ev.echo(), deletes, failing)

    def _lookup(self, resource_id: str) -> Resource | None:
        found = [r for rid, r in self.resources.items() if rid.lower() == resource_id.lower()]
        return found[0] if found else None

    # -- progress

    def _look(self, dep: Deployment, advance: bool = True) -> None:
        """Someone looked at the deployment: it moves on (see `deployment_polls`)."""
        if dep.state in FINISHED:
            return
        if advance:
            dep.looks += 1
        timed_out = self.deployment_seconds is not None and \
            time.monotonic() - dep.started >= self.deployment_seconds
        if dep.looks == 0 and not timed_out:
            return
        if dep.state == "Accepted":
            dep.state = "Running"
            dep.operations = [Operation(uuid.uuid4().hex[:16].upper(), r, "Create") for r in dep.plan.resources]
        total = len(dep.plan.resources)
        if dep.looks > self.deployment_polls or timed_out:
            self._finish(dep)
            return
        done = total * (dep.looks - 1) // max(1, self.deployment_polls)
        for op in dep.operations[:done]:
            self._complete(dep, op)

    def _complete(self, dep: Deployment, op: Operation) -> None:
        if op.state != "Running":
            return
        op.at = datetime.now(UTC)
        failure = dep.plan.failing.get(op.resource.id)
        if failure is not None:
            op.state = "Failed"
            op.error = {"code": failure[0], "message": failure[1]}
            return
        op.state = "Succeeded"
        if op.operation == "Delete":
            for rid in [rid for rid in self.resources if rid.lower() == op.resource.id.lower()]:
                del self.resources[rid]
            return
        for rid in [rid for rid in self.resources if rid.lower() == op.resource.id.lower()]:
            del self.resources[rid]
        self.resources[op.resource.id] = copy.deepcopy(op.resource)
        if op.resource.type.lower() == "microsoft.resources/resourcegroups":
            name = op.resource.id.rsplit("/", 1)[-1]
            self.resource_groups[(dep.subscription.lower(), name.lower())] = ResourceGroup(
                dep.subscription, name, op.resource.location or "")

    def _finish(self, dep: Deployment) -> None:
        for op in dep.operations:
            self._complete(dep, op)
        failed = [op for op in dep.operations if op.state == "Failed"]
        if not failed:  # Complete mode deletes only after everything else deployed
            for resource in dep.plan.deletes:
                op = Operation(uuid.uuid4().hex[:16].upper(), resource, "Delete")
                dep.operations.append(op)
                self._complete(dep, op)
        dep.ended = datetime.now(UTC)
        if failed:
            dep.state = "Failed"
            dep.error = {"code": "DeploymentFailed", "message": f"At least one resource deployment operation "
                                                                f"failed. Please list deployment operations for "
                                                                f"details. {OPERATIONS_DOC}",
                         "details": [{**op.error, "target": op.resource.id} for op in failed if op.error]}
        else:
            dep.state = "Succeeded"

    def _cancel(self, dep: Deployment) -> Reply:
        self._look(dep, advance=False)
        if dep.state in FINISHED:
            # "You can cancel a deployment only if the provisioningState is Accepted or Running." (the spec,
            # Deployments_Cancel); ARM's code for the refusal is DeploymentCannotBeCancelled.
            raise ArmError(409, "DeploymentCannotBeCancelled", f"The deployment '{dep.name}' cannot be cancelled: "
                                                               f"its provisioning state is '{dep.state}'.")
        dep.state = "Canceled"
        dep.ended = datetime.now(UTC)
        for op in dep.operations:
            if op.state == "Running":
                op.state, op.at = "Canceled", datetime.now(UTC)
        return 204, None, {}

    # -- what-if

    def _what_if(self, sub: str, group: ResourceGroup | None, name: str, body: Any, version: str,
                 base: str) -> Reply:
        properties, _ = self._request(body, group)
        template, _ = self._template(properties, group)
        plan = self._plan(template, properties, sub, group)
        ids_only = ((properties.get("whatIfSettings") or {}).get("resultFormat") == "ResourceIdOnly")
        changes: list[dict[str, Any]] = []
        for resource in plan.resources:
            before = self._lookup(resource.id)
            after = resource.body()
            change: dict[str, Any] = {"resourceId": resource.id}
            if before is None:
                change.update(changeType="Create", after=after)
            else:
                delta = _delta(_comparable(before.body()), _comparable(after))
                change.update(changeType="Modify" if delta else "NoChange", before=before.body(), after=after)
                if delta:
                    change["delta"] = delta
            changes.append(change)
        declared = {r.id.lower() for r in plan.resources}
        if group is not None:
            for resource in self.resources.values():
                if not _in_group(resource.id, group) or resource.id.lower() in declared:
                    continue
                if any(resource.id.lower() == d.id.lower() for d in plan.deletes):
                    changes.append({"resourceId": resource.id, "changeType": "Delete", "before": resource.body()})
                else:  # Incremental mode leaves it alone: what-if says Ignore (the spec's ChangeType).
                    changes.append({"resourceId": resource.id, "changeType": "Ignore", "before": resource.body()})
        if ids_only:
            changes = [{"resourceId": c["resourceId"], "changeType": c["changeType"]} for c in changes]
        token = uuid.uuid4().hex
        self.what_ifs[token] = WhatIf(sub, {"status": "Succeeded", "properties": {"changes": changes}},
                                      self.whatif_polls)
        return 202, None, {"Location": f"{base}/subscriptions/{sub}/operationresults/{token}?api-version={version}",
                           "Retry-After": str(self.retry_after)}

    def _whatif_result(self, method: str, groups: dict[str, str], version: str, base: str) -> Reply:
        found = self.what_ifs.get(groups["op"])
        if method != "GET" or found is None or found.subscription.lower() != groups["sub"].lower():
            raise ArmError(404, "NotFound", "The operation result could not be found.")
        if found.polls > 0:
            found.polls -= 1
            return 202, None, {"Location": f"{base}/subscriptions/{groups['sub']}/operationresults/{groups['op']}"
                                           f"?api-version={version}", "Retry-After": str(self.retry_after)}
        return 200, found.result, {}

    # -- template specs

    def _template_spec(self, method: str, groups: dict[str, str]) -> Reply:
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", "Only GET of template spec versions is emulated; seed them "
                                                    "with add_template_spec.")
        version_id = (f"/subscriptions/{groups['sub']}/resourceGroups/{groups['rg']}/providers/Microsoft.Resources/"
                      f"templateSpecs/{groups['spec']}/versions/{groups['version']}")
        spec = self.template_specs.get(version_id.lower())
        if spec is None:
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Resources/templateSpecs/"
                                                    f"{groups['spec']}/versions/{groups['version']}' under resource "
                                                    f"group '{groups['rg']}' was not found.")
        return 200, {"id": spec["id"], "name": groups["version"], "type": "Microsoft.Resources/templateSpecs/versions",
                     "location": spec["location"], "properties": {"mainTemplate": spec["template"]}}, {}


# -- the template language


class Evaluator:
    """Evaluates one template at one scope, strictly, for the subset the module docstring lists.

    Expressions are whole JSON strings in brackets (`"[concat('a', parameters('b'))]"`; `"[[x]"` is the
    literal `[x]`), with functions called by name (case-insensitive), single-quoted strings (`''` for a
    quote), integers, `.property` and `[index]`. Everything is evaluated before the deployment starts;
    `reference(id)` gives the properties of a resource that exists already or that the template declares
    earlier."""

    def __init__(self, template: dict[str, Any], given: dict[str, Any], subscription: str,
                 group: ResourceGroup | None, lookup: Callable[[str], Resource | None]) -> None:
        self.template, self.given, self.subscription, self.group, self.lookup = \
            template, given, subscription, group, lookup
        self._check_shape()
        self.declared_params: dict[str, Any] = template.get("parameters") or {}
        self.declared_vars: dict[str, Any] = template.get("variables") or {}
        self.params: dict[str, Any] = {}
        self.vars: dict[str, Any] = {}
        self._busy: set[str] = set()
        self.declared: list[Resource] = []
        self._where = ""
        self._in_parameters = False
        self._check_parameters()

    def _check_shape(self) -> None:
        t = self.template
        for key in t:
            if key not in TEMPLATE_KEYS:
                raise invalid(f"Could not find member '{key}' on object of type 'Template'")
        for required in ("$schema", "contentVersion", "resources"):
            if required not in t:
                raise invalid(f"Required property '{required}' not found in JSON. Path ''")
        if t.get("languageVersion") is not None or not isinstance(t["resources"], list):
            raise invalid("Only languageVersion 1.0 templates (resources as an array) are emulated")
        if t.get("functions"):
            raise invalid("User-defined functions are not emulated")
        for section, limit in LIMITS.items():
            if len(t.get(section) or ()) > limit:
                raise invalid(f"The number of template {section} ({len(t[section])}) exceeds the limit of {limit}")
        for section in ("parameters", "variables", "outputs"):
            if not isinstance(t.get(section) or {}, dict):
                raise invalid(f"The template '{section}' must be an object")

    def _check_parameters(self) -> None:
        unknown = [name for name in self.given if name not in self.declared_params]
        if unknown:
            raise invalid(f"The template parameters '{', '.join(unknown)}' in the parameters file are not valid; they "
                          f"are not present in the original template and can therefore not be provided at "
                          f"deployment time. The only supported parameters for this template are "
                          f"'{', '.join(self.declared_params)}'")
        for name in self.declared_params:
            self.parameter(name)

    def parameter(self, name: str) -> Any:
        key = next((k for k in self.declared_params if k.lower() == name.lower()), None)
        if key is None:
            raise invalid(f"The template parameter '{name}' is not found. Please see https://aka.ms/arm-syntax-"
                          f"parameters for usage details")
        if key in self.params:
            return self.params[key]
        spec = self.declared_params[key]
        if not isinstance(spec, dict) or set(spec) - PARAMETER_KEYS:
            extra = sorted(set(spec) - PARAMETER_KEYS) if isinstance(spec, dict) else []
            raise invalid(f"The template parameter '{key}' is not valid" + (f": unknown member '{extra[0]}'"
                                                                            if extra else ""))
        kind = str(spec.get("type", "")).lower()
        if kind not in TYPES:
            raise invalid(f"The template parameter '{key}' has type '{spec.get('type')}', which is not one of "
                          f"{', '.join(TYPES.values())}")
        if ("p:" + key) in self._busy:
            raise invalid(f"The template parameter '{key}' refers to itself through its default value")
        if key in self.given:
            value = self.given[key]
        elif "defaultValue" in spec:
            self._busy.add("p:" + key)
            saved = self._in_parameters, self._where
            self._in_parameters, self._where = True, f"parameters.{key}.defaultValue"
            try:
                value = self.value(spec["defaultValue"])
            finally:
                self._in_parameters, self._where = saved
                self._busy.discard("p:" + key)
        else:
            # ARM's preflight message for a parameter without a value (seen in deployments' error output).
            raise invalid(f"The value for the template parameter '{key}' at line '1' and column '1' is not provided. "
                          f"Please see https://aka.ms/arm-create-parameter-file for usage details")
        if not _typed(value, kind):
            raise invalid(f"Template parameter '{key}': JToken type is not valid. Expected '{TYPES[kind]}'. Actual "
                          f"'{_type_name(value)}'. Please see https://aka.ms/arm-create-parameter-file for usage "
                          f"details")
        allowed = spec.get("allowedValues")
        if allowed is not None and not (value in allowed or (isinstance(value, list) and all(v in allowed
                                                                                            for v in value))):
            raise invalid(f"The provided value '{value}' for the template parameter '{key}' at line '1' and column "
                          f"'1' is not valid. The parameter value is not part of the allowed value(s): "
                          f"'{','.join(str(a) for a in allowed)}'")
        if kind == "int":
            if "minValue" in spec and value < spec["minValue"] or "maxValue" in spec and value > spec["maxValue"]:
                raise invalid(f"The provided value '{value}' for the template parameter '{key}' is not valid: it "
                              f"must be between {spec.get('minValue', '-inf')} and {spec.get('maxValue', 'inf')}")
        if kind in ("string", "securestring", "array"):
            if "minLength" in spec and len(value) < spec["minLength"] or \
                    "maxLength" in spec and len(value) > spec["maxLength"]:
                shown = "(secure)" if kind in SECURE else f"'{value}'"
                raise invalid(f"The provided value {shown} for the template parameter '{key}' is not valid: its "
                              f"length must be between {spec.get('minLength', 0)} and {spec.get('maxLength', 'any')}")
        self.params[key] = value
        return value

    def variable(self, name: str) -> Any:
        if self._in_parameters:
            raise invalid(f"The template function 'variables' is not expected at this location ({self._where})")
        key = next((k for k in self.declared_vars if k.lower() == name.lower()), None)
        if key is None:
            raise invalid(f"The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-"
                          f"variables for usage details")
        if key in self.vars:
            return self.vars[key]
        if ("v:" + key) in self._busy:
            raise invalid(f"The template variable '{key}' refers to itself")
        if key == "copy":
            raise invalid("Variable copy loops are not emulated")
        self._busy.add("v:" + key)
        saved = self._where
        self._where = f"variables.{key}"
        try:
            self.vars[key] = self.value(self.declared_vars[key])
        finally:
            self._where = saved
            self._busy.discard("v:" + key)
        return self.vars[key]

    def resources(self) -> list[Resource]:
        for name in self.declared_vars:
            self.variable(name)
        seen: set[str] = set()
        for index, spec in enumerate(self.template["resources"]):
            self._where = f"resources[{index}]"
            if not isinstance(spec, dict):
                raise invalid(f"The template resource at {self._where} must be an object")
            for key in spec:
                if key not in RESOURCE_KEYS:
                    what = {"copy": "copy loops", "resources": "nested child resources", "scope": "scope",
                            "existing": "existing resources"}.get(key)
                    raise invalid(f"The template resource at {self._where}: " + (f"{what} are not emulated"
                                  if what else f"could not find member '{key}' on object of type 'TemplateResource'"))
            for required in ("type", "apiVersion", "name"):
                if required not in spec:
                    raise invalid(f"Required property '{required}' not found in JSON. Path '{self._where}'")
            if "condition" in spec:
                condition = self.value(spec["condition"])
                if not isinstance(condition, bool):
                    raise invalid(f"The template resource at {self._where} has a condition that is not a boolean")
                if not condition:
                    continue
            rtype, name, api = self.value(spec["type"]), self.value(spec["name"]), self.value(spec["apiVersion"])
            if not all(isinstance(v, str) for v in (rtype, name, api)):
                raise invalid(f"The template resource at {self._where}: type, name and apiVersion must be strings")
            if not re.match(r"^\d{4}-\d{2}-\d{2}(-[a-z]+)?$", api):
                raise invalid(f"The resource at {self._where} has an invalid apiVersion '{api}'")
            if rtype.lower() == "microsoft.resources/deployments":
                raise invalid(f"Nested deployments ({self._where}) are not emulated")
            resource_id = self._resource_id(rtype, name)
            if resource_id.lower() in seen:
                raise invalid(f"The resource '{resource_id}' at line '1' and column '1' is defined multiple times in "
                              f"a template. Please see https://aka.ms/arm-template/#resources for usage details")
            seen.add(resource_id.lower())
            self.value(spec.get("dependsOn", []))  # evaluated so that unsupported expressions are refused
            location = self.value(spec["location"]) if "location" in spec else None
            if rtype.lower() == "microsoft.resources/resourcegroups" and not location:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            resource = Resource(resource_id, rtype, api, _location(location) if isinstance(location, str) else None,
                                self.value(spec["properties"]) if "properties" in spec else None,
                                self.value(spec["tags"]) if "tags" in spec else None,
                                self.value(spec["sku"]) if "sku" in spec else None,
                                self.value(spec["kind"]) if "kind" in spec else None)
            self.declared.append(resource)
        self._where = ""
        return self.declared

    def _resource_id(self, rtype: str, name: str) -> str:
        segments = rtype.split("/")
        names = name.split("/")
        if len(segments) < 2 or not all(segments) or "." not in segments[0]:
            raise invalid(f"The template resource '{name}' at {self._where} has an invalid type '{rtype}'")
        if len(names) != len(segments) - 1 or not all(names):
            # learn.microsoft.com, troubleshooting/error-invalid-template, "Incorrect segment lengths".
            raise invalid(f"The template resource '{name}' for type '{rtype}' at {self._where} has incorrect segment "
                          f"lengths. A nested resource type must have identical number of segments as its resource "
                          f"name")
        if self.group is None and rtype.lower() == "microsoft.resources/resourcegroups":
            return f"/subscriptions/{self.subscription}/resourceGroups/{name}"
        if self.group is not None and rtype.lower() == "microsoft.resources/resourcegroups":
            raise invalid(f"The resource type '{rtype}' at {self._where} can only be deployed at subscription scope")
        return self._id(self.subscription, self.group.name if self.group else None, rtype, names)

    @staticmethod
    def _id(sub: str, rg: str | None, rtype: str, names: list[str]) -> str:
        segments = rtype.split("/")
        path = "/".join(f"{t}/{n}" for t, n in zip(segments[1:], names, strict=True))
        scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")
        return f"{scope}/providers/{segments[0]}/{path}"

    def outputs(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, spec in (self.template.get("outputs") or {}).items():
            self._where = f"outputs.{name}"
            if not isinstance(spec, dict) or set(spec) - OUTPUT_KEYS:
                extra = sorted(set(spec) - OUTPUT_KEYS) if isinstance(spec, dict) else []
                raise invalid(f"The template output '{name}' is not valid" + (f": '{extra[0]}' is not emulated"
                                                                              if extra else ""))
            kind = str(spec.get("type", "")).lower()
            if kind not in TYPES or "value" not in spec:
                raise invalid(f"The template output '{name}' needs a type ({', '.join(TYPES.values())}) and a value")
            if "condition" in spec and self.value(spec["condition"]) is not True:
                continue
            value = self.value(spec["value"])
            if not _typed(value, kind):
                raise invalid(f"The template output '{name}' is not valid: Template output JToken type is not valid. "
                              f"Expected '{TYPES[kind]}'. Actual '{_type_name(value)}'")
            out[name] = {"type": TYPES[kind]} if kind in SECURE else {"type": TYPES[kind], "value": value}
        self._where = ""
        return out

    def echo(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, value in self.params.items():
            kind = str(self.declared_params[name].get("type")).lower()
            out[name] = {"type": TYPES[kind]} if kind in SECURE else {"type": TYPES[kind], "value": value}
        return out

    # -- values and expressions

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, str) and node.startswith("[") and node.endswith("]"):
            if node.startswith("[["):
                return node[1:]
            return self.expression(node[1:-1])
        return node

    def expression(self, text: str) -> Any:
        tokens = _tokens(text, self._where)
        parser = _Parser(tokens, text, self._where)
        tree = parser.expression()
        parser.end()
        return self._eval(tree, text)

    def _eval(self, node: tuple[Any, ...], text: str) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "member":
            target = self._eval(node[1], text)
            if not isinstance(target, dict):
                raise invalid(f"The language expression '{text}' at {self._where or 'the template'} is not valid: "
                              f"property '{node[2]}' of a value that is not an object")
            key = next((k for k in target if k.lower() == node[2].lower()), None)
            if key is None:
                raise invalid(f"The language expression property '{node[2]}' doesn't exist, available properties "
                              f"are '{', '.join(target)}' ('{text}' at {self._where or 'the template'})")
            return target[key]
        if kind == "index":
            target, index = self._eval(node[1], text), self._eval(node[2], text)
            if isinstance(target, list) and isinstance(index, int) and not isinstance(index, bool):
                if not 0 <= index < len(target):
                    raise invalid(f"The language expression '{text}' at {self._where}: index {index} is out of "
                                  f"range")
                return target[index]
            if isinstance(target, dict) and isinstance(index, str):
                return self._eval(("member", ("lit", target), index), text)
            raise invalid(f"The language expression '{text}' at {self._where}: cannot index this value")
        name, args = node[1], [self._eval(a, text) for a in node[2]]
        return self._call(name, args, text)

    def _call(self, name: str, args: list[Any], text: str) -> Any:
        fn = name.lower()
        where = self._where or "the template"

        def need(count: int | tuple[int, int]) -> None:
            low, high = (count, count) if isinstance(count, int) else count
            if not low <= len(args) <= high:
                raise invalid(f"The template language function '{name}' in '{text}' at {where} takes "
                              f"{low if low == high else f'{low} to {high}'} argument(s), not {len(args)}")

        if fn == "parameters":
            need(1)
            return copy.deepcopy(self.parameter(_str(args[0], name, text, where)))
        if fn == "variables":
            need(1)
            return copy.deepcopy(self.variable(_str(args[0], name, text, where)))
        if fn == "concat":
            if not args:
                need((1, 10**6))
            if all(isinstance(a, str) for a in args):
                return "".join(args)
            if all(isinstance(a, list) for a in args):
                return [v for a in args for v in a]
            raise invalid(f"The template language function 'concat' in '{text}' at {where} expects all strings or "
                          f"all arrays (this emulator's subset)")
        if fn == "resourcegroup":
            need(0)
            if self.group is None:
                raise invalid(f"The template function 'RESOURCEGROUP' is not expected at this location ('{text}' at "
                              f"{where}): the deployment is at subscription scope")
            return {"id": self.group.id, "name": self.group.name, "type": "Microsoft.Resources/resourceGroups",
                    "location": self.group.location, "properties": {"provisioningState": "Succeeded"}}
        if fn == "subscription":
            need(0)
            return {"id": f"/subscriptions/{self.subscription}", "subscriptionId": self.subscription}
        if fn == "resourceid":
            return self._resource_id_fn(args, text, where)
        if fn == "reference":
            if self._in_parameters:
                raise invalid(f"The template function 'reference' is not expected at this location ('{text}' at "
                              f"{where}): a parameter's default value cannot read resources")
            need((1, 3))
            target = _str(args[0], name, text, where)
            if not target.startswith("/"):
                target = next((r.id for r in self.declared if r.id.rsplit("/", 1)[-1].lower() == target.lower()),
                              target)
            found = next((r for r in reversed(self.declared) if r.id.lower() == target.lower()), None) or \
                self.lookup(target)
            if found is None:
                raise invalid(f"The resource '{target}' referenced by '{text}' at {where} is not defined in the "
                              f"template and does not exist")
            props = copy.deepcopy(found.properties) if isinstance(found.properties, dict) else {}
            props.setdefault("provisioningState", "Succeeded")
            if len(args) == 3 and str(args[2]).lower() == "full":
                return {**found.body(), "properties": props}
            return props
        raise invalid(f"The template language expression '{text}' at {where} uses the function '{name}', which this "
                      f"emulator does not evaluate. Supported: {', '.join(FUNCTIONS)}")

    def _resource_id_fn(self, args: list[Any], text: str, where: str) -> str:
        if not all(isinstance(a, str) for a in args):
            raise invalid(f"The arguments of 'resourceId' in '{text}' at {where} must be strings")
        at = next((i for i, a in enumerate(args) if "/" in a and "." in a.split("/")[0]), None)
        if at is None or at > 2:
            raise invalid(f"'{text}' at {where}: resourceId needs a resource type (Namespace/type) as its first, "
                          f"second or third argument")
        sub = args[0] if at == 2 else self.subscription
        rg = args[at - 1] if at >= 1 else (self.group.name if self.group else None)
        rtype, names = args[at], args[at + 1:]
        if len(names) != len(rtype.split("/")) - 1:
            raise invalid(f"Unable to evaluate template language function 'resourceId' in '{text}' at {where}: the "
                          f"type '{rtype}' requires {len(rtype.split('/')) - 1} resource name argument(s)")
        return self._id(sub, rg, rtype, list(names))


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<punct>[().,\[\]]))")


def _tokens(text: str, where: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    at = 0
    text = text.rstrip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise invalid(f"The template language expression '{text}' at {where or 'the template'} is not valid: "
                          f"unexpected character at position {at}")
        at = m.end()
        if m["str"] is not None:
            out.append(("str", m["str"][1:-1].replace("''", "'")))
        elif m["num"] is not None:
            out.append(("num", int(m["num"])))
        elif m["name"] is not None:
            out.append(("name", m["name"]))
        else:
            out.append(("punct", m["punct"]))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], text: str, where: str) -> None:
        self.tokens, self.text, self.where, self.at = tokens, text, where or "the template", 0

    def _fail(self, why: str) -> ArmError:
        return invalid(f"The template language expression '{self.text}' at {self.where} is not valid: {why}")

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, kind: str, value: Any = None) -> Any:
        token = self._peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise self._fail(f"expected {value or kind}")
        self.at += 1
        return token[1]

    def expression(self) -> tuple[Any, ...]:
        token = self._peek()
        if token is None:
            raise self._fail("empty expression")
        node: tuple[Any, ...]
        if token[0] in ("str", "num"):
            self.at += 1
            node = ("lit", token[1])
        elif token[0] == "name":
            name = self._take("name")
            self._take("punct", "(")
            args: list[tuple[Any, ...]] = []
            if self._peek() != ("punct", ")"):
                args.append(self.expression())
                while self._peek() == ("punct", ","):
                    self.at += 1
                    args.append(self.expression())
            self._take("punct", ")")
            node = ("call", name, args)
        else:
            raise self._fail(f"unexpected '{token[1]}'")
        while (token := self._peek()) in (("punct", "."), ("punct", "[")):
            self.at += 1
            if token == ("punct", "."):
                node = ("member", node, self._take("name"))
            else:
                node = ("index", node, self.expression())
                self._take("punct", "]")
        return node

    def end(self) -> None:
        if self._peek() is not None:
            raise self._fail(f"unexpected '{self._peek()[1]}'")  # type: ignore[index]


def _str(value: Any, fn: str, text: str, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"The template language function '{fn}' in '{text}' at {where} expects a string argument")
    return value


def _typed(value: Any, kind: str) -> bool:
    if kind in ("string", "securestring"):
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("object", "secureobject"):
        return isinstance(value, dict)
    return isinstance(value, list)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    return {str: "String", int: "Integer", float: "Float", dict: "Object", list: "Array"}.get(type(value), "Null")


# -- bodies and helpers


def _deployment_body(dep: Deployment) -> dict[str, Any]:
    """`DeploymentExtended` as the spec defines it."""
    props: dict[str, Any] = {
        "provisioningState": dep.state, "correlationId": dep.correlation, "timestamp": _iso(dep.ended or dep.at),
        "duration": f"PT{((dep.ended or datetime.now(UTC)) - dep.at).total_seconds():.3f}S", "mode": dep.mode,
        "parameters": copy.deepcopy(dep.plan.parameters), "providers": [], "dependencies": [],
        "templateHash": dep.template_hash}
    if dep.template_link:
        props["templateLink"] = dict(dep.template_link)
    if dep.state == "Succeeded":
        props["outputs"] = copy.deepcopy(dep.plan.outputs)
        props["outputResources"] = [{"id": r.id} for r in dep.plan.resources]
    if dep.error:
        props["error"] = copy.deepcopy(dep.error)
    body: dict[str, Any] = {"id": dep.id, "name": dep.name, "type": "Microsoft.Resources/deployments",
                            "properties": props}
    if dep.location:
        body["location"] = dep.location
    return body


def _operation_body(op: Operation, dep: Deployment) -> dict[str, Any]:
    """`DeploymentOperation` as the spec defines it."""
    name = op.resource.id.rsplit("/", 1)[-1]
    props: dict[str, Any] = {
        "provisioningOperation": op.operation, "provisioningState": op.state, "timestamp": _iso(op.at),
        "duration": "PT1S", "serviceRequestId": str(uuid.uuid4()),
        "targetResource": {"id": op.resource.id, "resourceType": op.resource.type, "resourceName": name,
                           "apiVersion": op.resource.api_version}}
    if op.state in ("Succeeded", "Failed"):
        props["statusCode"] = "BadRequest" if op.state == "Failed" else ("OK" if op.operation == "Delete"
                                                                         else "Created")
    if op.error:
        props["statusMessage"] = {"status": "Failed", "error": copy.deepcopy(op.error)}
    return {"id": f"{dep.id}/operations/{op.id}", "operationId": op.id, "properties": props}


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What what-if compares: the resource's payload without its identity and api-version."""
    return {k: v for k, v in body.items() if k not in ("id", "name", "type", "apiVersion")}


def _delta(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """`WhatIfPropertyChange`s between two payloads: objects flatten to dotted paths (as in the spec's
    example, `tags.myNewTag`), arrays are an `Array` change with children by index."""
    out: list[dict[str, Any]] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            sub = f"{path}.{key}" if path else key
            if key not in after:
                out.append({"path": sub, "propertyChangeType": "Delete", "before": before[key]})
            elif key not in before:
                out.append({"path": sub, "propertyChangeType": "Create", "after": after[key]})
            else:
                out.extend(_delta(before[key], after[key], sub))
        return out
    if before == after:
        return out
    if isinstance(before, list) and isinstance(after, list):
        children: list[dict[str, Any]] = []
        for i in range(max(len(before), len(after))):
            if i >= len(after):
                children.append({"path": str(i), "propertyChangeType": "Delete", "before": before[i]})
            elif i >= len(before):
                children.append({"path": str(i), "propertyChangeType": "Create", "after": after[i]})
            elif before[i] != after[i]:
                children.append({"path": str(i), "propertyChangeType": "Modify", "before": before[i],
                                 "after": after[i]})
        return [{"path": path, "propertyChangeType": "Array", "children": children}]
    return [{"path": path, "propertyChangeType": "Modify", "before": before, "after": after}]


def _in_group(resource_id: str, group: ResourceGroup) -> bool:
    return resource_id.lower().startswith(group.id.lower() + "/providers/")


def _check_name(name: str) -> str:
    # learn.microsoft.com, troubleshooting/common-deployment-errors: DeploymentNameLengthLimitExceeded and
    # DeploymentNameInvalidCharacters; the spec's pattern ^[-\w\._\(\)]+$, 1 to 64 characters.
    if len(name) > 64:
        raise ArmError(400, "DeploymentNameLengthLimitExceeded", f"The provided deployment name '{name}' has a "
                                                                 f"length of {len(name)} which exceeds the maximum "
                                                                 f"length of 64.")
    if not NAME.match(name):
        raise ArmError(400, "DeploymentNameInvalidCharacters", f"The provided deployment name '{name}' has these "
                                                               f"invalid characters: the name can only contain "
                                                               f"letters, digits, '-', '.', '_', '(' and ')'.")
    return name


def _bearer(headers: dict[str, str]) -> bool:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    return value.startswith("Bearer ") and len(value) > len("Bearer ")


def _location(value: str) -> str:
    """ARM takes display names too ("West Europe") and keeps the normalized name (westeurope)."""
    return value.replace(" ", "").lower()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

"""An App Service emulator that speaks the ARM REST API `azure-mgmt-web` calls.

Point `WebSiteManagementClient` at `url` (with an authentication policy that allows http) and it
keeps sites, slots, per-slot app settings and connection strings, the whole `slotConfigNames`
(sticky settings, connection strings and storage mounts), each slot's `linuxFxVersion` (a language
stack or a custom container, `DOCKER|<image>`), restarts and swaps, and serves each slot's deployed
package, or the container image it runs (from `push_image`, a stand-in registry), on its own loopback
port (see `local/slot_server.py`). Tests make it
misbehave with `inject_faults` (throttling, 5xx) and read what it was asked in `requests`.

Function apps are sites of kind `functionapp,linux` (`add_function_app`): on Premium and Dedicated
plans they behave as web apps do (slots, swaps, zip deployment, containers). A Flex Consumption app
(`add_function_app(..., flex=True)`) reports `properties.sku = FlexConsumption` and its
`functionAppConfig`, has no slots and no linuxFxVersion, refuses what ARM refuses for Flex sites, and
takes code only through One Deploy, which writes the package into its deployment storage container
(`deployment_storage`, a stand-in for that blob container) from which every instance starts.
"""

from __future__ import annotations

import base64
import binascii
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
from urllib.parse import parse_qs, urlparse

import httpx

from local.kudu import DeploymentFailed, Kudu
from local.rest_emulator import Reply, RestEmulator
from local.slot_server import SlotServer

logger = logging.getLogger(__name__)
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
SITE = (r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Web/sites/(?P<site>[^/]+)"
        r"(?:/slots/(?P<slot>[^/]+))?(?P<rest>/.*)?$")
API_VERSION = "2025-05-01"
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(rf"^(?P<repository>(?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*)"
                   r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$", re.ASCII)
"""A container image reference: `[registry[:port]/]repository[:tag][@sha256:<64 hex>]`, as the Docker /
OCI distribution reference grammar has it (github.com/distribution/reference, regexp.go: lower-case path
components separated by `.`, `_`, `__` or dashes; a tag of at most 128 word characters, dots and dashes;
a digest of an algorithm and its hex encoding, here sha256 only, lower-case as the OCI image spec
requires for sha256)."""
STACK = re.compile(r"^[A-Za-z][A-Za-z0-9]*\|[A-Za-z0-9._-]+$")
"""A built-in stack's linuxFxVersion (`PYTHON|3.11`, `NODE|20-lts`, `DOTNETCORE|8.0`)."""
FLEX = "FlexConsumption"
"""The `properties.sku` a Flex Consumption app reports (Microsoft.Web Site model: "Current SKU of application
based on associated App Service Plan. Some valid SKU values are Free, Shared, Basic, Dynamic, FlexConsumption,
…"); what `az functionapp` checks to tell a Flex app (azure-cli appservice utils.py `is_flex_functionapp`)."""
FLEX_PACKAGE = "released-package.zip"
"""The blob One Deploy keeps a Flex app's package in, in its deployment storage container (the name the
Functions infrastructure-as-code docs give for a Flex Consumption "Deployment package")."""
FLEX_INVALID_SETTINGS = ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION")
"""App settings ARM refuses on a Flex app: the runtime is `functionAppConfig.runtime` there (functions-app-settings,
"Flex Consumption plan deprecations"; ARM's 400 "The following app setting
(Site.SiteConfig.AppSettings.FUNCTIONS_WORKER_RUNTIME) for Flex Consumption sites is invalid", as reported by
many users). Other deprecated settings (WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENTSHARE, …) are accepted and
have no effect."""


@dataclass
class Slot:
    server: SlotServer
    settings: dict[str, str] = field(default_factory=dict)
    connection_strings: dict[str, dict[str, str]] = field(default_factory=dict)
    """name → {"value", "type"} (ConnStringValueTypePair)."""
    wwwroot: bytes | None = None
    """The site's content as zip deployment left it (it moves with a swap, like the content does)."""
    kudu: Kudu | None = None
    restart_timer: threading.Timer | None = None
    swap_status: dict[str, str] | None = None
    """`slotSwapStatus` of the slot's resource: the last swap it took part in."""
    linux_fx: str = ""
    """`siteConfig.linuxFxVersion` of this slot: a language stack (`PYTHON|3.11`) or a custom container
    (`DOCKER|<image>`). It is one of the "general settings, such as framework version", which are not
    slot-specific and swap with the content (learn.microsoft.com, app-service/deploy-staging-slots,
    "Manage settings")."""


SLOT_CONFIG_LISTS = ("appSettingNames", "connectionStringNames", "azureStorageConfigNames")


@dataclass
class Site:
    slots: dict[str, Slot]
    """Keyed by slot name; the production slot is "production"."""
    slot_config: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in SLOT_CONFIG_LISTS})
    """`slotConfigNames`: what stays with its slot on a swap. A PUT replaces the whole object."""

    @property
    def sticky(self) -> list[str]:
        return self.slot_config["appSettingNames"]

    @property
    def sticky_connections(self) -> list[str]:
        return self.slot_config["connectionStringNames"]
    host_keys: dict[str, str] | None = None
    """A function app's host keys (`_master` is the master key); None for a web app."""
    stack: str = "PYTHON|3.11"
    """The `siteConfig.linuxFxVersion` the site was made with, which its slots start with."""
    kind: str = "app,linux"
    sku: str = "Standard"
    """`properties.sku`: the plan's SKU as the site reports it (read-only)."""
    function_app_config: dict[str, Any] | None = None
    """`properties.functionAppConfig` of a Flex Consumption app: deployment storage, runtime, scale."""
    storage_denied: bool = False
    """The Flex app's identity may not write its deployment storage (a role assignment missing or new)."""

    @property
    def flex(self) -> bool:
        return self.sku.lower() == FLEX.lower()

    @property
    def deployment_container(self) -> str:
        """The blob container URL of `functionAppConfig.deployment.storage` ("" for other apps)."""
        storage = ((self.function_app_config or {}).get("deployment") or {}).get("storage") or {}
        return str(storage.get("value") or "")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    count: int
    headers: dict[str, str]
    after: bool
    """Answer `status` only after doing the operation: a timeout or error after success."""


class PackageError(Exception):
    """A run-from-package URL that does not give the app its package: the slot does not start."""


@dataclass
class Operation:
    """A long-running operation (a swap): done after `polls` more status checks."""

    polls: int
    finish: Any
    """Called once when the operation completes; returns an ARM error body if it failed."""
    error: dict[str, Any] | None = None
    done: bool = False
    slots: tuple[int, ...] = ()
    """The slots it works on (ids): another swap of either is refused while it runs."""
    due: float = 0.0
    """When (monotonic) it completes by itself, whether anyone looks or not, as ARM operations do."""


class AppServiceEmulator(RestEmulator):
    content_type = "application/json"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.sites: dict[tuple[str, str, str], Site] = {}
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self.operations: dict[str, Operation] = {}
        self.operation_polls = 2
        """How many status checks a swap stays in progress for before it completes: a real swap takes
        a minute or two (warm-up), so callers must look again; 0 makes it finish at the first check."""
        self.operation_seconds = 1.0
        """How long a swap runs by itself when nobody looks at it (it completes at whichever comes first)."""
        self.restart_seconds = 0.5
        """How long after a settings change, a restart call or a deployment the slot restarts (App
        Service answers first and restarts afterwards; the old build answers meanwhile)."""
        self.deploy_seconds = 0.3
        """How long a zip deployment takes on a slot's deployment endpoint."""
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The clock SAS expiries are judged by (the local stack's one clock)."""
        self.speed = 1.0
        """Simulated seconds per real second of that clock: restarts and deployments take their time
        on it, as everything else on the stack does."""
        self.blob_readers: set[str] = set()
        """Managed identities (resource ids) granted read access to the package store."""
        self.read_blob: Callable[[str], bytes] | None = None
        """How a managed identity reads a blob URL (the local stack reads Azurite with its key)."""
        self.swaps_done = 0
        """Swaps carried out (a refused or failed one is not)."""
        self.settings_log: list[tuple[str, str | None]] = []
        """Every app settings write: (slot resource id, the release mark it leaves), for the same counts."""
        self.on_swap: Callable[[dict[str, Any]], None] | None = None
        self.swap_log: list[dict[str, Any]] = []
        """Every swap carried out, with what each slot ran after it (by Slipway's release mark): what
        load and crash tests count the engine's own acts by."""
        self.preview_backup: dict[int, tuple[dict[str, str], dict[str, dict[str, str]]]] = {}
        """A previewed slot's own settings and connection strings, put back by a reset or the swap."""
        self._lock = threading.RLock()
        self.on_request: Callable[[str, int, float], None] | None = None
        """Told of every request a slot serves: (slot resource id, status, milliseconds), for the
        Azure Monitor emulator's metrics."""
        self.images: dict[str, bytes] = {}
        """The stand-in registry: `repository@sha256:<hex>` → what the image serves (a package zip, run as the
        container's app). Filled by `push_image`."""
        self.tags: dict[str, str] = {}
        """`repository:tag` → the digest it points at now (a tag moves when an image is pushed again)."""
        self.deployment_storage: dict[str, dict[str, bytes]] = {}
        """Flex apps' deployment storage: blob container URL → blob name → bytes (One Deploy writes
        `released-package.zip` there; every instance of the app starts from it)."""

    # -- lifecycle

    def stop(self) -> None:
        super().stop()
        for site in self.sites.values():
            for slot in site.slots.values():
                slot.server.stop()
                if slot.kudu is not None:
                    slot.kudu.stop()
                if slot.restart_timer is not None:
                    slot.restart_timer.cancel()

    # -- seeding and test hooks

    def add_site(self, subscription_id: str, resource_group: str, site: str, slots: list[str] | None = None,
                 *, stack: str = "PYTHON|3.11", kind: str = "app,linux", sku: str = "Standard") -> None:
        """A site running `stack` (its linuxFxVersion), with its slots, on a plan of SKU `sku`."""
        with self._lock:
            key = (subscription_id.lower(), resource_group.lower(), site.lower())
            base = (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
                    f"/providers/Microsoft.Web/sites/{site}")
            if key not in self.sites:
                self.sites[key] = Site({"production": self._new_slot(base)}, stack=stack, kind=kind, sku=sku)
                self.sites[key].slots["production"].linux_fx = stack
            for name in slots or []:
                if name.lower() not in self.sites[key].slots:
                    slot = self.sites[key].slots[name.lower()] = self._new_slot(f"{base}/slots/{name.lower()}")
                    slot.linux_fx = self.sites[key].stack

    def push_image(self, repository: str, content: bytes, tag: str | None = None) -> str:
        """Push an image to the stand-in registry: `content` (a package zip) is what a slot running it
        serves. Returns the image pinned by its digest, `repository@sha256:<hex of content>`; with `tag`,
        `repository:tag` points at it from now on."""
        reference = f"{repository}:{tag}" if tag else repository
        if not IMAGE.match(reference) or "@" in reference:
            raise ValueError(f"{reference!r} is not an image repository (and tag)")
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        with self._lock:
            self.images[f"{repository.lower()}@{digest}"] = content
            if tag:
                self.tags[f"{repository.lower()}:{tag}"] = digest
        return f"{repository}@{digest}"

    def _new_slot(self, resource_id: str) -> Slot:
        slot = Slot(self._slot_server(resource_id))

        def deployed(data: bytes) -> None:
            with self._lock:
                site = next(s for s in self.sites.values() if slot in s.slots.values())
                if site.flex:
                    self._store_flex_package(site, data)
                else:
                    slot.wwwroot = data
                self._restart(site, slot)

        slot.kudu = Kudu(settings=lambda: dict(slot.settings), deployed=deployed,
                         deploy_seconds=self.deploy_seconds / self.speed).start(self.host)
        return slot

    def scale_out(self, subscription_id: str, resource_group: str, site: str) -> None:
        """A new instance starts (or the platform moves the app): every slot starts again from its
        content, reading a run-from-package URL again, as App Service does."""
        with self._lock:
            found = self.sites[(subscription_id.lower(), resource_group.lower(), site.lower())]
            for slot in found.slots.values():
                self._start(found, slot)

    def add_function_app(self, subscription_id: str, resource_group: str, site: str,
                         keys: dict[str, str] | None = None, *, flex: bool = False, slots: list[str] | None = None,
                         stack: str = "PYTHON|3.11", sku: str = "ElasticPremium",
                         runtime: tuple[str, str] = ("python", "3.11"), deployment_storage: str | None = None,
                         storage_authentication: str = "SystemAssignedIdentity") -> str:
        """A function app (kind `functionapp,linux`) with these host keys (`_master` for the master key;
        a default key when none are given), as Slipway itself or as a deployment target. Returns the
        deployment storage container URL of a Flex app, else "".

        Premium (`ElasticPremium`) and Dedicated plans: the app runs `stack` (its linuxFxVersion) and may
        have `slots`, like a web app. `flex`: a Flex Consumption app, as `az functionapp create
        --flexconsumption-location` makes one: `functionAppConfig` with `deployment.storage` (type
        `blobContainer`, the container URL `deployment_storage` or one named as Azure names the default,
        `app-package-<app>-<7 hex>`, and an `authentication` type: SystemAssignedIdentity,
        UserAssignedIdentity or StorageAccountConnectionString), `runtime` ({name, version}: no
        linuxFxVersion) and `scaleAndConcurrency`; no slots ("Deployment slots aren't currently supported",
        learn.microsoft.com azure-functions/flex-consumption-plan, "Considerations")."""
        if flex and slots:
            raise ValueError("a Flex Consumption app has no deployment slots")
        key = (subscription_id.lower(), resource_group.lower(), site.lower())
        self.add_site(subscription_id, resource_group, site, slots, stack="" if flex else stack,
                      kind="functionapp,linux", sku=FLEX if flex else sku)
        with self._lock:
            found = self.sites[key]
            found.host_keys = dict(keys) if keys is not None else {"default": uuid.uuid4().hex}
            if not flex:
                return ""
            container = deployment_storage or (f"https://st{hashlib.sha256(key[2].encode()).hexdigest()[:20]}"
                                               f".blob.core.windows.net/app-package-{key[2][:32]}-"
                                               f"{uuid.uuid4().hex[:7]}")
            found.function_app_config = {
                "deployment": {"storage": {"type": "blobContainer", "value": container,
                                           "authentication": {"type": storage_authentication}}},
                "runtime": {"name": runtime[0], "version": runtime[1]},
                "scaleAndConcurrency": {"maximumInstanceCount": 100, "instanceMemoryMB": 2048}}
            self.deployment_storage.setdefault(container, {})
            kudu = found.slots["production"].kudu
            assert kudu is not None
            kudu.flex, kudu.not_found_looks = True, 1
            return container

    def _store_flex_package(self, site: Site, data: bytes) -> None:
        """One Deploy on a Flex app: the package goes into its deployment storage container, written with
        the identity (or connection string) `functionAppConfig.deployment.storage.authentication` names; a
        write storage refuses fails the deployment (the publish reports "Failed to upload because Azure
        Storage responded with Forbidden … 403", Azure/azure-dev#4439), as when that identity lacks Storage
        Blob Data Contributor on the account."""
        if site.storage_denied:
            raise DeploymentFailed("Failed to upload because Azure Storage responded with Forbidden: Response status "
                                   "code does not indicate success: 403 (This request is not authorized to perform "
                                   "this operation.)")
        self.deployment_storage.setdefault(site.deployment_container, {})[FLEX_PACKAGE] = data

    def _slot_server(self, resource_id: str) -> SlotServer:
        server = SlotServer(self.host)
        server.observer = lambda status, ms: self.on_request(resource_id, status, ms) if self.on_request else None
        return server

    def slot_urls(self, subscription_id: str, resource_group: str, site: str) -> dict[str, str]:
        found = self.sites[(subscription_id.lower(), resource_group.lower(), site.lower())]
        return {name: f"http://{slot.server.host_name}" for name, slot in found.slots.items()}

    def inject_faults(self, method: str, path_regex: str, status: int, count: int = 1,
                      headers: dict[str, str] | None = None, *, after: bool = False) -> None:
        """The next `count` requests matching answer `status` (e.g. 429 with Retry-After).

        With `after`, the request is carried out first and then answered with `status`, as when a
        call times out or fails after the service did the work."""
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), status, count, headers or {}, after))

    # -- ARM

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        path = urlparse(raw_path).path
        with self._lock:
            for op in self.operations.values():
                if not op.done and time.monotonic() >= op.due:
                    self._complete(op)
            self.requests.append((method, path))
            fault = next((f for f in self._faults
                          if f.count > 0 and f.method == method and f.path.search(path)), None)
            if fault is not None:
                fault.count -= 1
                if fault.after:
                    self._handle(method, path, raw, base)
                return fault.status, _error("Injected", f"injected {fault.status}"), fault.headers
            return self._handle(method, path, raw, base)

    def _handle(self, method: str, path: str, raw: bytes, base: str) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return 400, _error("InvalidRequestContent", "body is not JSON"), {}
            if m := re.match(r"^/operations/([0-9a-f]+)$", path):
                return self._poll(m[1], path, base)
            m = re.match(SITE, path)
            if m is None:
                return 404, _error("NotFound", f"no route {path}"), {}
            key = (m["sub"].lower(), m["rg"].lower(), m["site"].lower())
            site = self.sites.get(key)
            slot_name = (m["slot"] or "production").lower()
            rest = m["rest"] or ""
            if site is None:
                return 404, _error("ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{m['site']}' under "
                                                       f"resource group '{m['rg']}' was not found."), {}
            if rest == "/slots" and method == "GET" and m["slot"] is None:
                return 200, {"value": [self._resource(path[: -len("/slots")], m["site"], n, s, site)
                                       for n, s in site.slots.items() if n != "production"]}, {}
            slot = site.slots.get(slot_name)
            if slot is None:
                if rest == "" and method == "PUT":
                    if site.flex:
                        return 400, _flex_no_slots(m["site"]), {}
                    slot = site.slots[slot_name] = self._new_slot(path.split("?")[0])
                    slot.linux_fx = site.stack
                else:
                    return 404, _error("ResourceNotFound", f"slot '{m['slot']}' of site '{m['site']}' not found"), {}
            return self._act(method, rest, body, site, slot_name, slot, path, m["site"], base)

    def _act(self, method: str, rest: str, body: Any, site: Site, name: str, slot: Slot, path: str, site_name: str,
             base: str) -> tuple[int, Any, dict[str, str]]:
        resource = path[: len(path) - len(rest)] if rest else path
        if rest == "" and method in ("GET", "PUT"):
            return 200, self._resource(resource, site_name, name, slot, site), {}
        if rest == "/config/appsettings/list" and method == "POST":
            return 200, {"id": f"{resource}/config/appsettings", "name": "appsettings",
                         "properties": dict(slot.settings)}, {}
        if rest == "/config/appsettings" and method == "PUT":
            if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
                return 400, _error("BadRequest", "properties must be an object"), {}
            invalid = [str(k) for k in body["properties"] if site.flex and str(k).upper() in FLEX_INVALID_SETTINGS]
            if invalid:
                return 400, _flex_invalid("app setting", [f"Site.SiteConfig.AppSettings.{k}" for k in invalid]), {}
            slot.settings = {str(k): str(v) for k, v in body["properties"].items()}
            self.settings_log.append((resource.lower(), slot.settings.get("SLIPWAY_RELEASE_ID")))
            # App Service answers first and restarts the slot afterwards: the old build serves meanwhile
            # (azure-notes §4; WebApps_Restart's `synchronous` defaults to false: "the API responds
            # immediately (asynchronous)", Microsoft.Web REST reference / azure-mgmt-web `restart_slot`).
            self._restart(site, slot)
            return 200, {"id": f"{resource}/config/appsettings", "properties": dict(slot.settings)}, {}
        if rest == "/config/web" and method in ("GET", "PATCH"):
            if method == "PATCH":
                # WebApps_UpdateConfiguration[Slot] (`update_configuration[_slot]`, what `az webapp config
                # container set` and `az functionapp config container set` call, with linuxFxVersion
                # "DOCKER|<image>": azure-cli appservice custom.py `_add_fx_version`): the properties given
                # change, the others stay. A new linuxFxVersion restarts the app, which pulls the image; the
                # old container serves until the new one started (learn.microsoft.com,
                # app-service/configure-custom-container, "I don't see the updated container").
                props = body.get("properties") if isinstance(body, dict) else None
                if not isinstance(props, dict):
                    return 400, _error("BadRequest", "properties must be an object"), {}
                if site.flex and props.get("linuxFxVersion"):
                    # A Flex app's runtime is functionAppConfig.runtime: ARM refuses a linuxFxVersion (and with
                    # it a custom container) with this 400, as the azure/webapps-deploy action reports it.
                    return 400, _flex_invalid("site configuration property", ["Site.SiteConfig.LinuxFxVersion"]), {}
                if "linuxFxVersion" in props:
                    fx = props["linuxFxVersion"]
                    problem = _fx_problem(fx, site.kind)
                    if problem:
                        return 400, _error("BadRequest", f"The parameter LinuxFxVersion has an invalid value. "
                                                         f"{problem}"), {}
                    if fx != slot.linux_fx:
                        slot.linux_fx = fx
                        self._restart(site, slot)
            return 200, {"id": f"{resource}/config/web", "name": "web", "type": "Microsoft.Web/sites/config",
                         "properties": {"linuxFxVersion": slot.linux_fx, "alwaysOn": not site.flex}}, {}
        if rest == "/config/connectionstrings/list" and method == "POST":
            return 200, {"id": f"{resource}/config/connectionstrings", "name": "connectionstrings",
                         "properties": {k: dict(v) for k, v in slot.connection_strings.items()}}, {}
        if rest == "/config/connectionstrings" and method == "PUT":
            # WebApps_UpdateConnectionStrings replaces them all, as app settings.
            props = body.get("properties") if isinstance(body, dict) else None
            if not isinstance(props, dict) or not all(isinstance(v, dict) and "value" in v for v in props.values()):
                return 400, _error("BadRequest", "properties must map names to {value, type}"), {}
            slot.connection_strings = {str(k): {"value": str(v["value"]), "type": str(v.get("type", "Custom"))}
                                       for k, v in props.items()}
            return 200, {"id": f"{resource}/config/connectionstrings",
                         "properties": {k: dict(v) for k, v in slot.connection_strings.items()}}, {}
        if rest == "/config/slotConfigNames" and name == "production":
            if method == "PUT":
                # WebApps_UpdateSlotConfigurationNames: the body is the whole SlotConfigNamesResource; a list
                # it leaves out is emptied (the same replace-everything rule as app settings).
                props = (body or {}).get("properties") if isinstance(body, dict) else None
                if not isinstance(props, dict):
                    return 400, _error("BadRequest", "properties must be an object"), {}
                site.slot_config = {k: [str(n) for n in props.get(k) or []] for k in SLOT_CONFIG_LISTS}
            return 200, {"id": f"{resource}/config/slotConfigNames", "name": "slotConfigNames",
                         "properties": {k: list(v) for k, v in site.slot_config.items()}}, {}
        if rest == "/host/default/listkeys" and method == "POST" and name == "production":
            # WebApps_ListHostKeys: the host's master key, function keys and system keys.
            if site.host_keys is None:
                return 400, _error("BadRequest", "the site is not a function app"), {}
            keys = dict(site.host_keys)
            master = keys.pop("_master", None)
            return 200, {"masterKey": master, "functionKeys": keys, "systemKeys": {}}, {}
        if rest == "/restart" and method == "POST":
            self._restart(site, slot)
            return 200, None, {}
        if rest == "/slotsswap" and method == "POST":
            if site.flex:
                return 400, _flex_no_slots(site_name), {}
            target = str((body or {}).get("targetSlot") or "production").lower()
            other = site.slots.get(target)
            if other is None or other is slot:
                return 400, _error("BadRequest", f"cannot swap slot '{name}' with '{target}'"), {}
            busy = [o for o in self.operations.values() if not o.done and {id(slot), id(other)} & set(o.slots)]
            if busy:
                # One swap at a time per slot: App Service answers 409 while an operation runs on the site.
                return 409, _error("Conflict", "Cannot modify this site because another operation is in "
                                               "progress (a slot swap)."), {}
            op = uuid.uuid4().hex
            self.operations[op] = Operation(self.operation_polls, lambda: self._swap(site, slot, other, name, target),
                                            slots=(id(slot), id(other)),
                                            due=time.monotonic() + self.operation_seconds)
            if self.operation_polls == 0:
                self._complete(self.operations[op])
            return 202, None, {"Location": f"{base}/operations/{op}?api-version={API_VERSION}", "Retry-After": "0"}
        if rest == "/applySlotConfig" and method == "POST":
            # "Applies the configuration settings from the target slot onto the current slot" (the API's
            # description of WebApps_ApplySlotConfigToProduction and _ApplySlotConfigurationSlot): the slot
            # in the URL takes `targetSlot`'s slot-specific settings. Swap with preview calls it on the
            # source slot with targetSlot=production (Az PowerShell Switch-AzWebAppSlot, the Azure
            # Pipelines task, the Java and .NET SDKs); called on production with targetSlot=<slot>, as the
            # az CLI does, it applies that slot's settings to production, as described.
            target_name = str((body or {}).get("targetSlot") or "").lower()
            other = site.slots.get(target_name)
            if other is None or other is slot:
                return 400, _error("BadRequest", f"targetSlot '{target_name}' is not another slot of the site"), {}
            self.preview_backup.setdefault(id(slot), (dict(slot.settings), dict(slot.connection_strings)))
            slot.settings.update({k: v for k, v in other.settings.items() if k in site.sticky})
            slot.connection_strings.update({k: dict(v) for k, v in other.connection_strings.items()
                                            if k in site.sticky_connections})
            slot.server.show_settings(slot.settings)
            return 200, None, {}
        if rest == "/resetSlotConfig" and method == "POST":
            backup = self.preview_backup.pop(id(slot), None)
            if backup is not None:
                slot.settings, slot.connection_strings = backup
                slot.server.show_settings(slot.settings)
            return 200, None, {}
        return 404, _error("NotFound", f"{method} {rest or '/'} is not emulated"), {}

    def _poll(self, op_id: str, path: str, base: str) -> tuple[int, Any, dict[str, str]]:
        op = self.operations.get(op_id)
        if op is None:
            return 404, _error("NotFound", f"no operation {op_id}"), {}
        if not op.done and op.polls > 0:
            op.polls -= 1
            return 202, None, {"Location": f"{base}{path}?api-version={API_VERSION}", "Retry-After": "0"}
        self._complete(op)
        return (400, op.error, {}) if op.error else (200, None, {})

    def _complete(self, op: Operation) -> None:
        if not op.done:
            op.done = True
            op.error = op.finish()
            if op.error is None:
                self.swaps_done += 1

    # -- the slot's life: (re)starts read its content again

    def _restart(self, site: Site, slot: Slot) -> None:
        """Restart later (after `restart_seconds`), as App Service does after a settings change, a
        restart call or a deployment: until then the running build keeps answering. Source: the
        Microsoft.Web REST reference for WebApps_Restart (`synchronous`: "By default, it is set to
        false, and the API responds immediately (asynchronous)") and azure-notes §4 on settings writes."""
        if slot.restart_timer is not None:
            slot.restart_timer.cancel()
        if self.restart_seconds <= 0:
            self._start(site, slot)
            return
        timer = threading.Timer(self.restart_seconds / self.speed, lambda: self._start_locked(site, slot))
        timer.daemon = True
        slot.restart_timer = timer
        timer.start()

    def _start_locked(self, site: Site, slot: Slot) -> None:
        with self._lock:
            self._start(site, slot)

    def _start(self, site: Site, slot: Slot) -> None:
        """Start the slot's app from what it has now: its container image (pulled again, every time), else
        a run-from-package URL (read again, every time), else the content zip deployment left, else the
        default page."""
        slot.restart_timer = None
        slot.server.show_settings(slot.settings)
        package = slot.settings.get(RUN_FROM_PACKAGE, "")
        if site.flex:
            # "On startup, your app gets the package and runs your function code from this package"
            # (flex-consumption-plan, "Deployment"): WEBSITE_RUN_FROM_PACKAGE is "not used" there.
            stored = self.deployment_storage.get(site.deployment_container, {}).get(FLEX_PACKAGE)
            if stored is None:
                slot.server.default()
            else:
                slot.server.serve_zip(stored, f"{site.deployment_container}/{FLEX_PACKAGE}")
        elif slot.linux_fx.upper().startswith("DOCKER|"):
            image = slot.linux_fx[len("DOCKER|"):]
            content = self._pull(image)
            if content is None:
                # App Service logs the failed pull and the container does not start (the site answers with
                # an application error).
                slot.server.fail(f"container image pull failed: {image}: manifest unknown")
            else:
                slot.server.serve_zip(content, image)
        elif package and package != "1":
            try:
                slot.server.serve_zip(self._fetch_package(site, slot, package), package)
            except PackageError as exc:
                slot.server.fail(f"run-from-package failed: {exc}")
        elif slot.wwwroot is not None:
            slot.server.serve_zip(slot.wwwroot, "wwwroot")
        else:
            slot.server.default()

    def _pull(self, image: str) -> bytes | None:
        """What the stand-in registry has for an image reference: by digest when it has one (a digest names
        one image for ever), else by its tag (`latest` when none), as it points now."""
        m = IMAGE.match(image)
        if m is None:
            return None
        repository = m["repository"].lower()
        digest = m["digest"] or self.tags.get(f"{repository}:{m['tag'] or 'latest'}")
        return self.images.get(f"{repository}@{digest}") if digest else None

    def _fetch_package(self, site: Site, slot: Slot, url: str) -> bytes:
        """What App Service does with WEBSITE_RUN_FROM_PACKAGE=<url> at every start
        (learn.microsoft.com, app-service/deploy-run-package):
        - not for Python or Java web apps on Linux ("Run from package isn't supported for Python apps");
          a function app runs any language from a package URL (azure-functions/run-functions-from-deployment-
          package; on the Linux Consumption plan it is the way to deploy, deployment-zip-push);
        - a SAS URL works until its expiry (`se`, against this emulator's clock: the stack's one clock);
        - a URL without SAS is read with the managed identity that
          WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID names, which needs read access to the blob."""
        language = slot.linux_fx.split("|")[0].upper()
        if language in ("PYTHON", "JAVA") and "functionapp" not in site.kind.lower():
            raise PackageError(f"run from package is not supported for {language.title()} apps; deploy with "
                               f"zip deployment (OneDeploy)")
        query = parse_qs(urlparse(url).query)
        if "sig" in query:
            expiry = (query.get("se") or [""])[0]
            try:
                expired = expiry and datetime.fromisoformat(expiry.replace("Z", "+00:00")) <= self.now()
            except ValueError:
                expired = True
            if expired:
                raise PackageError(f"HTTP 403 AuthenticationFailed: the SAS expired at {expiry}")
            try:
                response = httpx.get(url, timeout=30)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise PackageError(str(exc)) from None
            return response.content
        identity = slot.settings.get("WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID", "")
        if not identity:
            raise PackageError("HTTP 409 PublicAccessNotPermitted: a URL without a SAS needs the app's managed "
                               "identity (WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID)")
        if identity.lower() not in {i.lower() for i in self.blob_readers} or self.read_blob is None:
            raise PackageError(f"HTTP 403 AuthorizationPermissionMismatch: identity {identity} may not read the blob")
        try:
            return self.read_blob(url)
        except Exception as exc:  # the storage answer, whatever it is, stops the start
            raise PackageError(str(exc)) from None

    def _swap(self, site: Site, a: Slot, b: Slot, a_name: str, b_name: str) -> dict[str, Any] | None:
        """Warm up the source, then exchange content and non-sticky settings; sticky ones stay. Both
        slots' resources then report the swap as the site's `slotSwapStatus` (Microsoft.Web Site model:
        "the status of the last successful slot swap operation": timestampUtc, sourceSlotName,
        destinationSlotName)."""
        path = a.settings.get("WEBSITE_SWAP_WARMUP_PING_PATH")
        if path:
            allowed = [s.strip() for s in a.settings.get("WEBSITE_SWAP_WARMUP_PING_STATUSES", "").split(",") if s]
            try:
                status = str(httpx.get(f"http://{a.server.host_name}{path}", timeout=10).status_code)
            except httpx.HTTPError as exc:
                status = f"error {exc}"
            if allowed and status not in allowed:
                return _error("SwapWarmupFailed", f"warm-up request to {path} answered {status}, expected one of "
                                                  f"{','.join(allowed)}: swap aborted")
        package = a.settings.get(RUN_FROM_PACKAGE, "")
        if package and package != "1":  # the source starts again for the swap: its package is read again
            try:
                self._fetch_package(site, a, package)
            except PackageError as exc:
                return _error("SwapWarmupFailed", f"the source slot did not start: run-from-package failed: {exc}")
        backups = {id(x): self.preview_backup.pop(id(x), None) for x in (a, b)}
        for slot in (a, b):  # a previewed slot goes into the swap with its own slot settings again
            backup = backups[id(slot)]
            if backup is not None:
                settings, connections = backup
                for name in site.sticky:
                    if name in settings:
                        slot.settings[name] = settings[name]
                    else:
                        slot.settings.pop(name, None)
                for name in site.sticky_connections:
                    if name in connections:
                        slot.connection_strings[name] = connections[name]
                    else:
                        slot.connection_strings.pop(name, None)
        self._exchange(site, a, b)
        status = {"timestampUtc": self.now().isoformat(), "sourceSlotName": a_name, "destinationSlotName": b_name}
        a.swap_status = b.swap_status = status
        entry = {**status, "site": next(k[2] for k, v in self.sites.items() if v is site),
                 "runs": {a_name: a.settings.get("SLIPWAY_RELEASE_ID"), b_name: b.settings.get("SLIPWAY_RELEASE_ID")}}
        self.swap_log.append(entry)
        if self.on_swap is not None:
            self.on_swap(entry)  # before the caller hears of it: a crash test kills the caller here
        return None

    @staticmethod
    def _exchange(site: Site, a: Slot, b: Slot) -> None:
        """Content and every setting and connection string move with the swap, but the slot-specific
        ones (`slotConfigNames`), which stay with their slot."""
        def split(values: dict[str, Any], sticky: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
            return ({k: v for k, v in values.items() if k in sticky},
                    {k: v for k, v in values.items() if k not in sticky})

        a_sticky, a_moving = split(a.settings, site.sticky)
        b_sticky, b_moving = split(b.settings, site.sticky)
        a.settings, b.settings = {**b_moving, **a_sticky}, {**a_moving, **b_sticky}
        a_cs, a_cs_moving = split(a.connection_strings, site.sticky_connections)
        b_cs, b_cs_moving = split(b.connection_strings, site.sticky_connections)
        a.connection_strings, b.connection_strings = {**b_cs_moving, **a_cs}, {**a_cs_moving, **b_cs}
        a.wwwroot, b.wwwroot = b.wwwroot, a.wwwroot
        a.linux_fx, b.linux_fx = b.linux_fx, a.linux_fx  # a general setting: it follows the content
        a.server.take(b.server)
        a.server.show_settings(a.settings)
        b.server.show_settings(b.settings)

    @staticmethod
    def _resource(resource: str, site_name: str, name: str, slot: Slot, site: Site) -> dict[str, Any]:
        host = slot.server.host_name
        scm = slot.kudu.host_name if slot.kudu else ""
        production = name == "production"
        plan = f"{resource.split('/providers/')[0]}/providers/Microsoft.Web/serverfarms/asp-{site_name}"
        return {"id": resource, "name": site_name if production else f"{site_name}/{name}",
                "type": "Microsoft.Web/sites" if production else "Microsoft.Web/sites/slots",
                "location": "westeurope", "kind": site.kind,
                "properties": {"state": "Running", "defaultHostName": host, "hostNames": [host],
                               "serverFarmId": plan, "sku": site.sku,
                               **({"functionAppConfig": json.loads(json.dumps(site.function_app_config))}
                                  if site.function_app_config else {}),
                               **({"slotSwapStatus": dict(slot.swap_status)} if slot.swap_status else {}),
                               "enabledHostNames": [host, scm], "enabled": True,
                               "hostNameSslStates": [{"name": host, "sslState": "Disabled", "hostType": "Standard"},
                                                     {"name": scm, "sslState": "Disabled", "hostType": "Repository"}]}}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _flex_invalid(what: str, names: list[str]) -> dict[str, Any]:
    """ARM's 400 for properties a Flex Consumption site does not take, in the words it uses ("The following
    site configuration property (Site.SiteConfig.LinuxFxVersion) for Flex Consumption sites is invalid.
    Please remove or rename it before retrying."; several: "The following list of 2 site configuration
    properties (…) … Please remove or rename them …")."""
    if len(names) == 1:
        return _error("BadRequest", f"The following {what} ({names[0]}) for Flex Consumption sites is invalid.  "
                                    f"Please remove or rename it before retrying.")
    return _error("BadRequest", f"The following list of {len(names)} {what}s ({', '.join(names)}) for Flex "
                                f"Consumption sites is invalid.  Please remove or rename them before retrying.")


def _flex_no_slots(site: str) -> dict[str, Any]:
    """A slot (or a swap) on a Flex Consumption app: "Deployment slots aren't currently supported"
    (flex-consumption-plan, "Considerations"; creating one fails, microsoft/vscode-azurefunctions#4069). Azure's
    exact wording is not published: this one is the emulator's."""
    return _error("BadRequest", f"Site '{site}' is on a Flex Consumption plan, which does not support deployment "
                                f"slots.")


def _fx_problem(fx: Any, kind: str) -> str:
    """Why App Service would refuse this linuxFxVersion, or "" when it takes it: a built-in stack
    (`NAME|version`), a custom container (`DOCKER|<image reference>`), a Compose file (`COMPOSE|<base64>`),
    `SITECONTAINERS`, or empty; only on a Linux app (a Windows container has windowsFxVersion)."""
    if not isinstance(fx, str):
        return "linuxFxVersion must be a string."
    if fx.strip() == "":
        return ""
    if "linux" not in kind.lower():
        return "linuxFxVersion applies to Linux apps only."
    prefix, bar, value = fx.partition("|")
    if prefix.upper() == "DOCKER" and bar:
        if not IMAGE.match(value) or len(value.split("@")[0].split(":")[0]) > 255:
            return f"'{value}' is not a container image reference ([registry/]repository[:tag][@sha256:<64 hex>])."
        return ""
    if prefix.upper() == "COMPOSE" and bar:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "a COMPOSE value is a base64-encoded Compose file."
        return ""
    if fx.upper() == "SITECONTAINERS" or STACK.match(fx):
        return ""
    return f"'{fx}' is not a stack (NAME|version), DOCKER|<image>, COMPOSE|<base64> or SITECONTAINERS."

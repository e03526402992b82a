"""An App Service emulator that speaks the ARM REST API `azure-mgmt-web` calls.

Point `WebSiteManagementClient` at `url` (with an authentication policy that allows http) and it
keeps sites, slots, per-slot app settings and sticky setting names, restarts and swaps, and serves
each slot's deployed package on its own loopback port (see `local/slot_server.py`). Tests make it
misbehave with `inject_faults` (throttling, 5xx) and read what it was asked in `requests`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import httpx

from local.slot_server import SlotServer

logger = logging.getLogger(__name__)
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
SITE = (r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Web/sites/(?P<site>[^/]+)"
        r"(?:/slots/(?P<slot>[^/]+))?(?P<rest>/.*)?$")
API_VERSION = "2025-05-01"


@dataclass
class Slot:
    server: SlotServer
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Site:
    slots: dict[str, Slot]
    """Keyed by slot name; the production slot is "production"."""
    sticky: list[str] = field(default_factory=list)
    host_keys: dict[str, str] | None = None
    """A function app's host keys (`_master` is the master key); None for a web app."""


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    count: int
    headers: dict[str, str]
    after: bool
    """Answer `status` only after doing the operation: a timeout or error after success."""


@dataclass
class Operation:
    """A long-running operation (a swap): done after `polls` more status checks."""

    polls: int
    finish: Any
    """Called once when the operation completes; returns an ARM error body if it failed."""
    error: dict[str, Any] | None = None
    done: bool = False


class AppServiceEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.sites: dict[tuple[str, str, str], Site] = {}
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self.operations: dict[str, Operation] = {}
        self.operation_polls = 0
        """How many status checks a swap takes before it completes (0: done at the first check)."""
        self.preview_backup: dict[int, dict[str, str]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.on_request: Callable[[str, int, float], None] | None = None
        """Told of every request a slot serves: (slot resource id, status, milliseconds), for the
        Azure Monitor emulator's metrics."""

    # -- lifecycle

    def start(self) -> AppServiceEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _go(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                base = f"http://{self.headers.get('Host')}"
                status, body, headers = emulator.handle(self.command, self.path, raw, base)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _go

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for site in self.sites.values():
            for slot in site.slots.values():
                slot.server.stop()

    def __enter__(self) -> AppServiceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding and test hooks

    def add_site(self, subscription_id: str, resource_group: str, site: str, slots: list[str] | None = None) -> None:
        with self._lock:
            key = (subscription_id.lower(), resource_group.lower(), site.lower())
            base = (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
                    f"/providers/Microsoft.Web/sites/{site}")
            if key not in self.sites:
                self.sites[key] = Site({"production": Slot(self._slot_server(base))})
            for name in slots or []:
                if name.lower() not in self.sites[key].slots:
                    self.sites[key].slots[name.lower()] = Slot(self._slot_server(f"{base}/slots/{name.lower()}"))

    def add_function_app(self, subscription_id: str, resource_group: str, site: str,
                         keys: dict[str, str]) -> None:
        """A function app with these host keys (`_master` for the master key), as Slipway itself."""
        self.add_site(subscription_id, resource_group, site)
        with self._lock:
            self.sites[(subscription_id.lower(), resource_group.lower(), site.lower())].host_keys = dict(keys)

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

    def handle(self, method: str, raw_path: str, raw: bytes, base: str) -> tuple[int, Any, dict[str, str]]:
        path = urlparse(raw_path).path
        with self._lock:
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
                return 200, {"value": [self._resource(path[: -len("/slots")], m["site"], n, s)
                                       for n, s in site.slots.items() if n != "production"]}, {}
            slot = site.slots.get(slot_name)
            if slot is None:
                if rest == "" and method == "PUT":
                    slot = site.slots[slot_name] = Slot(self._slot_server(path.split("?")[0]))
                else:
                    return 404, _error("ResourceNotFound", f"slot '{m['slot']}' of site '{m['site']}' not found"), {}
            return self._act(method, rest, body, site, slot_name, slot, path, m["site"], base)

    def _act(self, method: str, rest: str, body: Any, site: Site, name: str, slot: Slot, path: str, site_name: str,
             base: str) -> tuple[int, Any, dict[str, str]]:
        resource = path[: len(path) - len(rest)] if rest else path
        if rest == "" and method in ("GET", "PUT"):
            return 200, self._resource(resource, site_name, name, slot), {}
        if rest == "/config/appsettings/list" and method == "POST":
            return 200, {"id": f"{resource}/config/appsettings", "name": "appsettings",
                         "properties": dict(slot.settings)}, {}
        if rest == "/config/appsettings" and method == "PUT":
            if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
                return 400, _error("BadRequest", "properties must be an object"), {}
            slot.settings = {str(k): str(v) for k, v in body["properties"].items()}
            slot.server.show_settings(slot.settings)
            slot.server.run_package(slot.settings.get(RUN_FROM_PACKAGE))
            return 200, {"id": f"{resource}/config/appsettings", "properties": dict(slot.settings)}, {}
        if rest == "/config/slotConfigNames" and name == "production":
            if method == "PUT":
                site.sticky = list((body or {}).get("properties", {}).get("appSettingNames") or [])
            return 200, {"properties": {"appSettingNames": list(site.sticky)}}, {}
        if rest == "/host/default/listkeys" and method == "POST" and name == "production":
            # WebApps_ListHostKeys: the host's master key, function keys and system keys.
            if site.host_keys is None:
                return 400, _error("BadRequest", "the site is not a function app"), {}
            keys = dict(site.host_keys)
            master = keys.pop("_master", None)
            return 200, {"masterKey": master, "functionKeys": keys, "systemKeys": {}}, {}
        if rest == "/restart" and method == "POST":
            slot.server.run_package(slot.settings.get(RUN_FROM_PACKAGE))
            return 200, None, {}
        if rest == "/slotsswap" and method == "POST":
            target = str((body or {}).get("targetSlot") or "production").lower()
            other = site.slots.get(target)
            if other is None or other is slot:
                return 400, _error("BadRequest", f"cannot swap slot '{name}' with '{target}'"), {}
            op = uuid.uuid4().hex
            self.operations[op] = Operation(self.operation_polls, lambda: self._swap(site, slot, other))
            if self.operation_polls == 0:
                self._complete(self.operations[op])
            return 202, None, {"Location": f"{base}/operations/{op}?api-version={API_VERSION}", "Retry-After": "0"}
        if rest == "/applySlotConfig" and method == "POST":
            # Swap with preview, phase 1: the source slot takes the target's sticky settings.
            source_name = name if name != "production" else str((body or {}).get("targetSlot") or "").lower()
            source = site.slots.get(source_name)
            if source is None or source_name == "production":
                return 400, _error("BadRequest", "applySlotConfig needs a deployment slot"), {}
            self.preview_backup.setdefault(id(source), dict(source.settings))
            production = site.slots["production"].settings
            source.settings.update({k: v for k, v in production.items() if k in site.sticky})
            return 200, None, {}
        if rest == "/resetSlotConfig" and method == "POST":
            for candidate in site.slots.values() if name == "production" else [slot]:
                backup = self.preview_backup.pop(id(candidate), None)
                if backup is not None:
                    candidate.settings = backup
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

    @staticmethod
    def _complete(op: Operation) -> None:
        if not op.done:
            op.done = True
            op.error = op.finish()

    def _swap(self, site: Site, a: Slot, b: Slot) -> dict[str, Any] | None:
        """Warm up the source, then exchange content and non-sticky settings; sticky ones stay."""
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
        backups = {id(x): self.preview_backup.pop(id(x), None) for x in (a, b)}
        self._exchange(site, a, b)
        for slot in (a, b):  # after a swap with preview, each slot has its own sticky settings again
            backup = backups[id(slot)]
            if backup is not None:
                for name in site.sticky:
                    if name in backup:
                        slot.settings[name] = backup[name]
                    else:
                        slot.settings.pop(name, None)
                slot.server.show_settings(slot.settings)
        return None

    @staticmethod
    def _exchange(site: Site, a: Slot, b: Slot) -> None:
        def split(settings: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
            sticky = {k: v for k, v in settings.items() if k in site.sticky}
            return sticky, {k: v for k, v in settings.items() if k not in site.sticky}

        a_sticky, a_moving = split(a.settings)
        b_sticky, b_moving = split(b.settings)
        a.settings, b.settings = {**b_moving, **a_sticky}, {**a_moving, **b_sticky}
        a.server.take(b.server)
        a.server.show_settings(a.settings)
        b.server.show_settings(b.settings)

    @staticmethod
    def _resource(resource: str, site_name: str, name: str, slot: Slot) -> dict[str, Any]:
        host = slot.server.host_name
        production = name == "production"
        return {"id": resource, "name": site_name if production else f"{site_name}/{name}",
                "type": "Microsoft.Web/sites" if production else "Microsoft.Web/sites/slots",
                "location": "westeurope", "kind": "app",
                "properties": {"state": "Running", "defaultHostName": host, "hostNames": [host],
                               "enabledHostNames": [host], "enabled": True}}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}

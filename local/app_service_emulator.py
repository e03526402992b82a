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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

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


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    count: int
    headers: dict[str, str]


class AppServiceEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.sites: dict[tuple[str, str, str], Site] = {}
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

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
            found = self.sites.setdefault(key, Site({"production": Slot(SlotServer(self.host))}))
            for name in slots or []:
                found.slots.setdefault(name.lower(), Slot(SlotServer(self.host)))

    def slot_urls(self, subscription_id: str, resource_group: str, site: str) -> dict[str, str]:
        found = self.sites[(subscription_id.lower(), resource_group.lower(), site.lower())]
        return {name: f"http://{slot.server.host_name}" for name, slot in found.slots.items()}

    def inject_faults(self, method: str, path_regex: str, status: int, count: int = 1,
                      headers: dict[str, str] | None = None) -> None:
        """The next `count` requests matching answer `status` (e.g. 429 with Retry-After)."""
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), status, count, headers or {}))

    # -- ARM

    def handle(self, method: str, raw_path: str, raw: bytes, base: str) -> tuple[int, Any, dict[str, str]]:
        path = urlparse(raw_path).path
        with self._lock:
            self.requests.append((method, path))
            for fault in self._faults:
                if fault.count > 0 and fault.method == method and fault.path.search(path):
                    fault.count -= 1
                    return fault.status, _error("Injected", f"injected {fault.status}"), fault.headers
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return 400, _error("InvalidRequestContent", "body is not JSON"), {}
            if re.match(r"^/operations/[0-9a-f]+$", path):
                return 200, None, {}
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
                    slot = site.slots[slot_name] = Slot(SlotServer(self.host))
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
            slot.server.run_package(slot.settings.get(RUN_FROM_PACKAGE))
            return 200, {"id": f"{resource}/config/appsettings", "properties": dict(slot.settings)}, {}
        if rest == "/config/slotConfigNames" and name == "production":
            if method == "PUT":
                site.sticky = list((body or {}).get("properties", {}).get("appSettingNames") or [])
            return 200, {"properties": {"appSettingNames": list(site.sticky)}}, {}
        if rest == "/restart" and method == "POST":
            slot.server.run_package(slot.settings.get(RUN_FROM_PACKAGE))
            return 200, None, {}
        if rest == "/slotsswap" and method == "POST":
            target = str((body or {}).get("targetSlot") or "production").lower()
            other = site.slots.get(target)
            if other is None or other is slot:
                return 400, _error("BadRequest", f"cannot swap slot '{name}' with '{target}'"), {}
            self._swap(site, slot, other)
            op = uuid.uuid4().hex
            return 202, None, {"Location": f"{base}/operations/{op}?api-version={API_VERSION}", "Retry-After": "0"}
        return 404, _error("NotFound", f"{method} {rest or '/'} is not emulated"), {}

    @staticmethod
    def _swap(site: Site, a: Slot, b: Slot) -> None:
        """Non-sticky settings and the running content change places; sticky settings stay."""
        def split(settings: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
            sticky = {k: v for k, v in settings.items() if k in site.sticky}
            return sticky, {k: v for k, v in settings.items() if k not in site.sticky}

        a_sticky, a_moving = split(a.settings)
        b_sticky, b_moving = split(b.settings)
        a.settings, b.settings = {**b_moving, **a_sticky}, {**a_moving, **b_sticky}
        a.server.take(b.server)

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

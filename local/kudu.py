"""A slot's deployment endpoint (its SCM site, Kudu), as far as zip deployment goes.

Modelled on Kudu's OneDeploy (projectkudu/KuduLite, `Kudu.Services/Deployment/PushDeploymentController.cs`,
and `Kudu.Contracts/Deployment/DeployStatus.cs` of projectkudu/kudu):
- `POST /api/publish?type=zip[&async=true]` with the package as the body and an Entra bearer token
  (basic publishing credentials are off): 202 Accepted with `Location:
  /api/deployments/latest?deployer=OneDeploy&time=…` when `async=true`, else 200 once deployed;
  409 while another deployment runs, and 409 when `WEBSITE_RUN_FROM_PACKAGE` names a remote URL
  ("Run-From-Zip is set to a remote URL"); 400 for a `type` it does not know; 401 without a token.
- `GET /api/deployments/latest` (or `/{id}`): `status` as DeployStatus (0 Pending, 1 Building,
  2 Deploying, 3 Failed, 4 Success), `complete`, `status_text`.
A deployment takes `deploy_seconds`; then the site's content is the package and the slot restarts
(asynchronously, as App Service does).

With `flex`, the endpoint is a Flex Consumption app's, which differs (Azure/azure-dev
`cli/azd/pkg/azsdk/funcapp_host_client.go`, the client the Functions team pointed to in
Azure/azure-dev#3658, and the Flex Consumption docs, learn.microsoft.com azure-functions/flex-consumption-plan,
"Deployment"):
- `POST /api/publish` (`type`, when given, must be `zip`; `async` is not needed) answers 202 Accepted with
  the deployment id as a JSON string for its body and no `Location`: the deployment is followed at
  `/api/deployments/{id}`;
- that status answers 200 whether the deployment runs or ended (the body's `status` says which), and
  404 for a deployment that does not "come alive" at once (`not_found_looks`);
- the package goes to the app's deployment storage (`deployed` writes it there and may refuse with
  `DeploymentFailed`, e.g. storage answering 403), and the app restarts from it;
- an app setting `WEBSITE_RUN_FROM_PACKAGE` fails the deployment ("App setting WEBSITE_RUN_FROM_PACKAGE is
  not supported", the status text quoted in Azure/azure-functions-dotnet-worker#2712; the setting is
  "not used for deployments in Flex Consumption", functions-app-settings, "Flex Consumption plan
  deprecations").
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, urlparse

PENDING, BUILDING, DEPLOYING, FAILED, SUCCESS = 0, 1, 2, 3, 4


class DeploymentFailed(Exception):
    """Raised by `Kudu.deployed` when the platform cannot take the package (a Flex app's deployment
    storage refusing the write): the deployment ends Failed with this text."""


@dataclass
class KuduDeployment:
    id: str
    received: str
    due: float
    data: bytes
    status: int = PENDING
    status_text: str = ""
    end: str | None = None
    done: bool = False
    looks: int = 0
    """Status reads of this deployment so far (a Flex deployment is not found at first)."""


@dataclass
class Kudu:
    """One slot's SCM site. `settings()` gives the slot's app settings; `deployed(data)` is called when a
    deployment succeeds (the emulator stores the content and restarts the slot)."""

    settings: Callable[[], dict[str, str]]
    deployed: Callable[[bytes], None]
    deploy_seconds: float = 0.3
    deployments: list[KuduDeployment] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    host_name: str = ""
    flex: bool = False
    """A Flex Consumption app's endpoint (see the module's docstring)."""
    not_found_looks: int = 0
    """With `flex`: how many status reads of a new deployment answer 404 before it is listed."""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    def start(self, host: str = "127.0.0.1") -> Kudu:
        kudu = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _go(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = kudu.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _go

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host_name = f"{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, method: str, raw: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(raw)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append((method, url.path))
            self._advance()
            auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            if not auth.lower().startswith("bearer ") or len(auth) < 12:
                return 401, {"WWW-Authenticate": "Bearer"}, b""
            if url.path == "/api/publish" and method == "POST":
                return self._publish(query, body)
            if url.path.startswith("/api/deployments/") and method == "GET":
                return self._status(url.path.rsplit("/", 1)[1])
            return 404, {}, b"not found"

    def _publish(self, query: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        kind = (query.get("type") or "").lower()
        if kind != "zip" and not (self.flex and kind == ""):
            return 400, {}, f"type='{query.get('type')}' not recognized".encode()
        package = self.settings().get("WEBSITE_RUN_FROM_PACKAGE", "")
        if not self.flex and package and package != "1":
            return 409, {}, (b"Run-From-Zip is set to a remote URL using WEBSITE_RUN_FROM_PACKAGE or "
                             b"WEBSITE_USE_ZIP app setting. Deployment is not supported in this configuration.")
        if any(not d.done for d in self.deployments):
            return 409, {}, b"There is a deployment currently in progress. Please try again when it completes."
        deployment = KuduDeployment(uuid.uuid4().hex, _now(), time.monotonic() + self.deploy_seconds, body)
        self.deployments.append(deployment)
        if not self.flex and (query.get("async") or "").lower() != "true":
            deployment.due = 0
            self._advance()
            return (200, {}, b"") if deployment.status == SUCCESS else (400, {}, deployment.status_text.encode())
        timer = threading.Timer(self.deploy_seconds, self._finish)
        timer.daemon = True
        timer.start()
        if self.flex:
            return 202, {"Content-Type": "application/json"}, json.dumps(deployment.id).encode()
        location = f"/api/deployments/latest?deployer=OneDeploy&time={datetime.now(UTC):%Y-%m-%d_%H-%M-%SZ}"
        return 202, {"Location": location}, b""

    def _status(self, which: str) -> tuple[int, dict[str, str], bytes]:
        found = (self.deployments[-1] if self.deployments else None) if which == "latest" else next(
            (d for d in self.deployments if d.id == which), None)
        if found is None:
            return 404, {}, b"no deployment"
        found.looks += 1
        if self.flex and found.looks <= self.not_found_looks:
            return 404, {}, f"Deployment {which} not found.".encode()
        body = {"id": found.id, "status": found.status, "status_text": found.status_text, "complete": found.done,
                "active": found.status == SUCCESS and found is self.deployments[-1], "deployer": "OneDeploy",
                "received_time": found.received, "end_time": found.end, "site_name": self.host_name}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _finish(self) -> None:
        with self._lock:
            self._advance()

    def _advance(self) -> None:
        """Deployments finish when their time comes, whether anyone looks or not."""
        for deployment in self.deployments:
            if deployment.done:
                continue
            if time.monotonic() < deployment.due:
                deployment.status = DEPLOYING
                continue
            deployment.status, deployment.status_text = self._outcome(deployment.data)
            deployment.done, deployment.end = True, _now()

    def _outcome(self, data: bytes) -> tuple[int, str]:
        try:
            zipfile.ZipFile(BytesIO(data)).testzip()
        except zipfile.BadZipFile as exc:
            return FAILED, f"the package is not a zip file: {exc}"
        if self.flex and "WEBSITE_RUN_FROM_PACKAGE" in self.settings():
            return FAILED, ("App setting WEBSITE_RUN_FROM_PACKAGE is not supported for Flex Consumption apps, which "
                            "run from the package in their deployment storage: remove it and deploy again")
        try:
            self.deployed(data)
        except DeploymentFailed as exc:
            return FAILED, str(exc)
        return SUCCESS, ""


def _now() -> str:
    return datetime.now(UTC).isoformat()

"""Azure Pipelines through the Azure DevOps REST API (api-version 7.1), with httpx, as Slipway's managed identity.

Start a run (Runs - Run Pipeline), follow it and find it again (Builds - Get and Builds - List: a pipeline run is a
build, with the same id), cancel it (Builds - Update Build, `{"status": "cancelling"}`) and read the end of its logs
(Timeline - Get, Builds - Get Build Logs, Builds - Get Build Log). Paths and bodies follow MicrosoftDocs/
vsts-rest-api-specs, specification/pipelines/7.1/pipelines.json and specification/build/7.1/build.json.

Plain HTTP rather than the `azure-devops` client package: five endpoints, and that package is built on the
deprecated msrest; what matters here is the token, the error mapping and the paging.

Authentication is Microsoft Entra only: a token for Azure DevOps' resource, whose documented scope for the Azure
DevOps Services REST API is `499b84ac-1321-427f-aa17-267ca6975798/.default` (learn.microsoft.com/rest/api/azure/
devops/tokens; learn.microsoft.com/azure/devops/integrate/get-started/authentication/service-principal-managed-
identity), from the app's user-assigned managed identity, sent as a Bearer token to the organization's
`https://dev.azure.com/{organization}` (or `settings.azure_devops_url`, the local emulator). The identity must be a
user of the organization (Basic access) with the pipeline's Queue builds, Edit queue build configuration (a run gets
parameters), Stop builds and View builds permissions. No PAT is ever read or stored. The local stack
(`arm_auth == "local-emulator"`) sends a fixed token. Every failure is a `TargetError` whose message never holds a
token.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from shared.adapters import tls
from shared.adapters.azure_auth import EMULATOR_TOKEN, managed_identity
from shared.adapters.clock import clock_for
from shared.adapters.http_answers import retry_after as _retry_after
from shared.adapters.http_answers import scrub as _scrub
from shared.config import Settings
from shared.ports import PipelineRun, TargetError

API_VERSION = "7.1"
AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
"""The Azure DevOps resource's application id, as a token scope (see the module's docstring)."""
DEFAULT_URL = "https://dev.azure.com"
USER_AGENT = "slipway-release-manager"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
ORGANIZATION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$")
"""An organization name: letters, digits and hyphens, starting and ending with a letter or digit, at most 50
(learn.microsoft.com/azure/devops/organizations/accounts/rename-organization)."""
ORGANIZATION_URL = re.compile(r"^https://dev\.azure\.com/(?P<org>[^/?#]+)/?$", re.I)
FIND_PAGE = 100
FIND_PAGES = 10
"""`find_run` reads at most 1,000 builds of the pipeline queued in the last day, 100 a page."""
MAX_LOG_READS = 40
"""Log files read for one tail: the last lines of a run rarely span more than a few tasks."""
MAX_LINE = 2000
TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z ")
"""Azure Pipelines starts every log line with its UTC time (seven fractional digits)."""


def organization_name(organization: str) -> str:
    """The organization's name from its name or its `https://dev.azure.com/{organization}` URL."""
    text = organization.strip()
    match = ORGANIZATION_URL.match(text)
    name = match["org"] if match else text
    if not ORGANIZATION.match(name):
        raise TargetError(f"Azure DevOps: {organization!r} is neither an organization name nor "
                          f"https://dev.azure.com/{{organization}}", retryable=False)
    return name


class AzurePipelines:
    """AzurePipelinesPort on the Azure DevOps REST API."""

    def __init__(self, settings: Settings, credential: Any = None, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.settings = settings
        self._credential = credential
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=TIMEOUT, transport=self._transport, verify=tls.context(),
                                                follow_redirects=False,
                                                headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        return self._client

    def _token(self) -> str:
        """An Entra access token for Azure DevOps. azure-identity caches it until shortly before it expires."""
        if self._credential is None and self.settings.arm_auth == "local-emulator":
            return EMULATOR_TOKEN
        from azure.core.exceptions import AzureError, ClientAuthenticationError

        with self._lock:
            if self._credential is None:
                self._credential = managed_identity(self.settings)
            credential = self._credential
        try:
            return str(credential.get_token(AZURE_DEVOPS_SCOPE).token)
        except ClientAuthenticationError as exc:
            raise TargetError(f"Azure DevOps: Slipway's managed identity could not get a token for Azure DevOps "
                              f"({type(exc).__name__})", retryable=False) from None
        except AzureError as exc:
            raise TargetError(f"Azure DevOps: the managed identity endpoint failed ({type(exc).__name__})",
                              retryable=True) from None

    def _project_url(self, organization: str, project: str) -> str:
        base = (self.settings.azure_devops_url or DEFAULT_URL).rstrip("/")
        return f"{base}/{quote(organization_name(organization), safe='')}/{quote(project, safe='')}/_apis"

    # -- AzurePipelinesPort

    def run(self, organization: str, project: str, pipeline_id: int, branch: str,
            template_parameters: dict[str, str], variables: dict[str, str]) -> int:
        """Runs - Run Pipeline on `branch` (a full ref) with runtime parameters and queue-time variables (which the
        pipeline must mark settable at queue time); the new run's id, which is its build's id."""
        what = f"run of pipeline {pipeline_id} in {organization}/{project}"
        body: dict[str, Any] = {"resources": {"repositories": {"self": {"refName": branch}}},
                                "templateParameters": dict(template_parameters)}
        if variables:
            body["variables"] = {name: {"value": value, "isSecret": False} for name, value in variables.items()}
        answer = self._json(self._call("POST", f"{self._project_url(organization, project)}/pipelines/"
                                               f"{int(pipeline_id)}/runs", what, json=body), what)
        try:
            return int(answer["id"])
        except (KeyError, TypeError, ValueError):
            raise TargetError(f"Azure DevOps {what}: the answer has no run id", retryable=True) from None

    def get_run(self, organization: str, project: str, pipeline_id: int, run_id: int) -> PipelineRun:
        """The run as its build: status notStarted, postponed, inProgress, cancelling or completed; result
        succeeded, partiallySucceeded, failed or canceled once completed."""
        what = f"read of run {run_id} in {organization}/{project}"
        build = self._json(self._call("GET", f"{self._project_url(organization, project)}/build/builds/"
                                             f"{int(run_id)}", what), what)
        definition = build.get("definition") if isinstance(build.get("definition"), dict) else {}
        if definition and definition.get("id") is not None and int(definition["id"]) != int(pipeline_id):
            raise TargetError(f"Azure DevOps {what}: run {run_id} belongs to pipeline {definition.get('id')}, not "
                              f"{pipeline_id}", retryable=False)
        return _run(build, what)

    def find_run(self, organization: str, project: str, pipeline_id: int, parameter: str,
                 marker: str) -> PipelineRun | None:
        """The oldest run of the pipeline queued in the last day whose runtime parameter `parameter` is `marker`.

        The Runs API sets no name and its list leaves `templateParameters` out (MicrosoftDocs/vsts-rest-api-specs
        issue 579), so the builds of the pipeline are listed (Builds - List, `definitions`, newest first by queue
        time: `minTime` filters on the time `queryOrder` names, and only queue time covers builds that have not
        started or finished), and each build's `templateParameters` is compared. A listed build without them is
        read on its own (Builds - Get has them)."""
        since = (clock_for(self.settings).now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        what = f"list of runs of pipeline {pipeline_id} in {organization}/{project}"
        url = f"{self._project_url(organization, project)}/build/builds"
        params: dict[str, Any] = {"definitions": str(int(pipeline_id)), "minTime": since,
                                  "queryOrder": "queueTimeDescending", "$top": FIND_PAGE}
        found: dict[str, Any] | None = None
        for _ in range(FIND_PAGES):
            response = self._call("GET", url, what, params=params)
            builds = self._json(response, what).get("value") or []
            for build in builds:
                if not isinstance(build, dict):
                    continue
                parameters = build.get("templateParameters")
                if parameters is None and build.get("id") is not None:
                    parameters = self._json(self._call("GET", f"{url}/{int(build['id'])}", what), what).get(
                        "templateParameters")
                if isinstance(parameters, dict) and parameters.get(parameter) == marker:
                    found = build  # keep going: the oldest match is the one started first
            token = response.headers.get("x-ms-continuationtoken")
            if not token or not builds:
                break
            params = {**params, "continuationToken": token}
        return _run(found, what) if found is not None else None

    def cancel(self, organization: str, project: str, run_id: int) -> None:
        """Ask the run's build to cancel. Idempotent: a run that already completed is left as it is."""
        what = f"cancel of run {run_id} in {organization}/{project}"
        url = f"{self._project_url(organization, project)}/build/builds/{int(run_id)}"
        if self._json(self._call("GET", url, what), what).get("status") == "completed":
            return
        try:
            self._call("PATCH", url, what, json={"status": "cancelling"})
        except TargetError as exc:
            if exc.retryable:
                raise
            if self._json(self._call("GET", url, what), what).get("status") != "completed":
                raise  # it completed meanwhile: nothing is left to cancel; otherwise the refusal stands

    def log_lines(self, organization: str, project: str, run_id: int, limit: int) -> list[str]:
        """The last `limit` lines of the run's task logs, in the order the timeline gives jobs and their tasks,
        each prefixed with `[job]` (the lines' timestamps dropped). A job's own log repeats its tasks' lines, so
        only task logs are read, and of each only the lines needed (`startLine` / `endLine`)."""
        if limit <= 0:
            return []
        what = f"logs of run {run_id} in {organization}/{project}"
        url = f"{self._project_url(organization, project)}/build/builds/{int(run_id)}"
        records = self._json(self._call("GET", f"{url}/timeline", what), what).get("records") or []
        listed = self._json(self._call("GET", f"{url}/logs", what), what).get("value") or []
        counts = {int(log["id"]): log.get("lineCount") for log in listed if isinstance(log, dict) and "id" in log}
        tasks = _task_logs([r for r in records if isinstance(r, dict)])
        chunks: list[list[str]] = []
        need = limit
        for job, log_id in reversed(tasks[-MAX_LOG_READS:]):
            if need <= 0:
                break
            if log_id not in counts:
                continue  # not finished: no log yet
            count = counts[log_id]
            params: dict[str, Any] = {}
            if isinstance(count, int):
                if count <= 0:
                    continue
                # One line more than needed, whether lines count from 0 or 1 (build.json leaves it open); the
                # surplus is dropped below.
                params = {"startLine": max(0, count - need), "endLine": count}
            lines = self._json(self._call("GET", f"{url}/logs/{log_id}", what, params=params), what).get("value")
            if not isinstance(lines, list):
                raise TargetError(f"Azure DevOps {what}: log {log_id} came without lines", retryable=True)
            kept = [f"[{job}] {TIMESTAMP.sub('', str(line).rstrip(chr(13)))[:MAX_LINE]}" for line in lines][-need:]
            chunks.append(kept)
            need -= len(kept)
        return [line for chunk in reversed(chunks) for line in chunk]

    # -- a finished build's package (build hooks)

    def build(self, organization: str, project: str, build_id: int) -> dict[str, Any]:
        """Builds - Get: the build as Azure DevOps has it (`status`, `result`, `buildNumber`, `definition.name`,
        `project.name`, `sourceBranch`, `sourceVersion`)."""
        what = f"read of build {build_id} in {organization}/{project}"
        return self._json(self._call("GET", f"{self._project_url(organization, project)}/build/builds/"
                                            f"{int(build_id)}", what), what)

    def artifacts(self, organization: str, project: str, build_id: int) -> list[dict[str, Any]]:
        """Artifacts - List (build.json `BuildArtifact`: `name`, `resource.type`, `resource.downloadUrl`)."""
        what = f"list of artifacts of build {build_id} in {organization}/{project}"
        found = self._json(self._call("GET", f"{self._project_url(organization, project)}/build/builds/"
                                             f"{int(build_id)}/artifacts", what), what).get("value")
        return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []

    def download_artifact(self, organization: str, project: str, build_id: int, name: str, out: BinaryIO,
                          limit: int) -> int:
        """Artifacts - Get Artifact with `$format=zip` (the `downloadUrl` Artifacts - List gives, built here on
        the organization's own URL so the token never goes elsewhere): the artifact as a zip whose one folder is
        the artifact's name, written to `out`; its size. More than `limit` bytes is a TargetError."""
        what = f"download of artifact {name!r} of build {build_id} in {organization}/{project}"
        token = self._token()
        url = f"{self._project_url(organization, project)}/build/builds/{int(build_id)}/artifacts"
        size = 0
        try:
            with self._http().stream("GET", url, params={"artifactName": name, "$format": "zip",
                                                         "api-version": API_VERSION},
                                     headers={"Authorization": f"Bearer {token}",
                                              "Accept": "application/zip"}) as response:
                if response.status_code >= 300 or response.status_code == 203:
                    response.read()
                    raise _error(response, what, token)
                for chunk in response.iter_bytes(1024 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise TargetError(f"Azure DevOps {what}: larger than {limit} bytes", retryable=False)
                    out.write(chunk)
        except httpx.TimeoutException as exc:
            raise TargetError(f"Azure DevOps {what}: timed out ({type(exc).__name__})", retryable=True) from None
        except httpx.HTTPError as exc:
            raise TargetError(f"Azure DevOps {what}: {type(exc).__name__}: {_scrub(str(exc), token)}",
                              retryable=True) from None
        return size

    # -- HTTP

    def _call(self, method: str, url: str, what: str, *, json: Any = None,
              params: dict[str, Any] | None = None) -> httpx.Response:
        token = self._token()
        try:
            response = self._http().request(method, url, json=json,
                                            params={**(params or {}), "api-version": API_VERSION},
                                            headers={"Authorization": f"Bearer {token}"})
        except httpx.TimeoutException as exc:
            raise TargetError(f"Azure DevOps {what}: timed out ({type(exc).__name__})", retryable=True) from None
        except httpx.HTTPError as exc:
            raise TargetError(f"Azure DevOps {what}: {type(exc).__name__}: {_scrub(str(exc), token)}",
                              retryable=True) from None
        if response.status_code >= 300 or response.status_code == 203:
            raise _error(response, what, token)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise TargetError(f"Azure DevOps {what}: the answer ({response.status_code}) is not JSON",
                              retryable=True) from None
        if not isinstance(body, dict):
            raise TargetError(f"Azure DevOps {what}: unexpected answer {type(body).__name__}", retryable=True)
        return body


def _task_logs(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(job name, log id) of every Task record with a log: jobs by start time, then by order; tasks by order."""
    jobs = {r.get("id"): r for r in records if r.get("type") == "Job"}

    def job_key(job: dict[str, Any]) -> tuple[str, int, str]:
        return (str(job.get("startTime") or "9999"), int(job.get("order") or 0), str(job.get("name") or ""))

    found = []
    for job_id, job in sorted(jobs.items(), key=lambda item: job_key(item[1])):
        tasks = sorted((r for r in records if r.get("type") == "Task" and r.get("parentId") == job_id),
                       key=lambda r: int(r.get("order") or 0))
        for task in tasks:
            log = task.get("log")
            if isinstance(log, dict) and isinstance(log.get("id"), int):
                found.append((str(job.get("name") or "job"), int(log["id"])))
    return found


def _run(build: dict[str, Any], what: str) -> PipelineRun:
    links = build.get("_links")
    web = links.get("web") if isinstance(links, dict) else None
    href = web.get("href") if isinstance(web, dict) else None
    try:
        return PipelineRun(int(build["id"]), str(build["status"]), build.get("result"), str(href or ""))
    except (KeyError, TypeError, ValueError):
        raise TargetError(f"Azure DevOps {what}: a run without id or status", retryable=True) from None


def _error(response: httpx.Response, what: str, token: str) -> TargetError:
    """Azure DevOps' answer as a TargetError. 429 (honouring Retry-After, integrate/concepts/rate-limits) and 5xx
    are retryable; 400, 401, 403, 404 and the rest are not, with Azure DevOps' `message`."""
    status = response.status_code
    if status == 203 or 300 <= status < 400:
        # Azure DevOps answers a credential it does not accept for a web request with a sign-in page (203, or a
        # redirect to it) rather than 401.
        return TargetError(f"Azure DevOps {what}: {status}: a sign-in page instead of an answer (the identity's token "
                           f"was not accepted)", retryable=False)
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or "")
    message = _scrub(" ".join(message.split())[:500], token) or response.reason_phrase
    text = f"Azure DevOps {what}: {status} {message}"
    if status == 429 or status >= 500:
        return TargetError(text, retryable=True, retry_after=_retry_after(response.headers.get("retry-after")))
    if status == 401:
        text += (" (Slipway's managed identity is not a user of the organization, or its token was refused: add it "
                 "under Organization settings > Users)")
    elif status == 403:
        text += (" (the identity needs Queue builds, Edit queue build configuration, Stop builds and View builds on "
                 "the pipeline)")
    elif status == 404:
        text += " (no such organization, project, pipeline or run, or the identity cannot see it)"
    return TargetError(text, retryable=False)


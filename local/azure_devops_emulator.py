"""An Azure DevOps REST emulator for the part of Azure Pipelines and classic Release that a release manager uses.

Endpoints, each under `/{organization}/{project}/_apis/` (the project by name or id, each segment percent-decoded on
its own) and each with `api-version` (7.0 or 7.1, `-preview[.N]` allowed) in its query or, as the official clients
send it, in the `Accept` header (`application/json;api-version=7.1-preview.4`):

* `POST pipelines/{pipelineId}/runs` (Runs - Run Pipeline; body RunPipelineParameters: `resources.repositories.self
  .refName`, `templateParameters`, `variables`) answers 200 with the new Run; `GET pipelines/{pipelineId}/runs/{runId}`
  (Runs - Get).
* `GET build/builds` (Builds - List: `definitions`, `minTime`, `maxTime`, `queryOrder`, `statusFilter`,
  `resultFilter`, `buildIds`, `$top`, `continuationToken` with the `x-ms-continuationtoken` header),
  `GET build/builds/{buildId}` (Builds - Get), `PATCH build/builds/{buildId}` with `{"status": "cancelling"}`
  (Builds - Update Build).
* `GET build/builds/{buildId}/timeline[/{timelineId}]` (Timeline - Get), `GET build/builds/{buildId}/logs`
  (Builds - Get Build Logs) and `GET build/builds/{buildId}/logs/{logId}` with `startLine` / `endLine` (Builds - Get
  Build Log; JSON `{count, value: [lines]}` for `Accept: application/json`, text otherwise).
* `GET build/builds/{buildId}/artifacts` (Artifacts - List: `{count, value: [BuildArtifact]}`) and, with
  `artifactName`, Artifacts - Get Artifact: the BuildArtifact, or with `$format=zip` (or `Accept: application/zip`) the
  artifact's files zipped under a folder of its name, as a Container artifact's `resource.downloadUrl` gives them
  (build.json; the `downloadUrl` shape as in the service hook sample of learn.microsoft.com/azure/devops/service-hooks/
  events, `...?api-version=...&$format=zip`). Seed a finished build with its artifacts by `add_build`.
* `GET release/definitions` (Definitions - List: `searchText`, `isExactNameMatch`, `$expand`, `queryOrder`,
  `definitionIdFilter`, `isDeleted`, `$top`, `continuationToken` with the `x-ms-continuationtoken` header) and
  `GET release/definitions/{definitionId}` (Definitions - Get). Azure DevOps Services serves the Release area on
  its own host (`vsrm.dev.azure.com/{organization}`); the emulator serves it on its own address, beside the build
  routes, as an Azure DevOps Server does on its one host (the CLI's `release_base` leaves such hosts as given).
* A small results page per run at `/{organization}/{project}/_build/results?buildId={id}`, for people.

A run of a pipeline is a build: the Runs API's run id is the build id, and a run's `web` link is the build's
results page (`_build/results?buildId={runId}`, as the Runs - Get responses in MicrosoftDocs/vsts-rest-api-specs
issue 579 show).

Seed it with `add_organization`, `add_project`, `add_pipeline`, `add_release_definition` (a definition document as
`GET release/definitions/{id}` returns it or the portal exports it), `add_token` (an identity's Entra bearer token, the
organizations it is a user of, and its Queue builds / Stop builds permissions) and `add_pat` (a personal access
token, sent as `Authorization: Basic base64(user:PAT)` with any user name, limited to its organizations and its
scopes). A run goes notStarted →
inProgress → completed with the pipeline's seeded `outcome` after its `seconds`, on the emulator's clock
(`advance()` moves it; the local stack may replace `now` with the app's scaled clock). Tests make it misbehave
with `inject` and read what it was asked in `requests`.

Sources (cited beside the behaviour they model):
* MicrosoftDocs/vsts-rest-api-specs: specification/pipelines/7.1/pipelines.json (Runs_Run Pipeline, Runs_Get;
  Run, RunPipelineParameters, Variable) and specification/build/7.1/build.json (Builds_List, Builds_Get,
  Builds_Update Build, Builds_Get Build Logs, Builds_Get Build Log, Timeline_Get; Build, BuildLog,
  TimelineRecord), and specification/release/7.1/release.json (Definitions_List, Definitions_Get, ReleaseDefinition;
  its httpExamples/definitions for the listed shape; its securityDefinitions: "Personal access token. Use any value
  for the user name and the token as the password", and the scope each operation needs).
* learn.microsoft.com/azure/devops: organizations/accounts/use-personal-access-tokens-to-authenticate (a PAT is
  the password of Basic authentication; the user name is ignored; a PAT is limited to its organizations and scopes),
  integrate/concepts/rate-limits (429, Retry-After, X-RateLimit-*),
  pipelines/process/runtime-parameters (parameters, types, `values`, defaults), pipelines/security/inputs
  ("Limit variables that can be set at queue time"), pipelines/process/variables (queue-time variables).
Error messages the documentation does not spell out are Azure DevOps' as seen in public issue threads (cited);
where no wording could be found the message is marked "modelled". Every error has Azure DevOps' shape:
`{"$id": "1", "innerException": null, "message", "typeName", "typeKey", "errorCode": 0, "eventId": 3000}`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import html
import io
import itertools
import json
import re
import threading
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from local.rest_emulator import Fault, Reply, Request, RestEmulator

API_VERSIONS = ("7.0", "7.1")
LATEST_VERSION = "7.2"
API_VERSION = re.compile(r"^(?P<version>\d+\.\d+)(?:-preview(?:\.\d+)?)?$")
KINDS = ("run", "get", "builds", "build", "cancel", "timeline", "logs", "log", "definitions", "definition",
         "artifacts")
FAULTS = ("throttle", "error", "timeout", "lost")
QUERY_ORDERS = ("finishTimeAscending", "finishTimeDescending", "queueTimeDescending", "queueTimeAscending",
                "startTimeDescending", "startTimeAscending")
STATUSES = ("none", "inProgress", "completed", "cancelling", "postponed", "notStarted", "all")
RESULTS = ("none", "succeeded", "partiallySucceeded", "failed", "canceled")
"""build.json, Builds_List: `queryOrder`, `statusFilter` and `resultFilter` are each one value of these enums."""
OUTCOMES = ("succeeded", "partiallySucceeded", "failed")
PARAMETER_TYPES = ("string", "boolean", "number")
"""The runtime parameter types a run can be given as text here (runtime-parameters, "Parameter data types";
object, step and job list types cannot be passed as a string and are not modelled)."""
DEFAULT_TOP = 1000
"""Builds - List without `$top`: modelled as 1,000 builds a page (the documentation gives no default)."""
RATE_DELAY = 2
SCOPES_NEEDED = {"run": "vso.build_execute", "cancel": "vso.build_execute", "get": "vso.build", "builds": "vso.build",
                 "build": "vso.build", "timeline": "vso.build", "logs": "vso.build", "log": "vso.build",
                 "artifacts": "vso.build",
                 "definitions": "vso.release", "definition": "vso.release"}
"""The OAuth scope each operation names under `security` in build.json, pipelines.json and release.json; a PAT
must hold it (or a scope that includes it, `IMPLIED_SCOPES`)."""
IMPLIED_SCOPES = {"vso.build_execute": ("vso.build",), "vso.release_execute": ("vso.release",),
                  "vso.release_manage": ("vso.release", "vso.release_execute")}
"""release.json's scope descriptions: Release (read, write & execute) and (read, write, execute & manage) each
"grants the ability to read" besides; build.json's Build (read & execute) likewise reads."""
FULL_ACCESS = "app_token"
"""The scope of a PAT made with "Full access" (Azure DevOps' PAT lifecycle API names it so)."""
SCOPE = re.compile(r"^(app_token|vso\.[a-z_]+)$")
RELEASE_EXPANDS = ("none", "environments", "artifacts", "triggers", "variables", "tags", "lastRelease")
"""release.json, Definitions_List `$expand` (ReleaseDefinitionExpands): the parts the list leaves out unless asked."""
RELEASE_QUERY_ORDERS = ("idAscending", "idDescending", "nameAscending", "nameDescending")
RELEASE_LIST_FIELDS = ("source", "id", "revision", "name", "description", "createdBy", "createdOn", "modifiedBy",
                       "modifiedOn", "path", "variableGroups", "releaseNameFormat", "url", "_links", "properties")
"""What Definitions - List answers per definition without `$expand` (release.json, httpExamples/definitions/
GET__ListAllReleaseDefinitions.json)."""
RELEASE_UNMODELLED = ("artifactType", "artifactSourceId", "path", "tagFilter", "propertyFilters",
                      "searchTextContainsFolderName")
"""Definitions - List filters the emulator does not model: refused rather than ignored, so a caller relying on one
learns it here instead of getting every definition."""
RELEASE_NAMESPACE = "Microsoft.VisualStudio.Services.ReleaseManagement.WebApi.Exceptions"
RELEASE_ASSEMBLY = "Microsoft.VisualStudio.Services.ReleaseManagement.WebApi"
TF_UNAUTHORIZED = "TF400813: The user '{user}' is not authorized to access this resource."
"""Azure DevOps' answer to a caller who is not a user of the organization (wording as seen in public threads;
status 401)."""
VARIABLE_NAME = re.compile(r"^[A-Za-z0-9._]+$")
RESERVED_PREFIXES = ("endpoint", "input", "secret", "path", "securefile")
"""pipelines/process/variables, "Variable naming restrictions": letters, numbers, `.` and `_`; not starting with
these prefixes."""



@dataclass
class Identity:
    token: str
    name: str
    id: str
    orgs: set[str] | None
    """Organizations (lower-case) the identity was added to as a user; None: every seeded one."""
    queue: bool
    """The pipelines' Queue builds permission."""
    stop: bool
    """The pipelines' Stop builds permission."""
    configure: bool
    """The pipelines' Edit queue build configuration permission: giving a run parameters or variables."""
    scopes: frozenset[str] | None = None
    """A PAT's scopes (`app_token`: full access); None for an Entra bearer token, which scopes do not limit here."""

    def may(self, scope: str) -> bool:
        """Whether this caller's token covers `scope` (a PAT needs it, or a scope that includes it)."""
        if self.scopes is None or FULL_ACCESS in self.scopes:
            return True
        return any(s == scope or scope in IMPLIED_SCOPES.get(s, ()) for s in self.scopes)


@dataclass
class ReleaseDefinition:
    id: int
    org: str
    project: str
    document: dict[str, Any]
    """The definition as seeded, with the fields the server owns (id, revision, dates, people) set."""


@dataclass
class Job:
    name: str
    lines: list[str]


@dataclass
class Pipeline:
    id: int
    org: str
    project: str
    name: str
    parameters: dict[str, dict[str, Any]]
    variables: dict[str, dict[str, Any]]
    branches: dict[str, str]
    """`refs/heads/...` / `refs/tags/...` → commit."""
    outcome: str
    jobs: list[Job]
    seconds: float
    queue_seconds: float
    revision: int = 1


@dataclass
class Run:
    id: int
    pipeline: Pipeline
    number: str
    ref: str
    sha: str
    template_parameters: dict[str, str]
    variables: dict[str, dict[str, Any]]
    requested_by: Identity
    created: datetime
    outcome: str
    seconds: float
    queue_seconds: float
    jobs: list[Job]
    plan_id: str
    cancel_at: datetime | None = None
    cancel_requested: datetime | None = None
    artifacts: dict[str, dict[str, bytes]] = dataclass_field(default_factory=dict)
    """Published artifacts: name → (path inside the artifact → bytes)."""

    @property
    def started(self) -> datetime:
        return self.created + timedelta(seconds=self.queue_seconds)

    @property
    def natural_end(self) -> datetime:
        return self.started + timedelta(seconds=self.seconds)

    def finished_at(self) -> datetime:
        return min(self.natural_end, self.cancel_at) if self.cancel_at is not None else self.natural_end

    def status_at(self, now: datetime) -> str:
        if now >= self.finished_at():
            return "completed"
        if self.cancel_requested is not None:
            return "cancelling"
        return "inProgress" if now >= self.started else "notStarted"

    def result_at(self, now: datetime) -> str | None:
        if now < self.finished_at():
            return None
        if self.cancel_at is not None and self.cancel_at < self.natural_end:
            return "canceled"
        return self.outcome


class AzureDevOpsEmulator(RestEmulator):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._offset = 0.0
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC) + timedelta(seconds=self._offset)
        """The emulator's clock: wall time moved on by `advance()`; the local stack may give it the app's clock."""
        self.cancel_seconds = 2.0
        """A cancel request turns the build `cancelling`; it completes as canceled this long after."""
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.list_template_parameters = True
        """Builds - List shows each build's `templateParameters`; False leaves them out of the list (Builds - Get
        still has them), as the Runs - List API does (vsts-rest-api-specs issue 579)."""
        self.requests: list[Request] = []
        self.orgs: dict[str, str] = {}
        """lower-case name → name."""
        self.projects: dict[tuple[str, str], str] = {}
        """(org, lower-case project) → project id."""
        self.project_names: dict[tuple[str, str], str] = {}
        self.identities: dict[str, Identity] = {}
        """Entra bearer token → identity."""
        self.pats: dict[str, Identity] = {}
        """Personal access token → identity."""
        self.release_definitions: dict[tuple[str, str, int], ReleaseDefinition] = {}
        """(org, lower-case project, id) → release definition."""
        self.pipelines: dict[tuple[str, str, int], Pipeline] = {}
        self.runs: dict[int, Run] = {}
        self.started_runs = 0
        """How many run requests created a run."""
        self._faults: dict[str, list[Fault]] = {kind: [] for kind in KINDS}
        self._ids = itertools.count(4101)
        self._pipeline_ids = itertools.count(11)
        self._lock = threading.RLock()

    # -- seeding and test hooks

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock on (runs progress on it)."""
        with self._lock:
            self._offset += seconds

    def add_organization(self, org: str) -> None:
        # "Organization names must start and end with a letter or number and contain only letters, numbers and
        # hyphens" (learn.microsoft.com/azure/devops/organizations/accounts/rename-organization).
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?", org):
            raise ValueError(f"not an organization name: {org!r}")
        with self._lock:
            self.orgs[org.lower()] = org

    def add_project(self, org: str, project: str) -> str:
        """A project of `org` (added if missing); its id."""
        with self._lock:
            if org.lower() not in self.orgs:
                self.add_organization(org)
            key = (org.lower(), project.lower())
            if key not in self.projects:
                self.projects[key] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org}/{project}".lower()))
                self.project_names[key] = project
            return self.projects[key]

    def add_token(self, token: str, *, name: str = "slipway-identity", orgs: list[str] | None = None,
                  queue: bool = True, stop: bool = True, configure: bool = True) -> None:
        """An identity's Entra bearer token: a user of `orgs` (every seeded organization when None) with the
        pipelines' Queue builds, Stop builds and Edit queue build configuration permissions unless told otherwise."""
        with self._lock:
            self.identities[token] = Identity(token, name, str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
                                              {o.lower() for o in orgs} if orgs is not None else None, queue, stop,
                                              configure)

    def add_pat(self, pat: str, *, name: str = "pat-user", orgs: list[str] | None = None,
                scopes: list[str] | None = None) -> None:
        """A personal access token of the user `name`, valid in `orgs` (every seeded organization when None: "All
        accessible organizations") with `scopes` (Full access when None; for example `["vso.release"]`, Release
        (read)). Its user holds the pipelines' permissions; the PAT's scopes limit what it may call."""
        chosen = [FULL_ACCESS] if scopes is None else list(scopes)
        bad = [s for s in chosen if not SCOPE.match(s)]
        if not pat or bad:
            raise ValueError(f"a PAT needs a value and scopes such as vso.release or app_token, not {bad}")
        with self._lock:
            self.pats[pat] = Identity(pat, name, str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
                                      {o.lower() for o in orgs} if orgs is not None else None, True, True, True,
                                      frozenset(chosen))

    def add_release_definition(self, org: str, project: str, document: dict[str, Any]) -> int:
        """A classic release definition of `project` (added if missing), from the JSON `GET release/definitions/
        {id}` answers or the portal exports. Like Azure DevOps, the emulator owns `id` (the next in the project),
        `url`, `_links`, the creation and change dates and people (kept when the document has usable ones) and
        `revision` (kept when a positive number). Returns its id."""
        if not isinstance(document, dict) or not isinstance(document.get("name"), str) or not document["name"]:
            raise ValueError("a release definition is a JSON object with a name")
        with self._lock:
            self.add_project(org, project)
            key = (org.lower(), project.lower())
            definition_id = max((k[2] for k in self.release_definitions if k[:2] == key), default=0) + 1
            body = copy.deepcopy(document)
            now = _iso(self.now())
            who = {"displayName": "Emulator Seeder", "id": str(uuid.uuid5(uuid.NAMESPACE_OID, "emulator-seeder")),
                   "uniqueName": "seeder@emulator.local"}
            for field, value in (("createdOn", now), ("modifiedOn", now), ("createdBy", who), ("modifiedBy", who)):
                if not body.get(field) or not isinstance(body[field], type(value)):
                    body[field] = value
            revision = body.get("revision")
            body.update(id=definition_id, isDeleted=False,
                        revision=revision if isinstance(revision, int) and revision > 0 else 1,
                        path=body.get("path") if isinstance(body.get("path"), str) else "\\")
            body.pop("_links", None)
            body.pop("url", None)
            self.release_definitions[(*key, definition_id)] = ReleaseDefinition(
                definition_id, self.orgs[key[0]], self.project_names[key], body)
            return definition_id

    def add_pipeline(self, org: str, project: str, name: str, *,
                     parameters: dict[str, dict[str, Any]] | None = None,
                     variables: dict[str, dict[str, Any]] | None = None,
                     branches: tuple[str, ...] | list[str] = ("main",), tags: tuple[str, ...] | list[str] = (),
                     outcome: str = "succeeded", steps: list[str] | None = None,
                     jobs: dict[str, list[str]] | None = None, seconds: float = 30.0,
                     queue_seconds: float = 2.0) -> int:
        """A YAML pipeline with its runtime `parameters` (`{name: {"type": "string"|"boolean"|"number",
        "default": ..., "values": [...]}}`; a parameter without a default must be given) and its UI `variables`
        (`{name: {"value": "...", "settable": bool}}`: only settable ones may be set at queue time). Its runs
        take `queue_seconds` queued, then `seconds` running, and end `outcome`; they log `steps` (one job `Job`)
        or `jobs` (name → lines, in order). Returns the pipeline's id."""
        for pname, spec in (parameters or {}).items():
            if spec.get("type", "string") not in PARAMETER_TYPES:
                raise ValueError(f"parameter {pname}: type must be one of {PARAMETER_TYPES}")
        for vname in variables or {}:
            if not VARIABLE_NAME.match(vname) or vname.lower().startswith(RESERVED_PREFIXES):
                raise ValueError(f"not a variable name: {vname!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        with self._lock:
            self.add_project(org, project)
            pipeline_id = next(self._pipeline_ids)
            refs = {f"refs/heads/{b}": _sha(f"{org}/{project}/{name}@{b}") for b in branches}
            refs.update({f"refs/tags/{t}": _sha(f"{org}/{project}/{name}@tag:{t}") for t in tags})
            job_list = [Job(n, list(lines)) for n, lines in (jobs or {"Job": list(steps or ["Hello from Azure"])})
                        .items()]
            self.pipelines[(org.lower(), project.lower(), pipeline_id)] = Pipeline(
                pipeline_id, self.orgs[org.lower()], self.project_names[(org.lower(), project.lower())], name,
                dict(parameters or {}), dict(variables or {}), refs, outcome, job_list, float(seconds),
                float(queue_seconds))
            return pipeline_id

    def add_build(self, org: str, project: str, pipeline_id: int, *, branch: str = "main",
                  artifacts: dict[str, dict[str, bytes]] | None = None) -> Run:
        """A run of the pipeline that has already finished with the pipeline's outcome (as a CI build that a
        service hook then reports), with its published `artifacts` (name → files)."""
        with self._lock:
            pipeline = self.pipelines[(org.lower(), project.lower(), pipeline_id)]
            seeder = Identity("", "Build Service", str(uuid.uuid5(uuid.NAMESPACE_OID, "build-service")), None,
                              True, True, True)
            run = self._new_run(pipeline, f"refs/heads/{branch}", {}, {}, seeder)
            run.created = self.now() - timedelta(seconds=pipeline.seconds + pipeline.queue_seconds + 1)
            run.artifacts = {name: dict(files) for name, files in (artifacts or {}).items()}
            return run

    def runs_of(self, org: str, project: str, pipeline_id: int) -> list[Run]:
        with self._lock:
            return [r for r in self.runs.values() if r.pipeline.id == pipeline_id
                    and (r.pipeline.org.lower(), r.pipeline.project.lower()) == (org.lower(), project.lower())]

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next `count` requests of `kind` (run, get, builds, build, cancel, timeline, logs, log) misbehave:
        `throttle` (429 with Retry-After, `seconds` or 2), `error` (500), `timeout` (held `seconds`, default
        `timeout_seconds`, then answered) or `lost` (the request takes effect, then the answer is a 503: a run
        started although the caller saw the request fail)."""
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

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = unquote(parsed.path)
        segments = _decoded(parsed.path)
        pairs = parse_qsl(parsed.query, keep_blank_values=True)
        query = dict(pairs)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self.requests.append(Request(method, path, query, body, dict(headers)))
        if segments is not None and segments[2:] == ["_build", "results"] and method == "GET":
            return self._page(segments[0], segments[1], query)
        if segments is None or len(segments) < 4 or segments[2] != "_apis":
            return _error(404, "The resource cannot be found.", "ResourceNotFoundException")  # modelled
        match = {"org": segments[0], "project": segments[1], "rest": "/".join(segments[3:])}
        identity = self._identity(lowered.get("authorization"))
        if isinstance(identity, tuple):
            return identity
        kind, ids = _route(method, match["rest"])
        if kind is not None and not identity.may(SCOPES_NEEDED[kind]):
            # A PAT without the operation's scope is answered 401 Unauthorized, not 403, as public threads show
            # (microsoft/azure-devops-node-api#208 for the Release API, MicrosoftDocs/azure-devops-docs#10439 for a
            # PAT with Release (read) only, MicrosoftDocs/vsts-rest-api-specs#441); the body is modelled as the one
            # for an unknown token.
            return self._unauthorized()
        if len(pairs) != len(query):
            # Every parameter these endpoints take is one value (build.json: `definitions` is one comma-separated
            # string); a repeated one is refused (modelled wording).
            repeated = sorted({k for k, _ in pairs if [p for p, _ in pairs].count(k) > 1})
            return _error(400, f"The query parameter(s) {', '.join(repeated)} may be given once only.",
                          "InvalidQueryParameterException")
        problem = _version_problem(method, query.get("api-version") or _accept_version(lowered.get("accept")))
        if problem is not None:
            return problem
        org = self.orgs.get(match["org"].lower())
        if org is None:
            # An organization that does not exist (modelled: Azure DevOps answers 404 for an unknown
            # organization's URL).
            return _error(404, f"The organization '{match['org']}' could not be found.",
                          "OrganizationNotFoundException")
        if identity.orgs is not None and org.lower() not in identity.orgs:
            return _error(401, TF_UNAUTHORIZED.format(user=identity.id), "UnauthorizedRequestException")
        project_key = (org.lower(), match["project"].lower())
        if project_key not in self.projects:
            by_id = next((k for k, pid in self.projects.items() if k[0] == org.lower() and pid == match["project"]),
                         None)
            if by_id is None:
                # "TF200016: The following project does not exist: {name}. Verify that the name of the project is
                # correct and that the project exists on the specified Azure DevOps Server." (ProjectDoesNotExist-
                # WithNameException, as seen in public threads)
                return _error(404, f"TF200016: The following project does not exist: {match['project']}. Verify that "
                                   f"the name of the project is correct and that the project exists on the specified "
                                   f"Azure DevOps Server.", "ProjectDoesNotExistWithNameException")
            project_key = by_id
        if kind is None:
            return _error(404, "The controller for path '/_apis/" + match["rest"] + "' was not found or does not "
                          "implement IController.", "HttpException")  # modelled: an unknown route

        def answer() -> Reply:
            assert kind is not None and not isinstance(identity, tuple)
            return self._answer(kind, ids, project_key, query, body, lowered, identity, base)

        return self._with_fault(kind, answer)

    def _with_fault(self, kind: str, answer: Callable[[], Reply]) -> Reply:
        with self._lock:
            fault = self._take_fault(kind)
        if fault is None:
            return answer()
        if fault.fault == "timeout":
            self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            return answer()
        if fault.fault == "lost":
            answer()  # it happened; the caller never hears so
            return 503, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"}
        if fault.fault == "error":
            return _error(500, "An unexpected error occurred. Please try again later.", "InternalServerError",
                          extra={"ActivityId": str(uuid.uuid4())})  # modelled
        # integrate/concepts/rate-limits, "API client experience": a request that is blocked is answered 429 with a
        # Retry-After header (seconds), and the X-RateLimit-Resource / -Delay / -Limit / -Remaining / -Reset headers.
        wait = int(fault.seconds) if fault.seconds is not None else RATE_DELAY
        reset = int(self.now().timestamp()) + wait
        status, body, _ = _error(429, "Request was blocked due to exceeding usage of resource 'ATCPU' in namespace "
                                      "'User'.", "RequestBlockedException")  # the wording: modelled
        return status, body, {"Retry-After": str(wait), "X-RateLimit-Resource": "ATCPU", "X-RateLimit-Delay": "0.5",
                              "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
                              "X-RateLimit-Reset": str(reset)}

    def _take_fault(self, kind: str) -> Fault | None:
        queue = self._faults[kind]
        while queue and queue[0].count <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].count -= 1
        return queue[0]

    def _identity(self, authorization: str | None) -> Identity | Reply:
        """The caller, by its Entra bearer token or by a PAT as the password of Basic authentication (the user name,
        empty or not, is ignored: use-personal-access-tokens-to-authenticate). Without either, or with one nobody
        holds, Azure DevOps answers 401 and names the sign-in authority in WWW-Authenticate (modelled: the body is
        empty)."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        with self._lock:
            if scheme.lower() == "bearer":
                identity = self.identities.get(value.strip())
            elif scheme.lower() == "basic":
                identity = self.pats.get(_basic_password(value.strip()) or "")
            else:
                identity = None
        return self._unauthorized() if identity is None else identity

    @staticmethod
    def _unauthorized() -> Reply:
        return 401, b"", {"Content-Type": "text/plain",
                          "WWW-Authenticate": "Bearer authorization_uri=https://login.microsoftonline.com/common"}

    def _answer(self, kind: str, ids: list[int], project_key: tuple[str, str], query: dict[str, str], body: Any,
                headers: dict[str, str], identity: Identity, base: str) -> Reply:
        with self._lock:
            if kind == "definitions":
                return self._release_definitions(project_key, query, base)
            if kind == "definition":
                return self._release_definition(project_key, ids[0], query, base)
            if kind == "run":
                return self._run_pipeline(ids[0], project_key, body, identity, base)
            if kind == "builds":
                return self._list(project_key, query, base)
            if kind == "get":
                pipeline = self.pipelines.get((*project_key, ids[0]))
                run = self.runs.get(ids[1])
                if pipeline is None or run is None or run.pipeline is not pipeline:
                    return _error(404, f"The pipeline run {ids[1]} could not be found.",
                                  "PipelineRunNotFoundException")  # modelled
                return 200, self._run_json(run, base), {}
            run = self.runs.get(ids[0])
            if run is None or (run.pipeline.org.lower(), run.pipeline.project.lower()) != project_key:
                # BuildNotFoundException (modelled wording)
                return _error(404, f"The requested build {ids[0]} could not be found.", "BuildNotFoundException")
            if kind == "build":
                return 200, self._build_json(run, base, listed=False), {}
            if kind == "cancel":
                return self._cancel(run, body, identity, base)
            if kind == "timeline":
                return 200, self._timeline_json(run, base), {}
            if kind == "logs":
                logs = [self._log_json(run, log_id, lines, base) for log_id, lines in self._logs(run)]
                return 200, {"count": len(logs), "value": logs}, {}
            if kind == "artifacts":
                return self._artifacts(run, query, headers, base)
            return self._log(run, ids[1], query, headers)

    # -- runs (pipelines.json, Runs_Run Pipeline)

    def _run_pipeline(self, pipeline_id: int, project_key: tuple[str, str], body: Any, identity: Identity,
                      base: str) -> Reply:
        pipeline = self.pipelines.get((*project_key, pipeline_id))
        if pipeline is None:
            return _error(404, f"Pipeline with id {pipeline_id} was not found in project "
                               f"{self.project_names[project_key]}.", "PipelineNotFoundException")  # modelled
        if not identity.queue:
            # "TF215106: Access denied. {identity} needs Queue builds permissions for build pipeline {id}:{name} in
            # team project {project} to perform the action. For more information, contact the Azure DevOps
            # administrator." (as seen in public threads; the status is modelled as 403)
            return _error(403, f"TF215106: Access denied. {identity.name} needs Queue builds permissions for build "
                               f"pipeline {pipeline.id}:{pipeline.name} in team project {pipeline.project} to perform "
                               f"the action. For more information, contact the Azure DevOps administrator.",
                          "AccessDeniedException")
        if not isinstance(body, dict):
            # The body (RunPipelineParameters) is required (`"required": true`); modelled wording.
            return _invalid("Value cannot be null. (Parameter 'runParameters')", "ArgumentNullException")
        known = {"previewRun", "resources", "stagesToSkip", "templateParameters", "variables", "yamlOverride"}
        unknown = sorted(set(body) - known)
        if unknown:
            # Stricter than Azure DevOps, which ignores properties RunPipelineParameters does not have: a misspelt
            # property would otherwise be dropped in silence.
            return _invalid(f"Unknown properties in the run parameters: {', '.join(unknown)}.", "ArgumentException")
        if (body.get("templateParameters") or body.get("variables")) and not identity.configure:
            # Giving a run parameters or variables takes Edit queue build configuration besides Queue builds (the
            # same TF215106 refusal, "needs Edit queue build configuration permissions", as seen in public threads).
            return _error(403, f"TF215106: Access denied. {identity.name} needs Edit queue build configuration "
                               f"permissions for build pipeline {pipeline.id}:{pipeline.name} in team project "
                               f"{pipeline.project} to perform the action. For more information, contact the Azure "
                               f"DevOps administrator.", "AccessDeniedException")
        if body.get("previewRun") or body.get("yamlOverride") is not None:
            return _invalid("previewRun and yamlOverride are not modelled by this emulator.", "ArgumentException")
        ref, problem = _ref_of(body.get("resources"))
        if problem:
            return _invalid(problem, "ArgumentException")
        ref = ref or "refs/heads/main"
        if ref not in pipeline.branches:
            # The run's ref must resolve in the pipeline's repository (modelled wording).
            return _invalid(f"Unable to resolve the reference '{ref}' to a specific version. Verify the reference "
                            f"exists in the source repository.", "PipelineValidationException")
        values, problem = _template_parameters(pipeline, body.get("templateParameters"))
        if problem:
            return _invalid(problem, "PipelineValidationException")
        variables, problem = _queue_variables(pipeline, body.get("variables"))
        if problem:
            return _invalid(problem, "PipelineValidationException")
        run = self._new_run(pipeline, ref, values, variables, identity)
        self.started_runs += 1
        return 200, self._run_json(run, base), {}

    def _new_run(self, pipeline: Pipeline, ref: str, values: dict[str, str], variables: dict[str, dict[str, Any]],
                 identity: Identity) -> Run:
        run_id = next(self._ids)
        now = self.now()
        day = now.strftime("%Y%m%d")
        same_day = sum(1 for r in self.runs.values() if r.pipeline is pipeline and r.number.startswith(day + "."))
        run = Run(run_id, pipeline, f"{day}.{same_day + 1}", ref, pipeline.branches[ref], values, variables, identity,
                  now, pipeline.outcome, pipeline.seconds, pipeline.queue_seconds,
                  [Job(j.name, list(j.lines)) for j in pipeline.jobs], str(uuid.uuid4()))
        self.runs[run_id] = run
        return run

    # -- builds (build.json)

    def _list(self, project_key: tuple[str, str], query: dict[str, str], base: str) -> Reply:
        """Builds_List. `minTime` / `maxTime` "filter to builds that finished/started/queued after (before) this
        date based on the queryOrder specified"; without a queryOrder they are read as finish times (modelled:
        the stricter reading, under which builds that have not finished are not listed)."""
        now = self.now()
        order = query.get("queryOrder", "finishTimeDescending")
        for name, allowed in (("queryOrder", QUERY_ORDERS), ("statusFilter", STATUSES), ("resultFilter", RESULTS)):
            if name in query and query[name] not in allowed:
                return _invalid(f"The value '{query[name]}' is not valid for {name}.", "ArgumentException")  # modelled
        try:
            definitions = _ints(query.get("definitions"))
            build_ids = _ints(query.get("buildIds"))
            low = _time(query.get("minTime"))
            high = _time(query.get("maxTime"))
            top = int(query.get("$top", DEFAULT_TOP))
            offset = int(base64.urlsafe_b64decode(query["continuationToken"]).decode()) \
                if query.get("continuationToken") else 0
        except (ValueError, UnicodeDecodeError) as exc:
            return _invalid(f"Invalid query parameter: {exc}", "ArgumentException")  # modelled
        if top < 1:
            return _invalid("$top must be greater than 0.", "ArgumentOutOfRangeException")  # modelled

        def when(run: Run) -> datetime | None:
            if order.startswith("queue"):
                return run.created
            if order.startswith("start"):
                return run.started if run.status_at(now) != "notStarted" else None
            return run.finished_at() if run.status_at(now) == "completed" else None

        builds = [r for r in self.runs.values()
                  if (r.pipeline.org.lower(), r.pipeline.project.lower()) == project_key
                  and (definitions is None or r.pipeline.id in definitions)
                  and (build_ids is None or r.id in build_ids)]
        if query.get("statusFilter") not in (None, "all"):
            builds = [r for r in builds if r.status_at(now) == query["statusFilter"]]
        if query.get("resultFilter"):
            builds = [r for r in builds if (r.result_at(now) or "none") == query["resultFilter"]]
        if low is not None or high is not None or not order.startswith("queue"):
            keyed = [(when(r), r) for r in builds]
            builds = [r for t, r in keyed
                      if t is not None and (low is None or t >= low) and (high is None or t <= high)]
        builds.sort(key=lambda r: (when(r) or r.created, r.id), reverse=order.endswith("Descending"))
        chunk = builds[offset:offset + top]
        headers = {}
        if offset + top < len(builds):
            headers["x-ms-continuationtoken"] = base64.urlsafe_b64encode(str(offset + top).encode()).decode()
        return 200, {"count": len(chunk), "value": [self._build_json(r, base, listed=True) for r in chunk]}, headers

    def _cancel(self, run: Run, body: Any, identity: Identity, base: str) -> Reply:
        """Builds_Update Build with `{"status": "cancelling"}`: the build turns `cancelling`, then completes as
        canceled. Only a cancel is modelled; a completed build cannot be cancelled (modelled: 400)."""
        if not identity.stop:
            return _error(403, f"TF215106: Access denied. {identity.name} needs Stop builds permissions for build "
                               f"{run.id} in team project {run.pipeline.project} to perform the action. For more "
                               f"information, contact the Azure DevOps administrator.", "AccessDeniedException")
        if not isinstance(body, dict) or set(body) != {"status"} or body["status"] != "cancelling":
            return _invalid("Only {\"status\": \"cancelling\"} is modelled for a build update.", "ArgumentException")
        now = self.now()
        if run.status_at(now) == "completed":
            return _invalid(f"The build {run.number} cannot be cancelled: it has already completed.",
                            "InvalidBuildStatusException")  # modelled
        if run.cancel_requested is None:
            run.cancel_requested = now
            run.cancel_at = now + timedelta(seconds=self.cancel_seconds)
        return 200, self._build_json(run, base, listed=False), {}

    # -- release definitions (release.json)

    def _release_definitions(self, project_key: tuple[str, str], query: dict[str, str], base: str) -> Reply:
        """Definitions_List: `{count, value}` of definitions in their listed shape, `$top` at a time with an
        `x-ms-continuationtoken` header while more follow. The token is modelled as the id of the next page's first
        definition (the specification calls it opaque); searchText is matched case-insensitively (modelled)."""
        unmodelled = [name for name in RELEASE_UNMODELLED if name in query]
        if unmodelled:
            return _release_invalid(f"{', '.join(unmodelled)}: not modelled by this emulator.")
        flags = {}
        for name in ("isExactNameMatch", "isDeleted"):
            value = query.get(name, "false").lower()
            if value not in ("true", "false"):
                return _release_invalid(f"The value '{query[name]}' is not valid for {name}.")  # modelled
            flags[name] = value == "true"
        order = _choice(query.get("queryOrder", "idAscending"), RELEASE_QUERY_ORDERS)
        expands = {_choice(part.strip(), RELEASE_EXPANDS) for part in query.get("$expand", "none").split(",")}
        if order is None or None in expands:
            bad = "queryOrder" if order is None else "$expand"
            return _release_invalid(f"The value '{query[bad]}' is not valid for {bad}.")  # modelled
        try:
            top = int(query.get("$top", DEFAULT_TOP))
            wanted = _ints(query.get("definitionIdFilter"))
            after = int(query["continuationToken"]) if query.get("continuationToken") else None
        except ValueError as exc:
            return _release_invalid(f"Invalid query parameter: {exc}")  # modelled
        if top < 1:
            return _release_invalid("$top must be greater than 0.", "ArgumentOutOfRangeException")  # modelled
        text = query.get("searchText", "").lower()
        chosen = [d for k, d in self.release_definitions.items() if k[:2] == project_key
                  and (wanted is None or d.id in wanted) and not flags["isDeleted"]
                  and (not text or (text == str(d.document["name"]).lower() if flags["isExactNameMatch"]
                                    else text in str(d.document["name"]).lower()))]
        by_name = order.startswith("name")
        chosen.sort(key=lambda d: (str(d.document["name"]).lower(), d.id) if by_name else (d.id,),
                    reverse=order.endswith("Descending"))
        start = 0
        if after is not None:
            start = next((i for i, d in enumerate(chosen) if d.id == after), -1)
            if start < 0:
                return _release_invalid(f"The continuation token '{after}' is not valid.")  # modelled
        page = chosen[start:start + top]
        headers = {"x-ms-continuationtoken": str(chosen[start + top].id)} if start + top < len(chosen) else {}
        listed = [self._release_definition_json(d, base, expands) for d in page]
        return 200, {"count": len(listed), "value": listed}, headers

    def _release_definition(self, project_key: tuple[str, str], definition_id: int, query: dict[str, str],
                            base: str) -> Reply:
        """Definitions_Get: the whole definition. An unknown id is a 404 ReleaseDefinitionNotFoundException (the type
        the .NET client raises for it, as public client tests show) with the VS402936 message seen in
        Azure/azure-cli-extensions#1505."""
        if "propertyFilters" in query:
            return _release_invalid("propertyFilters: not modelled by this emulator.")
        definition = self.release_definitions.get((*project_key, definition_id))
        if definition is None:
            return _error(404, f"VS402936: Release pipeline with ID {definition_id} does not exist. Specify a valid ID "
                               f"and try again.", "ReleaseDefinitionNotFoundException",
                          namespace=(RELEASE_NAMESPACE, RELEASE_ASSEMBLY))
        return 200, self._release_definition_json(definition, base, None), {}

    def _release_definition_json(self, definition: ReleaseDefinition, base: str,
                                 expands: set[str | None] | None) -> dict[str, Any]:
        """release.json `ReleaseDefinition`: whole (`expands` None), or as listed: `RELEASE_LIST_FIELDS` and the
        parts `$expand` names (`lastRelease` is left out: the emulator has no releases)."""
        project_id = self.projects[(definition.org.lower(), definition.project.lower())]
        url = f"{base}/{definition.org}/{project_id}/_apis/Release/definitions/{definition.id}"
        body = copy.deepcopy(definition.document)
        body.update(url=url, _links={"self": {"href": url}, "web": {
            "href": f"{base}/{definition.org}/{project_id}/_release?definitionId={definition.id}"}})
        body.setdefault("properties", {})
        if expands is None:
            return body
        keep = set(RELEASE_LIST_FIELDS) | {e for e in expands if e not in (None, "none", "lastRelease")}
        return {k: v for k, v in body.items() if k in keep}

    # -- timeline and logs

    def _records(self, run: Run) -> list[dict[str, Any]]:
        """The run's timeline as records (a Stage, then per job a Phase, the Job and its Task records), each with
        its lines so far and, once it started, its log id. A job's log holds all of its tasks' lines."""
        now = self.now()
        end = run.finished_at()
        seen = min(now, end)
        span = run.seconds
        records: list[dict[str, Any]] = []
        stage_id = _uuid(run, "stage")
        records.append({"id": stage_id, "parentId": None, "type": "Stage", "name": "__default", "order": 1,
                        "window": (run.started, run.natural_end), "lines": None, "log": None})
        log_ids = itertools.count(1)
        for j, job in enumerate(run.jobs):
            phase_id, job_id = _uuid(run, f"phase/{j}"), _uuid(run, f"job/{j}")
            records.append({"id": phase_id, "parentId": stage_id, "type": "Phase", "name": job.name, "order": j + 1,
                            "window": (run.started, run.natural_end), "lines": None, "log": None})
            job_record = {"id": job_id, "parentId": phase_id, "type": "Job", "name": job.name, "order": 1,
                          "window": (run.started, run.natural_end), "lines": [], "log": next(log_ids)}
            records.append(job_record)
            windows = [("Initialize job", 0.0, 0.1), ("Script", 0.1, 0.9), ("Finalize Job", 0.9, 1.0)]
            for t, (name, a, b) in enumerate(windows):
                start = run.started + timedelta(seconds=span * a)
                finish = run.started + timedelta(seconds=span * b)
                lines: list[str] = []
                if start <= seen:
                    lines.append(f"{_stamp(start)} ##[section]Starting: {name}")
                    if name == "Initialize job":
                        lines += [f"{_stamp(start)} Agent name: 'Azure Pipelines 3'",
                                  f"{_stamp(start)} Current agent version: '4.260.0'"]
                    elif name == "Finalize Job":
                        lines.append(f"{_stamp(start)} Cleaning up task key")
                    elif name == "Script":
                        share = (finish - start).total_seconds() / max(1, len(job.lines))
                        for i, text in enumerate(job.lines):
                            at = start + timedelta(seconds=share * i)
                            if at < seen:
                                lines.append(f"{_stamp(at)} {text}")
                        if now >= end and run.result_at(now) == "canceled" and end < finish:
                            lines.append(f"{_stamp(end)} ##[error]The operation was canceled.")
                        elif now >= finish and run.outcome == "failed":
                            lines.append(f"{_stamp(finish)} ##[error]Bash exited with code '1'.")
                        elif now >= finish and run.outcome == "partiallySucceeded":
                            lines.append(f"{_stamp(finish)} ##[warning]Bash exited with code '1'.")
                    if min(finish, end) <= now:
                        lines.append(f"{_stamp(min(finish, end))} ##[section]Finishing: {name}")
                records.append({"id": _uuid(run, f"task/{j}/{t}"), "parentId": job_id, "type": "Task", "name": name,
                                "order": t + 1, "window": (start, finish), "lines": lines,
                                "log": next(log_ids) if start <= seen else None})
                job_record["lines"] += lines
            if job_record["window"][0] > seen:
                job_record["log"] = None
        return records

    def _state(self, run: Run, record: dict[str, Any]) -> tuple[str, str | None, datetime | None, datetime | None]:
        """A record's state, result, start and finish times now."""
        now = self.now()
        end = run.finished_at()
        start, finish = record["window"]
        if start > min(now, end):  # never started: skipped once the run is over
            return ("completed", "skipped", None, None) if now >= end else ("pending", None, None, None)
        done = min(finish, end)
        if done > now:
            return "inProgress", None, start, None
        if end < finish and run.result_at(now) == "canceled":
            return "completed", "canceled", start, done
        failed = record["type"] != "Task" or record["name"] == "Script"
        if run.outcome == "failed" and failed:
            return "completed", "failed", start, done
        if run.outcome == "partiallySucceeded" and failed:
            return "completed", "succeededWithIssues", start, done
        return "completed", "succeeded", start, done

    def _logs(self, run: Run) -> list[tuple[int, list[str]]]:
        """The logs Builds - Get Build Logs lists: one per record that has finished, by id."""
        logs = []
        for record in self._records(run):
            if record["log"] is not None and self._state(run, record)[0] == "completed":
                logs.append((int(record["log"]), list(record["lines"])))
        return sorted(logs)

    def _log(self, run: Run, log_id: int, query: dict[str, str], headers: dict[str, str]) -> Reply:
        lines = dict(self._logs(run)).get(log_id)
        if lines is None:
            return _error(404, f"The requested log {log_id} could not be found.",  # modelled
                          "BuildLogNotFoundException")
        try:
            start = int(query.get("startLine", "1"))
            end = int(query.get("endLine", str(len(lines))))
        except ValueError as exc:
            return _invalid(f"Invalid query parameter: {exc}", "ArgumentException")  # modelled
        # Lines are numbered from 1 and both ends are included (modelled: build.json leaves the numbering open).
        chosen = lines[max(1, start) - 1:max(0, end)]
        if "application/json" in headers.get("accept", ""):
            return 200, {"count": len(chosen), "value": chosen}, {}
        return 200, ("\n".join(chosen) + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"}

    # -- JSON shapes

    def _project_url(self, run: Run, base: str) -> str:
        key = (run.pipeline.org.lower(), run.pipeline.project.lower())
        return f"{base}/{run.pipeline.org}/{self.projects[key]}"

    def _web_url(self, run: Run, base: str) -> str:
        return f"{self._project_url(run, base)}/_build/results?buildId={run.id}"

    def _run_json(self, run: Run, base: str) -> dict[str, Any]:
        """pipelines.json `Run`. RunState has no `notStarted` (a queued run is `inProgress`), RunResult no
        `partiallySucceeded` (modelled as `succeeded`), and RunState is spelt `canceling`."""
        now = self.now()
        status = run.status_at(now)
        state = {"notStarted": "inProgress", "cancelling": "canceling"}.get(status, status)
        api = f"{self._project_url(run, base)}/_apis"
        pipeline = run.pipeline
        body: dict[str, Any] = {
            "_links": {"self": {"href": f"{api}/pipelines/{pipeline.id}/runs/{run.id}"},
                       "web": {"href": self._web_url(run, base)},
                       "pipeline.web": {"href": f"{self._project_url(run, base)}/_build/definition?definitionId="
                                                f"{pipeline.id}"},
                       "pipeline": {"href": f"{api}/pipelines/{pipeline.id}?revision={pipeline.revision}"}},
            "templateParameters": dict(run.template_parameters),
            "pipeline": {"url": f"{api}/pipelines/{pipeline.id}?revision={pipeline.revision}", "id": pipeline.id,
                         "revision": pipeline.revision, "name": pipeline.name, "folder": "\\"},
            "state": state, "createdDate": _iso(run.created), "url": f"{api}/pipelines/{pipeline.id}/runs/{run.id}",
            "resources": {"repositories": {"self": {"repository": {"id": _uuid(run, "repo"), "type": "azureReposGit"},
                                                    "refName": run.ref, "version": run.sha}}},
            "id": run.id, "name": run.number}
        if status == "completed":
            result = run.result_at(now)
            body["result"] = "succeeded" if result == "partiallySucceeded" else result
            body["finishedDate"] = _iso(run.finished_at())
        if run.variables:
            body["variables"] = {k: ({"isSecret": True} if v.get("isSecret") else {"value": v["value"]})
                                 for k, v in run.variables.items()}
        return body

    def _build_json(self, run: Run, base: str, *, listed: bool) -> dict[str, Any]:
        """build.json `Build`. `parameters` is the queue-time variables as a JSON string (vsts-rest-api-specs
        issues 188 and 406); `templateParameters` the runtime parameters the run was given."""
        now = self.now()
        status = run.status_at(now)
        project_url = self._project_url(run, base)
        api = f"{project_url}/_apis"
        pipeline = run.pipeline
        key = (pipeline.org.lower(), pipeline.project.lower())
        who = {"displayName": run.requested_by.name, "id": run.requested_by.id, "uniqueName": run.requested_by.id}
        body: dict[str, Any] = {
            "_links": {"self": {"href": f"{api}/build/Builds/{run.id}"}, "web": {"href": self._web_url(run, base)},
                       "timeline": {"href": f"{api}/build/builds/{run.id}/Timeline"}},
            "properties": {}, "tags": [], "validationResults": [], "plans": [{"planId": run.plan_id}],
            "triggerInfo": {}, "id": run.id, "buildNumber": run.number, "status": status,
            "queueTime": _iso(run.created), "url": f"{api}/build/Builds/{run.id}",
            "definition": {"drafts": [], "id": pipeline.id, "name": pipeline.name,
                           "url": f"{api}/build/Definitions/{pipeline.id}?revision={pipeline.revision}",
                           "uri": f"vstfs:///Build/Definition/{pipeline.id}", "path": "\\", "type": "build",
                           "queueStatus": "enabled", "revision": pipeline.revision,
                           "project": {"id": self.projects[key], "name": pipeline.project}},
            "project": {"id": self.projects[key], "name": pipeline.project, "state": "wellFormed",
                        "visibility": "private"},
            "uri": f"vstfs:///Build/Build/{run.id}", "sourceBranch": run.ref, "sourceVersion": run.sha,
            "priority": "normal", "reason": "manual", "requestedFor": who, "requestedBy": who,
            "lastChangedDate": _iso(min(now, run.finished_at())), "lastChangedBy": who,
            "orchestrationPlan": {"planId": run.plan_id},
            "logs": {"id": 0, "type": "Container", "url": f"{api}/build/builds/{run.id}/logs"},
            "repository": {"id": _uuid(run, "repo"), "type": "TfsGit"}, "retainedByRelease": False}
        if not listed or self.list_template_parameters:
            body["templateParameters"] = dict(run.template_parameters)
        if run.variables:
            body["parameters"] = json.dumps({k: v.get("value", "") for k, v in run.variables.items()
                                             if not v.get("isSecret")})
        if status != "notStarted":
            body["startTime"] = _iso(run.started)
        if status == "completed":
            body["result"] = run.result_at(now)
            body["finishTime"] = _iso(run.finished_at())
        return body

    def _artifacts(self, run: Run, query: dict[str, str], headers: dict[str, str], base: str) -> Reply:
        """build.json Artifacts - List (`{count, value: [BuildArtifact]}`), and Artifacts - Get Artifact with
        `artifactName`: the BuildArtifact, or with `$format=zip` (or `Accept: application/zip`) the artifact's files
        zipped under a folder of its name, as a Container artifact's `downloadUrl` gives them."""
        api = f"{self._project_url(run, base)}/_apis"

        def described(name: str, files: dict[str, bytes]) -> dict[str, Any]:
            container = 1000 + run.id
            download = f"{api}/build/builds/{run.id}/artifacts?artifactName={name}&api-version=7.1&%24format=zip"
            return {"id": len(name) + run.id, "name": name, "source": run.plan_id,
                    "resource": {"type": "Container", "data": f"#/{container}/{name}",
                                 "properties": {"localpath": f"D:\\a\\1\\a\\{name}",
                                                "artifactsize": str(sum(len(b) for b in files.values()))},
                                 "url": f"{api}/resources/Containers/{container}?itemPath={name}",
                                 "downloadUrl": download}}

        wanted = query.get("artifactName")
        if wanted is None:
            listed = [described(n, f) for n, f in run.artifacts.items()]
            return 200, {"count": len(listed), "value": listed}, {}
        name = next((n for n in run.artifacts if n.lower() == wanted.lower()), None)
        if name is None:
            # ArtifactNotFoundException (modelled wording)
            return _error(404, f"No artifact named {wanted} was found for build {run.id}.",
                          "ArtifactNotFoundException")
        if query.get("$format", "").lower() != "zip" and "application/zip" not in headers.get("accept", ""):
            return 200, described(name, run.artifacts[name]), {}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for path, data in sorted(run.artifacts[name].items()):
                archive.writestr(f"{name}/{path}", data)
        return 200, out.getvalue(), {"Content-Type": "application/zip"}

    def _timeline_json(self, run: Run, base: str) -> dict[str, Any]:
        """build.json `Timeline` with its `TimelineRecord`s (`log` once a record started, `issues` of a failed
        script)."""
        api = f"{self._project_url(run, base)}/_apis"
        now = self.now()
        records = []
        for record in self._records(run):
            state, result, start, finish = self._state(run, record)
            issues = []
            if record["type"] == "Task" and record["name"] == "Script" and result in ("failed", "succeededWithIssues"):
                issues = [{"type": "error" if result == "failed" else "warning", "category": "General",
                           "message": "Bash exited with code '1'.", "data": {}}]
            records.append({
                "previousAttempts": [], "id": record["id"], "parentId": record["parentId"], "type": record["type"],
                "name": record["name"], "startTime": _iso(start) if start else None,
                "finishTime": _iso(finish) if finish else None, "currentOperation": None,
                "percentComplete": 100 if state == "completed" else 0, "state": state, "result": result,
                "resultCode": None, "changeId": 1, "lastModified": _iso(now), "workerName": "Azure Pipelines 3",
                "order": record["order"], "details": None, "errorCount": sum(i["type"] == "error" for i in issues),
                "warningCount": sum(i["type"] == "warning" for i in issues), "url": None,
                "log": {"id": record["log"], "type": "Container",
                        "url": f"{api}/build/builds/{run.id}/logs/{record['log']}"} if record["log"] else None,
                "task": {"id": _uuid(run, "task-def/" + record["name"]), "name": "CmdLine", "version": "2.250.1"}
                if record["type"] == "Task" else None,
                "attempt": 1, "identifier": None, "issues": issues})
        return {"records": records, "lastChangedBy": _uuid(run, "system"), "lastChangedOn": _iso(now),
                "id": run.plan_id, "changeId": len(records),
                "url": f"{api}/build/builds/{run.id}/Timeline/{run.plan_id}"}

    def _log_json(self, run: Run, log_id: int, lines: list[str], base: str) -> dict[str, Any]:
        """build.json `BuildLog`."""
        api = f"{self._project_url(run, base)}/_apis"
        at = _iso(min(self.now(), run.finished_at()))
        return {"lineCount": len(lines), "createdOn": _iso(run.started), "lastChangedOn": at, "id": log_id,
                "type": "Container", "url": f"{api}/build/builds/{run.id}/logs/{log_id}"}

    def _page(self, org: str, project: str, query: dict[str, str]) -> Reply:
        with self._lock:
            run = self.runs.get(int(query["buildId"])) if query.get("buildId", "").isdigit() else None
            key = (org.lower(), project.lower())
            if run is None or run.pipeline.org.lower() != key[0] or key[1] not in (
                    run.pipeline.project.lower(), self.projects.get((key[0], run.pipeline.project.lower()))):
                return 404, b"<h1>Not Found</h1>", {"Content-Type": "text/html; charset=utf-8"}
            now = self.now()
            state = run.result_at(now) or run.status_at(now)
            lines = "\n".join(f"{job.name}: {line}" for job in run.jobs for line in job.lines)
            title = f"{run.pipeline.name} #{run.number}"
        page = (f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
                f"<p>{html.escape(run.ref)}: <b>{state}</b></p>"
                f"<pre>{html.escape(lines) if run.status_at(now) == 'completed' else ''}</pre>")
        return 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}


# -- helpers


def _error(status: int, message: str, type_key: str, *, extra: dict[str, Any] | None = None,
           namespace: tuple[str, str] | None = None) -> Reply:
    """Azure DevOps' error body (a serialized VssServiceException); `namespace`: the exception type's namespace and
    assembly when neither the Pipelines nor the Build one."""
    if namespace is None:
        area = "Microsoft.Azure.Pipelines.WebApi" if type_key.startswith("Pipeline") else \
            "Microsoft.TeamFoundation.Build.WebApi"
        namespace = (area, area)
    body: dict[str, Any] = {"$id": "1", "innerException": None, "message": message,
                            "typeName": f"{namespace[0]}.{type_key}, {namespace[1]}", "typeKey": type_key,
                            "errorCode": 0, "eventId": 3000}
    if extra:
        body["customProperties"] = extra
    return status, body, {}


def _invalid(message: str, type_key: str) -> Reply:
    return _error(400, message, type_key)


def _release_invalid(message: str, type_key: str = "InvalidRequestException") -> Reply:
    """A refused Release request: InvalidRequestException is the Release service's 400 (its typeName as seen in
    MicrosoftDocs/vsts-rest-api-specs#160); the messages are modelled."""
    if type_key == "InvalidRequestException":
        return _error(400, message, type_key, namespace=("Microsoft.VisualStudio.Services.ReleaseManagement.Data."
                                                         "Exceptions", "Microsoft.VisualStudio.Services."
                                                                       "ReleaseManagement2.Data"))
    return _error(400, message, type_key, namespace=("System", "mscorlib"))


def _choice(value: str, allowed: tuple[str, ...]) -> str | None:
    """One of an enum's values, matched case-insensitively as Azure DevOps binds query enums (release.json's own
    example asks for `$expand=Environments`); None when it is none of them."""
    return next((a for a in allowed if a.lower() == value.lower()), None)


def _decoded(raw_path: str) -> list[str] | None:
    """The path's segments, each percent-decoded on its own, so a project name with an encoded `/` stays one
    segment (CLIENT.md: the official client encodes route values with `safe=''`); None for an empty segment."""
    parts = raw_path.strip("/").split("/")
    if not all(parts):
        return None
    return [unquote(part) for part in parts]


def _basic_password(credentials: str) -> str | None:
    """The password of Basic credentials, `base64(user:password)`; None when they are not that."""
    try:
        text = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return password if colon else None


def _accept_version(accept: str | None) -> str | None:
    """The `api-version` parameter of an `Accept` header (`application/json;api-version=7.1-preview.4`), how the
    official clients send it (CLIENT.md)."""
    for parameter in (accept or "").split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "api-version" and value.strip():
            return value.strip()
    return None


def _version_problem(method: str, version: str | None) -> Reply | None:
    """Every call names its api-version. Without one: VssVersionNotSpecifiedException; one past the server's
    latest: VssVersionOutOfRangeException (wordings as seen in public threads; Azure DevOps lets some GETs go without
    a version, the emulator does not)."""
    if not version:
        return _error(400, f'No api-version was supplied for the "{method}" request. The version must be supplied '
                           f'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a '
                           f'query parameter (e.g. "?api-version=1.0").', "VssVersionNotSpecifiedException")
    match = API_VERSION.match(version)
    if match is None or match["version"] not in API_VERSIONS:
        return _error(400, f"The requested REST API version of {version} is out of range for this server. The latest "
                           f"REST API version for this server is {LATEST_VERSION}.", "VssVersionOutOfRangeException")
    return None


def _route(method: str, rest: str) -> tuple[str | None, list[int]]:
    routes = [("POST", r"pipelines/(\d+)/runs", "run"), ("GET", r"pipelines/(\d+)/runs/(\d+)", "get"),
              ("GET", r"build/builds", "builds"), ("GET", r"build/builds/(\d+)", "build"),
              ("PATCH", r"build/builds/(\d+)", "cancel"),
              ("GET", r"build/builds/(\d+)/timeline(?:/[0-9a-f-]{36})?", "timeline"),
              ("GET", r"build/builds/(\d+)/logs", "logs"), ("GET", r"build/builds/(\d+)/logs/(\d+)", "log"),
              ("GET", r"build/builds/(\d+)/artifacts", "artifacts"),
              ("GET", r"release/definitions", "definitions"), ("GET", r"release/definitions/(\d+)", "definition")]
    for verb, pattern, kind in routes:
        match = re.fullmatch(pattern, rest.rstrip("/"), re.I)  # routes are case-insensitive in Azure DevOps
        if method == verb and match:
            return kind, [int(g) for g in match.groups()]
    return None, []


def _ref_of(resources: Any) -> tuple[str | None, str | None]:
    """`resources.repositories.self.refName` (RunResourcesParameters / RepositoryResourceParameters): a full
    ref, `refs/heads/...` or `refs/tags/...` (modelled: a short branch name is refused)."""
    if resources is None:
        return None, None
    if not isinstance(resources, dict) or not isinstance(resources.get("repositories", {}), dict):
        return None, "resources must be an object with an object of repositories."
    unknown = set(resources) - {"builds", "containers", "packages", "pipelines", "repositories"}
    if unknown:
        return None, f"Unknown resource types: {', '.join(sorted(unknown))}."
    repos = resources.get("repositories") or {}
    if set(repos) - {"self"}:
        return None, f"Unknown repository resources: {', '.join(sorted(set(repos) - {'self'}))}."
    own = repos.get("self")
    if own is None:
        return None, None
    ref = own.get("refName") if isinstance(own, dict) else None
    if not isinstance(ref, str) or not re.match(r"^refs/(heads|tags)/.+", ref):
        return None, f"The refName '{ref}' is not a full reference (refs/heads/... or refs/tags/...)."
    return ref, None


def _template_parameters(pipeline: Pipeline, given: Any) -> tuple[dict[str, str], str | None]:
    """The run's runtime parameters (pipelines/process/runtime-parameters): each a string value (RunPipeline-
    Parameters.templateParameters is `additionalProperties: {type: string}`) of a parameter the YAML declares, of
    its type and among its `values` when it lists some; a declared one without a default must be given. Messages:
    "A value for the '{name}' parameter must be provided." as seen in microsoft/azure-devops-node-api issue 392;
    the others modelled."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return {}, "templateParameters must be an object."
    values: dict[str, str] = {}
    for name, value in given.items():
        spec = pipeline.parameters.get(name)
        if spec is None:
            return {}, f"Unexpected parameter '{name}'"
        if not isinstance(value, str):
            return {}, f"The value of the parameter '{name}' must be a string."
        kind = spec.get("type", "string")
        if kind == "boolean" and value.lower() not in ("true", "false"):
            return {}, f"The '{name}' parameter value '{value}' is not a valid 'boolean'."
        if kind == "number":
            try:
                float(value)
            except ValueError:
                return {}, f"The '{name}' parameter value '{value}' is not a valid 'number'."
        allowed = spec.get("values")
        if allowed and value not in [str(v) for v in allowed]:
            return {}, f"The '{name}' parameter value '{value}' is not a valid value."
        values[name] = value
    for name, spec in pipeline.parameters.items():
        if name not in values and spec.get("default") is None:
            return {}, f"A value for the '{name}' parameter must be provided."
    return values, None


def _queue_variables(pipeline: Pipeline, given: Any) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Queue-time variables. With "Limit variables that can be set at queue time" on (pipelines/security/inputs;
    modelled as on, the stricter case) only variables the pipeline marks "Settable at queue time" may be set. The
    message is the one reported in public Q&A threads."""
    if given is None:
        return {}, None
    if not isinstance(given, dict):
        return {}, "variables must be an object."
    chosen: dict[str, dict[str, Any]] = {}
    refused = []
    for name, variable in given.items():
        if not isinstance(variable, dict) or not isinstance(variable.get("value", ""), str) or \
                not isinstance(variable.get("isSecret", False), bool) or set(variable) - {"value", "isSecret"}:
            return {}, f"The variable '{name}' must be an object with a string value."  # Variable: value, isSecret
        spec = pipeline.variables.get(name)
        if spec is None or not spec.get("settable"):
            refused.append(name)
            continue
        chosen[name] = {"value": variable.get("value", ""), "isSecret": variable.get("isSecret", False)}
    if refused:
        return {}, (f"You can't set the following variables ({', '.join(refused)}). If you want to be able to set "
                    f"these variables, then edit the pipeline and select Settable at queue time on the variables tab "
                    f"of the pipeline editor.")
    return chosen, None


def _ints(text: str | None) -> set[int] | None:
    if text is None:
        return None
    return {int(part) for part in text.split(",") if part.strip()}


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _uuid(run: Run, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"run/{run.id}/{name}"))


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _stamp(at: datetime) -> str:
    """A log line's time, as Azure Pipelines writes it: seven fractional digits."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"

"""A GitHub REST emulator for the part of the Actions API that a workflow dispatcher uses.

Endpoints (API version `X-GitHub-Api-Version: 2022-11-28`, also `2026-03-10`; absent means 2022-11-28):

* `POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches` (a workflow file name or its numeric
  id; body `{ref, inputs, return_run_details}`): 204, or 200 `{workflow_run_id, run_url, html_url}` with
  `return_run_details: true`.
* `GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs` (filters `event`, `branch`, `status`,
  `created`, `actor`, `head_sha`; `per_page` / `page` with a `Link` header) and `GET .../actions/workflows/{id}`.
* `GET /repos/{owner}/{repo}/actions/runs/{run_id}`, `POST .../cancel` (202; 409 once completed),
  `GET .../logs` (302 to a download URL that expires after a minute, serving a zip of per-job text logs),
  `GET .../jobs`.
* Build outputs, for build webhooks: `GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts`
  (/rest/actions/artifacts#list-workflow-run-artifacts), `GET .../actions/artifacts/{artifact_id}/zip` (302 to a
  download URL that expires after a minute: #download-an-artifact) and `GET /repos/{owner}/{repo}/releases/assets/
  {asset_id}` (JSON; with `Accept: application/octet-stream` a 302 to the asset's download:
  /rest/releases/assets#get-a-release-asset). Seed them with `add_artifact` and `add_asset`.
* A small HTML page per run at its `html_url` (`/{owner}/{repo}/actions/runs/{id}`), for people on the local stack.
* GitHub App sign-in: `POST /app/installations/{installation_id}/access_tokens` with a JWT (201 `{token,
  expires_at, permissions, repository_selection}`), checked as GitHub does: RS256, signed by the key of the app its
  `iss` names (client id or app id), `iat` not in the future, `exp` in the future and at most 10 minutes ahead
  (docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-
  github-app; /rest/apps/apps#create-an-installation-access-token-for-an-app). The tokens it issues expire after
  `installation_token_seconds` (an hour). Seed with `add_app` and `add_installation`.

Seed it with `add_repo`, `add_token` and `add_workflow`; a dispatched run goes queued → in_progress → completed
with the workflow's seeded `outcome` after its `seconds`, on the emulator's clock (`advance()` moves it; the
local stack may replace `now` with the app's scaled clock). Every call needs a seeded token. Tests make it
misbehave with `inject` and read what it was asked in `requests`.

Sources (docs.github.com pages are cited beside the behaviour they model):
* REST: /rest/actions/workflows#create-a-workflow-dispatch-event, /rest/actions/workflow-runs,
  /rest/actions/workflow-jobs, /rest/using-the-rest-api/rate-limits-for-the-rest-api,
  /rest/using-the-rest-api/getting-started-with-the-rest-api, /rest/about-the-rest-api/api-versions.
* Workflows: /actions/reference/workflows-and-actions/workflow-syntax#onworkflow_dispatchinputs,
  /actions/reference/workflows-and-actions/workflow-run-statuses.
* github.blog/changelog/2026-02-19-workflow-dispatch-api-now-returns-run-ids (`return_run_details`) and
  github.blog/changelog/2025-12-04-actions-workflow-dispatch-workflows-now-support-25-inputs.
Error messages that the docs do not spell out are GitHub's as seen in public issue threads (cited beside
them); where no wording could be found the message is marked "modelled".
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import json
import re
import secrets
import string
import threading
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

import jwt

from local.rest_emulator import Fault, Reply, Request, RestEmulator

API_VERSIONS = ("2022-11-28", "2026-03-10")
"""Supported REST API versions; a request without the header gets 2022-11-28 (docs.github.com
/rest/about-the-rest-api/api-versions: "If you don't specify an API version, you will get 2022-11-28";
an unsupported version is answered 400)."""
DOCS_DISPATCH = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
DOCS_RUNS = "https://docs.github.com/rest/actions/workflow-runs"
DOCS_REST = "https://docs.github.com/rest"
MAX_INPUTS = 25
"""workflow-syntax#onworkflow_dispatchinputs: "The maximum number of top-level properties for `inputs` is 25"
(raised from 10: github.blog changelog 2025-12-04)."""
MAX_INPUTS_PAYLOAD = 65_535
"""Same page: "The maximum payload for `inputs` is 65,535 characters"."""
INPUT_TYPES = ("string", "boolean", "number", "choice", "environment")
"""workflow-syntax#onworkflow_dispatchinputsinput_idtype."""
INPUT_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
"""An input id starts with a letter or `_` and holds alphanumerics, `-` or `_` (workflow-syntax, input_id)."""
LOG_URL_SECONDS = 60
"""/rest/actions/workflow-runs#download-workflow-run-logs: "This link expires after 1 minute"."""
STATUSES = ("requested", "queued", "pending", "waiting", "in_progress", "completed")
CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "skipped", "stale", "success", "timed_out")
"""/actions/reference/workflows-and-actions/workflow-run-statuses: the `status` query parameter of the run
lists takes either a status or a conclusion (`startup_failure` is not accepted there)."""
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
"""/rest/using-the-rest-api/using-pagination-in-the-rest-api: `per_page` defaults to 30, at most 100."""
FILTERED_CAP = 1000
"""/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow: "This endpoint will return up to 1,000
results for each search when using the following parameters: actor, branch, check_suite_id, created,
event, head_sha, status"."""
RATE_LIMIT = 5000
"""Primary rate limit of an installation or a user: 5,000 requests an hour (rate-limits-for-the-rest-api)."""
KINDS = ("dispatch", "runs", "run", "cancel", "logs", "jobs", "download", "artifacts", "asset", "token")
FAULTS = ("throttle", "primary", "secondary", "error", "timeout", "lost")
SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                     "If you reach out to GitHub Support for help, please include the request ID {rid}.")


REPOS = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/(?P<rest>.+)$")
HTML_RUN = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>\d+)$")
DOWNLOAD = re.compile(r"^/_logs/(?P<run>\d+)/(?P<sig>[0-9a-f]{32})\.zip$")
ASSET = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/assets/(?P<id>\d+)$")
BLOB = re.compile(r"^/_blobs/(?P<id>\d+)/(?P<sig>[0-9a-f]{32})$")
ACCESS_TOKENS = re.compile(r"^/app/installations/(?P<id>\d+)/access_tokens$")
DOCS_APP_TOKEN = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
JWT_MAX_SECONDS = 600
"""generating-a-json-web-token-jwt-for-a-github-app: `exp` "must be no more than 10 minutes into the future"."""
JWT_UNDECODABLE = "A JSON web token could not be decoded"
"""GitHub's 401 for a JWT whose signature, algorithm or issuer does not check out (as seen in
actions/create-github-app-token issue 153 and github/docs issue 33989)."""
EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
"""Seen in octokit/auth-app.js issue 698 and actions/create-github-app-token issue 178."""
EXP_INVALID = ("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the "
               "assertion expires")
"""Seen in sigmavirus24/github3.py issue 1050."""
IAT_INVALID = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
"""Modelled on the `exp` message (GitHub's wording for a future `iat` was not found)."""


@dataclass
class Token:
    value: str
    login: str
    repos: set[str] | None
    """Repositories (lower-case `owner/name`) the token can see; None: every seeded repository."""
    actions: str
    """`write` (dispatch and cancel) or `read`."""
    kind: str
    """`app` (an installation token) or `pat` (a fine-grained personal access token): the 403 wording differs."""
    used: int = 0
    window: float = 0.0
    expires: datetime | None = None
    """When an installation token minted here stops working (401 Bad credentials after)."""


@dataclass
class App:
    id: int
    client_id: str | None
    public_key: str
    """PEM: what GitHub keeps of the app's key pair."""
    slug: str


@dataclass
class Installation:
    id: int
    app_id: int
    repos: set[str] | None
    actions: str


@dataclass
class Repo:
    full_name: str
    id: int
    branches: dict[str, str]
    """Branch name → head commit SHA."""
    tags: dict[str, str]
    private: bool


@dataclass
class Blob:
    """A run's uploaded artifact (`run_id` set) or a release asset."""

    id: int
    repo: str
    """Lower-case `owner/name`."""
    name: str
    data: bytes
    run_id: int | None = None
    expired: bool = False


@dataclass
class Job:
    name: str
    lines: list[str]


@dataclass
class Workflow:
    id: int
    repo: str
    file: str
    name: str
    inputs: dict[str, dict[str, Any]]
    run_name: str | None
    outcome: str
    jobs: list[Job]
    seconds: float
    queue_seconds: float
    dispatchable: bool
    next_number: int = 1

    @property
    def path(self) -> str:
        return f".github/workflows/{self.file}"


@dataclass
class Run:
    id: int
    workflow: Workflow
    repo: Repo
    number: int
    display_title: str
    ref: str
    sha: str
    inputs: dict[str, str]
    actor: str
    created: datetime
    outcome: str
    seconds: float
    queue_seconds: float
    jobs: list[Job]
    cancel_at: datetime | None = None
    """When a cancel request takes effect (a moment after it was accepted)."""

    @property
    def started(self) -> datetime:
        return self.created + timedelta(seconds=self.queue_seconds)

    def finished_at(self) -> datetime:
        natural = self.started + timedelta(seconds=self.seconds)
        return min(natural, self.cancel_at) if self.cancel_at is not None else natural

    def conclusion_at(self, now: datetime) -> str | None:
        end = self.finished_at()
        if now < end:
            return None
        if self.cancel_at is not None and self.cancel_at <= self.started + timedelta(seconds=self.seconds):
            return "cancelled"
        return self.outcome

    def status_at(self, now: datetime) -> str:
        if now >= self.finished_at():
            return "completed"
        return "in_progress" if now >= self.started else "queued"


class GitHubEmulator(RestEmulator):
    bodiless_statuses = frozenset({204, 304})

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._offset = 0.0
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC) + timedelta(seconds=self._offset)
        """The emulator's clock: wall time moved on by `advance()`. The local stack may give it the app's
        scaled clock instead (then `advance` does nothing)."""
        self.html_base: str | None = None
        """Where runs' `html_url` point; the emulator's own pages when None (`https://github.com` in GitHub)."""
        self.list_delay_seconds = 3.0
        """A dispatched run shows in the workflow's run list only this long after it was created (GitHub creates
        the run asynchronously: a 204 dispatch answers before the run exists — the reason the dispatch API gained
        `return_run_details`, github.blog changelog 2026-02-19). A run whose id was returned is readable at once."""
        self.cancel_seconds = 2.0
        """A cancel request is accepted (202) and the run completes as cancelled this long after."""
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.requests: list[Request] = []
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, Token] = {}
        self.workflows: dict[tuple[str, int], Workflow] = {}
        self.runs: dict[int, Run] = {}
        self.dispatches = 0
        """How many dispatches created a run."""
        self.blobs: dict[int, Blob] = {}
        """Run artifacts and release assets by id."""
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_token_seconds = 3600.0
        """How long an installation token lasts (generating-an-installation-access-token-for-a-github-app: "expire
        after one hour")."""
        self._faults: dict[str, list[Fault]] = {kind: [] for kind in KINDS}
        self._ids = itertools.count(7_200_000_001)
        self._secret = uuid.uuid4().hex
        self._lock = threading.RLock()

    # -- seeding and test hooks

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock on (runs progress on it)."""
        with self._lock:
            self._offset += seconds

    def add_repo(self, repo: str, *, branches: tuple[str, ...] | list[str] = ("main",),
                 tags: tuple[str, ...] | list[str] = (), private: bool = True) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name:
            raise ValueError(f"repository must be owner/name, not {repo!r}")
        with self._lock:
            self.repos[repo.lower()] = Repo(repo, 500_000 + len(self.repos), {b: _sha(repo, b) for b in branches},
                                            {t: _sha(repo, "tag:" + t) for t in tags}, private)

    def add_token(self, token: str, *, repos: list[str] | None = None, actions: str = "write",
                  login: str = "slipway-releases[bot]", kind: str = "app") -> None:
        """A token GitHub accepts: an installation token of an app (`kind="app"`) or a fine-grained PAT
        (`kind="pat"`) that sees `repos` (all seeded ones when None) with Actions `write` or `read`."""
        if actions not in ("read", "write") or kind not in ("app", "pat"):
            raise ValueError("actions is read or write; kind is app or pat")
        with self._lock:
            self.tokens[token] = Token(token, login, {r.lower() for r in repos} if repos is not None else None,
                                       actions, kind)

    def add_app(self, app_id: int, public_key: str | bytes, *, client_id: str | None = None,
                slug: str = "slipway-releases") -> None:
        """A GitHub App whose JWTs are checked with `public_key` (PEM); `iss` may be its id or its client id."""
        key = public_key.decode() if isinstance(public_key, bytes) else public_key
        with self._lock:
            self.apps[int(app_id)] = App(int(app_id), client_id, key, slug)

    def add_installation(self, installation_id: int, app_id: int, *, repos: list[str] | None = None,
                         actions: str = "write") -> None:
        """An installation of the app that sees `repos` (all seeded ones when None) with Actions `actions`."""
        if actions not in ("read", "write"):
            raise ValueError("actions is read or write")
        with self._lock:
            self.installations[int(installation_id)] = Installation(
                int(installation_id), int(app_id), {r.lower() for r in repos} if repos is not None else None, actions)

    def add_workflow(self, repo: str, file: str, *, name: str | None = None,
                     inputs: dict[str, dict[str, Any]] | None = None, run_name_template: str | None = None,
                     outcome: str = "success", steps: list[str] | None = None,
                     jobs: dict[str, list[str]] | None = None, seconds: float = 30.0, queue_seconds: float = 2.0,
                     dispatchable: bool = True) -> int:
        """A workflow file `.github/workflows/{file}` with `on: workflow_dispatch` (unless not `dispatchable`),
        its `inputs` (`{id: {"required": bool, "type": ..., "default": ..., "options": [...]}}`) and `run-name`
        (`${{ inputs.x }}` is substituted). Its runs take `queue_seconds` queued, then `seconds` in progress,
        and conclude `outcome`; they log `steps` (one job `build`) or `jobs` (name → lines, in order).
        Returns the workflow's id."""
        declared = dict(inputs or {})
        if len(declared) > MAX_INPUTS:
            # GitHub refuses such a workflow file: "you may only define up to 25 `inputs` for a
            # `workflow_dispatch` event" (the wording seen with the old limit of 10, github/docs issue 15710).
            raise ValueError(f"you may only define up to {MAX_INPUTS} `inputs` for a `workflow_dispatch` event")
        for input_id, spec in declared.items():
            if not INPUT_ID.match(input_id):
                raise ValueError(f"input id {input_id!r} must start with a letter or _ and hold alphanumerics, - or _")
            kind = spec.get("type", "string")
            if kind not in INPUT_TYPES:
                raise ValueError(f"input {input_id}: type must be one of {INPUT_TYPES}")
            if kind == "choice" and not spec.get("options"):
                raise ValueError(f"input {input_id}: a choice input needs options")
        if outcome not in CONCLUSIONS:
            raise ValueError(f"outcome must be one of {CONCLUSIONS}")
        job_list = [Job(n, list(lines)) for n, lines in (jobs or {"build": list(steps or ["Hello from the emulator"])})
                    .items()]
        with self._lock:
            if repo.lower() not in self.repos:
                self.add_repo(repo)
            key = self.repos[repo.lower()].full_name.lower()
            workflow_id = 161_000_000 + len(self.workflows) + 1
            self.workflows[(key, workflow_id)] = Workflow(
                workflow_id, key, file, name or file.rsplit(".", 1)[0], declared, run_name_template, outcome,
                job_list, float(seconds), float(queue_seconds), dispatchable)
            return workflow_id

    def set_outcome(self, repo: str, file: str, outcome: str) -> None:
        """Runs dispatched from now on conclude `outcome`."""
        with self._lock:
            workflow = self._workflow(repo.lower(), file)
            if workflow is None:
                raise KeyError(f"{repo} has no workflow {file}")
            workflow.outcome = outcome

    def runs_of(self, repo: str, file: str) -> list[Run]:
        with self._lock:
            return [r for r in self.runs.values()
                    if r.repo.full_name.lower() == repo.lower() and r.workflow.file == file]

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next `count` requests of `kind` (dispatch, runs, run, cancel, logs, jobs, download) misbehave:
        `throttle` (429 with `retry-after`), `primary` (403, `x-ratelimit-remaining: 0` and `x-ratelimit-reset`),
        `secondary` (403 with `retry-after` and the secondary-limit message), `error` (500), `timeout` (held
        `seconds`, default `timeout_seconds`, then answered) or `lost` (the request takes effect, then the
        answer is a 502: a dispatch that happened although the caller saw it fail). `seconds` is also the
        wait the rate-limit faults ask for (default 2)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        with self._lock:
            self._faults[kind].append(Fault(fault, count, seconds))

    def add_artifact(self, repo: str, run_id: int, name: str, data: bytes, *, expired: bool = False) -> int:
        """An artifact that run `run_id` of `repo` uploaded (the run need not be one dispatched here: webhook
        payloads name runs of their own); returns its id."""
        return self._add_blob(Blob(0, repo.lower(), name, data, run_id=run_id, expired=expired))

    def add_asset(self, repo: str, name: str, data: bytes) -> int:
        """A release asset of `repo`; returns its id."""
        return self._add_blob(Blob(0, repo.lower(), name, data))

    def _add_blob(self, blob: Blob) -> int:
        with self._lock:
            blob.id = next(self._ids)
            self.blobs[blob.id] = blob
            return blob.id

    def clear_faults(self) -> None:
        with self._lock:
            for faults in self._faults.values():
                faults.clear()

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parsed.path))
        query = dict(parse_qsl(parsed.query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self.requests.append(Request(method, path, query, body, dict(headers)))
        if DOWNLOAD.match(path):
            return self._with_fault("download", lambda: self._download(path, query), lowered)
        if BLOB.match(path):
            return self._with_fault("download", lambda: self._blob_download(path, query), lowered)
        page = HTML_RUN.match(path)
        if page and method == "GET":
            return self._html(page, base)
        # "All API requests must include a valid User-Agent header. Requests with no User-Agent header will be
        # rejected." (/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent)
        if not lowered.get("user-agent"):
            return 403, b"Request forbidden by administrative rules. Please make sure your request has a " \
                        b"User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api" \
                        b"#user-agent-required). Check https://developer.github.com for other possible causes.\n", \
                {"Content-Type": "text/plain; charset=utf-8"}
        version = lowered.get("x-github-api-version", API_VERSIONS[0])
        if version not in API_VERSIONS:
            # /rest/about-the-rest-api/api-versions: "If you specify an API version that is no longer supported,
            # you will receive a 400 error." (wording of the message: modelled)
            return _error(400, f"API version {version} not supported.", DOCS_REST + "/about-the-rest-api/api-versions")
        minting = ACCESS_TOKENS.match(path)
        if minting is not None:
            if method != "POST":
                return _error(404, "Not Found", DOCS_REST)
            return self._with_fault("token", lambda: self._access_token(int(minting["id"]),
                                                                        lowered.get("authorization")), lowered)
        token = self._token(lowered.get("authorization"))
        if isinstance(token, tuple):
            return token
        asset = ASSET.match(path)
        if asset and method == "GET":
            return self._limited(token, self._with_fault("asset", lambda: self._asset(asset, token, lowered, base),
                                                         lowered))
        match = REPOS.match(path)
        kind = self._kind(method, match["rest"]) if match else None
        if match is None or kind is None:
            return self._limited(token, _error(404, "Not Found", DOCS_REST))

        def answer() -> Reply:
            assert match is not None and kind is not None and not isinstance(token, tuple)
            return self._route(kind, method, match, query, body, raw, token, base)

        return self._limited(token, self._with_fault(kind, answer, lowered))

    def _with_fault(self, kind: str, answer: Callable[[], Reply], headers: dict[str, str]) -> Reply:
        with self._lock:
            fault = self._take_fault(kind)
        if fault is None:
            return answer()
        rid = _request_id()
        wait = int(fault.seconds) if fault.seconds is not None else 2
        if fault.fault == "timeout":
            self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            return answer()
        if fault.fault == "lost":
            answer()  # it happened; the caller never hears so
            return 502, {"message": "Server Error"}, {"x-github-request-id": rid}
        if fault.fault == "error":
            return 500, {"message": "Server Error"}, {"x-github-request-id": rid}
        if fault.fault == "primary":
            # rate-limits-for-the-rest-api, "Exceeding the rate limit": "If you exceed your primary rate limit,
            # you will receive a 403 or 429 response, and the x-ratelimit-remaining header will be 0. You should
            # not retry your request until after the time specified by the x-ratelimit-reset header."
            reset = int(self.now().timestamp()) + wait
            return 403, {"message": "API rate limit exceeded for installation ID 4242.",
                         "documentation_url": DOCS_REST + "/using-the-rest-api/rate-limits-for-the-rest-api",
                         "status": "403"}, {
                "x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": "0", "x-ratelimit-used": str(RATE_LIMIT),
                "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core", "x-github-request-id": rid}
        # Secondary limits: "a 403 or 429 response and an error message that indicates that you exceeded a
        # secondary rate limit. If the retry-after response header is present, you should not retry your request
        # until after that many seconds has elapsed." (same page)
        status = 429 if fault.fault == "throttle" else 403
        return status, {"message": SECONDARY_MESSAGE.format(rid=rid),
                        "documentation_url": DOCS_REST + "/using-the-rest-api/rate-limits-for-the-rest-api"
                        "#about-secondary-rate-limits", "status": str(status)}, {
            "retry-after": str(wait), "x-github-request-id": rid}

    def _take_fault(self, kind: str) -> Fault | None:
        queue = self._faults[kind]
        while queue and queue[0].count <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].count -= 1
        return queue[0]

    def _token(self, authorization: str | None) -> Token | Reply:
        # Both `Authorization: Bearer T` and `Authorization: token T` are accepted
        # (/rest/authentication/authenticating-to-the-rest-api). Every Actions call here needs one: the seeded
        # repositories are private, and GitHub answers 401 "Requires authentication" to an anonymous write.
        if not authorization:
            return _error(401, "Requires authentication", DOCS_REST)
        scheme, _, value = authorization.strip().partition(" ")
        with self._lock:
            token = self.tokens.get(value.strip()) if scheme.lower() in ("bearer", "token") else None
        if token is None or (token.expires is not None and self.now() >= token.expires):
            return _error(401, "Bad credentials", DOCS_REST)
        return token

    def _access_token(self, installation_id: int, authorization: str | None) -> Reply:
        """An installation token for a JWT that checks out as GitHub checks it (see the module's docstring)."""
        scheme, _, assertion = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not assertion.strip():
            return _error(401, "Requires authentication", DOCS_APP_TOKEN)
        assertion = assertion.strip()
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _error(401, JWT_UNDECODABLE, DOCS_REST)
        with self._lock:
            app = next((a for a in self.apps.values()
                        if str(claims.get("iss")) in (str(a.id), a.client_id)), None)
        if header.get("alg") != "RS256" or app is None:
            return _error(401, JWT_UNDECODABLE, DOCS_REST)
        try:
            jwt.decode(assertion, app.public_key, algorithms=["RS256"],
                       options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError:
            return _error(401, JWT_UNDECODABLE, DOCS_REST)
        now = self.now().timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + 60:  # a little drift is forgiven
            return _error(401, IAT_INVALID, DOCS_REST)
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
            return _error(401, EXP_INVALID, DOCS_REST)
        if exp > now + JWT_MAX_SECONDS or exp - iat > JWT_MAX_SECONDS + 60:
            return _error(401, EXP_TOO_FAR, DOCS_REST)
        with self._lock:
            installation = self.installations.get(installation_id)
            if installation is None or installation.app_id != app.id:
                return _error(404, "Not Found", DOCS_APP_TOKEN)
            value = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
            expires = self.now() + timedelta(seconds=self.installation_token_seconds)
            self.tokens[value] = Token(value, f"{app.slug}[bot]", installation.repos, installation.actions, "app",
                                       expires=expires)
        return 201, {"token": value, "expires_at": _iso(expires),
                     "permissions": {"actions": installation.actions, "metadata": "read"},
                     "repository_selection": "all" if installation.repos is None else "selected"}, {}

    def _limited(self, token: Token, reply: Reply) -> Reply:
        """Every authenticated answer carries the primary rate limit's headers (rate-limits-for-the-rest-api,
        "Checking the status of your rate limit")."""
        status, body, headers = reply
        with self._lock:
            now = self.now().timestamp()
            if now >= token.window + 3600:
                token.window, token.used = now, 0
            token.used += 1
            left = max(0, RATE_LIMIT - token.used)
            extra = {"x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": str(left),
                     "x-ratelimit-used": str(token.used), "x-ratelimit-reset": str(int(token.window + 3600)),
                     "x-ratelimit-resource": "core", "x-github-request-id": _request_id()}
        return status, body, {**extra, **headers}

    @staticmethod
    def _kind(method: str, rest: str) -> str | None:
        routes = [("POST", r"workflows/[^/]+/dispatches", "dispatch"), ("GET", r"workflows/[^/]+/runs", "runs"),
                  ("GET", r"workflows/[^/]+", "runs"), ("GET", r"runs/\d+", "run"),
                  ("POST", r"runs/\d+/cancel", "cancel"), ("GET", r"runs/\d+/logs", "logs"),
                  ("GET", r"runs/\d+/jobs", "jobs"), ("GET", r"runs/\d+/artifacts", "artifacts"),
                  ("GET", r"artifacts/\d+/zip", "artifacts")]
        for verb, pattern, kind in routes:
            if method == verb and re.fullmatch(pattern, rest):
                return kind
        return None  # GitHub answers an unknown method on a known path 404 too

    def _route(self, kind: str, method: str, match: re.Match[str], query: dict[str, str], body: Any, raw: bytes,
               token: Token, base: str) -> Reply:
        with self._lock:
            repo = self._visible_repo(f"{match['owner']}/{match['repo']}", token)
            if repo is None:
                # A repository the token cannot see is answered as if it did not exist.
                return _error(404, "Not Found", DOCS_REST)
            parts = match["rest"].split("/")
            if kind == "artifacts":
                return self._artifacts(repo, parts, query, base)
            if parts[0] == "workflows":
                workflow = self._workflow(repo.full_name.lower(), parts[1])
                if workflow is None:
                    return _error(404, "Not Found", DOCS_DISPATCH if kind == "dispatch" else DOCS_RUNS)
                if kind == "dispatch":
                    return self._dispatch(repo, workflow, body, raw, token, base)
                if len(parts) == 2:
                    return 200, self._workflow_json(workflow, base), {}
                return self._list(repo, workflow, query, base, f"{base}/repos/{repo.full_name}/actions/{match['rest']}")
            run = self.runs.get(int(parts[1]))
            if run is None or run.repo is not repo:
                return _error(404, "Not Found", DOCS_RUNS)
            if kind == "run":
                return 200, self._run_json(run, base), {}
            if kind == "cancel":
                return self._cancel(run, token)
            if kind == "jobs":
                return 200, self._jobs_json(run, base), {}
            return self._logs(run, base)

    def _visible_repo(self, name: str, token: Token) -> Repo | None:
        repo = self.repos.get(name.lower())
        if repo is None or (token.repos is not None and name.lower() not in token.repos):
            return None
        return repo

    def _workflow(self, repo_key: str, workflow_id: str) -> Workflow | None:
        """By numeric id or by file name (/rest/actions/workflows: "You can replace workflow_id with the
        workflow file name. For example, you could use main.yaml")."""
        for (key, wid), workflow in self.workflows.items():
            if key == repo_key and (str(wid) == workflow_id or workflow.file == workflow_id):
                return workflow
        return None

    # -- dispatch

    def _dispatch(self, repo: Repo, workflow: Workflow, body: Any, raw: bytes, token: Token, base: str) -> Reply:
        if token.actions != "write":
            # Installation tokens and fine-grained PATs need the Actions repository permission (write) to
            # create a workflow dispatch event (/rest/actions/workflows#create-a-workflow-dispatch-event,
            # "Fine-grained access tokens"); without it GitHub answers 403 "Resource not accessible by ...".
            return _error(403, "Resource not accessible by " + ("integration" if token.kind == "app"
                                                               else "personal access token"), DOCS_DISPATCH)
        if not isinstance(body, dict):
            # GitHub's answer to a body that is not JSON (or not an object).
            return _error(400, "Problems parsing JSON", DOCS_DISPATCH)
        # Body schema (2022-11-28 description): ref (string, required), inputs (object, at most 25
        # properties), return_run_details (boolean). Schema failures read "Invalid request.\n\n..." — the
        # wording GitHub uses for request-schema validation (e.g. `"ref" wasn't supplied.`).
        ref = body.get("ref")
        if "ref" not in body:
            return _error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.', DOCS_DISPATCH)
        if not isinstance(ref, str):
            return _error(422, f"Invalid request.\n\nFor 'properties/ref', {json.dumps(ref)} is not a string.",
                          DOCS_DISPATCH)
        inputs = body.get("inputs", {})
        if inputs is None or not isinstance(inputs, dict):
            return _error(422, f"Invalid request.\n\nFor 'properties/inputs', {json.dumps(inputs)} is not an object.",
                          DOCS_DISPATCH)
        if len(inputs) > MAX_INPUTS:
            return _error(422, f"Invalid request.\n\nFor 'properties/inputs', the object has more than {MAX_INPUTS} "
                               f"properties.", DOCS_DISPATCH)  # the limit is documented; the wording is modelled
        details = body.get("return_run_details", False)
        if not isinstance(details, bool):
            return _error(422, f"Invalid request.\n\nFor 'properties/return_run_details', {json.dumps(details)} is "
                               f"not a boolean.", DOCS_DISPATCH)
        if not workflow.dispatchable:
            # Seen in public threads (elastic/terraform-provider-elasticstack#1829): HTTP 422.
            return _error(422, "Workflow does not have 'workflow_dispatch' trigger", DOCS_DISPATCH)
        short = _ref_name(repo, ref)
        if short is None:
            # The ref must be a branch or a tag ("The git reference for the workflow. The reference can be a
            # branch or tag name."); a commit SHA or an unknown name is refused: "No ref found for: fail"
            # (convictional/trigger-workflow-and-wait#44, day8/re-frame2#9287).
            return _error(422, f"No ref found for: {ref}", DOCS_DISPATCH)
        unexpected = [k for k in inputs if k not in workflow.inputs]
        if unexpected:
            # "Unexpected inputs provided: [\"foo\"]" (convictional/trigger-workflow-and-wait#4,
            # benc-uk/workflow-dispatch#80).
            return _error(422, f"Unexpected inputs provided: {json.dumps(unexpected, separators=(', ', ': '))}",
                          DOCS_DISPATCH)
        values: dict[str, str] = {}
        for input_id, spec in workflow.inputs.items():
            if input_id not in inputs:
                if spec.get("required") and spec.get("default") is None:
                    # Defaults fill omitted inputs ("Any default properties configured in the workflow file will
                    # be used when inputs are omitted"); a required one without a default is refused.
                    return _error(422, f"Required input '{input_id}' not provided", DOCS_DISPATCH)
                if spec.get("default") is not None:
                    values[input_id] = _as_text(spec["default"])
                continue
            problem, text = _check_input(input_id, spec, inputs[input_id])
            if problem:
                return _error(422, problem, DOCS_DISPATCH)
            values[input_id] = text
        if len(json.dumps(inputs, separators=(",", ":"))) > MAX_INPUTS_PAYLOAD:
            return _error(422, f"inputs are too large: the maximum payload for inputs is {MAX_INPUTS_PAYLOAD} "
                               f"characters", DOCS_DISPATCH)  # documented limit, modelled wording
        run = self._new_run(repo, workflow, short, values, token)
        self.dispatches += 1
        if details:
            # github.blog changelog 2026-02-19: with `return_run_details` the endpoint answers 200 with the
            # run's id, its API URL and its page (`workflow_run_id`, `run_url`, `html_url`); 204 otherwise.
            return 200, {"workflow_run_id": run.id, "run_url": f"{base}/repos/{repo.full_name}/actions/runs/{run.id}",
                         "html_url": self._html_url(run, base)}, {}
        return 204, None, {}

    def _new_run(self, repo: Repo, workflow: Workflow, ref: str, values: dict[str, str], token: Token) -> Run:
        run_id = next(self._ids)
        number = workflow.next_number
        workflow.next_number += 1
        sha = repo.branches.get(ref) or repo.tags.get(ref) or _sha(repo.full_name, ref)
        title = workflow.name if workflow.run_name is None else _render(workflow.run_name, values, ref, token.login,
                                                                          workflow.name)
        run = Run(run_id, workflow, repo, number, title, ref, sha, values, token.login, self.now(), workflow.outcome,
                  workflow.seconds, workflow.queue_seconds, [Job(j.name, list(j.lines)) for j in workflow.jobs])
        self.runs[run_id] = run
        return run

    # -- runs

    def _list(self, repo: Repo, workflow: Workflow, query: dict[str, str], base: str, self_url: str) -> Reply:
        now = self.now()
        try:
            created = _created_filter(query["created"]) if query.get("created") else None
        except ValueError:
            return _error(422, f"Invalid created value: {query['created']!r}", DOCS_RUNS)  # modelled wording
        status = query.get("status")
        if status and status not in STATUSES + CONCLUSIONS:
            return _error(422, f"Invalid request.\n\nFor 'status', {json.dumps(status)} is not a valid value.",
                          DOCS_RUNS)  # the parameter is an enum in the description; wording modelled
        try:
            per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", DEFAULT_PER_PAGE))))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            per_page, page = DEFAULT_PER_PAGE, 1
        runs = [r for r in self.runs.values() if r.workflow is workflow
                and now - r.created >= timedelta(seconds=self.list_delay_seconds)]
        if query.get("event"):
            runs = [r for r in runs if query["event"] == "workflow_dispatch"]
        if query.get("branch"):
            runs = [r for r in runs if r.ref == query["branch"]]
        if query.get("actor"):
            runs = [r for r in runs if r.actor == query["actor"]]
        if query.get("head_sha"):
            runs = [r for r in runs if r.sha == query["head_sha"]]
        if status:
            runs = [r for r in runs if status in (r.status_at(now), r.conclusion_at(now))]
        if created is not None:
            runs = [r for r in runs if created(r.created)]
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)  # newest first
        if any(query.get(k) for k in ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")):
            runs = runs[:FILTERED_CAP]
        chunk = runs[(page - 1) * per_page:page * per_page]
        last = max(1, -(-len(runs) // per_page))
        links = []
        if page < last:
            links += [_link(self_url, query, page + 1, "next"), _link(self_url, query, last, "last")]
        if page > 1:
            links += [_link(self_url, query, 1, "first"), _link(self_url, query, page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, {"total_count": len(runs), "workflow_runs": [self._run_json(r, base) for r in chunk]}, headers

    def _cancel(self, run: Run, token: Token) -> Reply:
        if token.actions != "write":
            return _error(403, "Resource not accessible by " + ("integration" if token.kind == "app"
                                                               else "personal access token"), DOCS_RUNS)
        now = self.now()
        if run.status_at(now) == "completed":
            # /rest/actions/workflow-runs#cancel-a-workflow-run answers 409 (Conflict); the message as seen in
            # public threads (technote-space/auto-cancel-redundant-workflow#68).
            return _error(409, "Cannot cancel a workflow run that is completed.", DOCS_RUNS + "#cancel-a-workflow-run")
        if run.cancel_at is None:
            run.cancel_at = now + timedelta(seconds=self.cancel_seconds)
        return 202, {}, {}

    def _logs(self, run: Run, base: str) -> Reply:
        now = self.now()
        if run.status_at(now) != "completed":
            return _error(404, "Not Found", DOCS_RUNS + "#download-workflow-run-logs")  # no archive until it ends
        expires = int(now.timestamp()) + LOG_URL_SECONDS
        location = f"{base}/_logs/{run.id}/{self._sign(run.id, expires)}.zip?expires={expires}"
        # "Gets a redirect URL to download an archive of log files for a workflow run. This link expires after
        # 1 minute. Look for Location: in the response header" (#download-workflow-run-logs): 302.
        return 302, None, {"Location": location}

    # -- build outputs

    def _artifacts(self, repo: Repo, parts: list[str], query: dict[str, str], base: str) -> Reply:
        key = repo.full_name.lower()
        if parts[0] == "runs":
            # /rest/actions/artifacts#list-workflow-run-artifacts: `{total_count, artifacts}`, `per_page` up to 100.
            found = [b for b in self.blobs.values() if b.repo == key and b.run_id == int(parts[1])]
            per_page = min(100, int(query.get("per_page", "30") or 30))
            return 200, {"total_count": len(found),
                         "artifacts": [self._artifact_json(b, base) for b in found[:per_page]]}, {}
        blob = self.blobs.get(int(parts[1]))
        if blob is None or blob.repo != key or blob.run_id is None:
            return _error(404, "Not Found", DOCS_REST + "/actions/artifacts#download-an-artifact")
        if blob.expired:
            # #download-an-artifact lists 410 Gone for an expired artifact (wording modelled).
            return _error(410, "Artifact has expired", DOCS_REST + "/actions/artifacts#download-an-artifact")
        return 302, None, {"Location": self._blob_link(blob, base)}

    def _asset(self, match: re.Match[str], token: Token, headers: dict[str, str], base: str) -> Reply:
        with self._lock:
            repo = self._visible_repo(f"{match['owner']}/{match['repo']}", token)
            blob = self.blobs.get(int(match["id"]))
            if repo is None or blob is None or blob.repo != repo.full_name.lower() or blob.run_id is not None:
                return _error(404, "Not Found", DOCS_REST + "/releases/assets#get-a-release-asset")
            # docs.github.com/rest/releases/assets#get-a-release-asset: with `Accept: application/octet-stream` the API
            # redirects to the binary (or streams it); the emulator always redirects (what a client must follow)
            if headers.get("accept") == "application/octet-stream":
                return 302, None, {"Location": self._blob_link(blob, base)}
            return 200, {"id": blob.id, "name": blob.name, "state": "uploaded", "size": len(blob.data),
                         "content_type": "application/zip",
                         "url": f"{base}/repos/{repo.full_name}/releases/assets/{blob.id}"}, {}

    def _artifact_json(self, blob: Blob, base: str) -> dict[str, Any]:
        url = f"{base}/repos/{self.repos[blob.repo].full_name}/actions/artifacts/{blob.id}"
        return {"id": blob.id, "name": blob.name, "size_in_bytes": len(blob.data), "url": url,
                "archive_download_url": f"{url}/zip", "expired": blob.expired,
                "workflow_run": {"id": blob.run_id}}

    def _blob_link(self, blob: Blob, base: str) -> str:
        """A pre-signed, short-lived link without the token, as GitHub's download redirects are
        (docs.github.com/rest/actions/artifacts#download-an-artifact: the URL "expires after 1 minute");
        an expired or altered one is refused as Azure Storage refuses a bad SAS."""
        expires = int(self.now().timestamp()) + LOG_URL_SECONDS
        return f"{base}/_blobs/{blob.id}/{self._sign(-blob.id, expires)}?expires={expires}"

    def _blob_download(self, path: str, query: dict[str, str]) -> Reply:
        match = BLOB.match(path)
        assert match is not None
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            expires = 0
        with self._lock:
            blob = self.blobs.get(int(match["id"]))
        if blob is None or self._sign(-blob.id, expires) != match["sig"] or self.now().timestamp() > expires:
            return 403, (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
                         b"<Message>Signature not valid in the specified time frame</Message></Error>"), \
                {"Content-Type": "application/xml"}
        return 200, blob.data, {"Content-Type": "application/zip"}

    def _sign(self, run_id: int, expires: int) -> str:
        return hashlib.sha256(f"{self._secret}/{run_id}/{expires}".encode()).hexdigest()[:32]

    def _download(self, path: str, query: dict[str, str]) -> Reply:
        match = DOWNLOAD.match(path)
        assert match is not None
        run_id = int(match["run"])
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            expires = 0
        signed = self._sign(run_id, expires) == match["sig"]
        if not signed or self.now().timestamp() > expires:
            # The download URL is pre-signed storage: an expired or altered one is refused as storage refuses
            # an expired signature (403 AuthenticationFailed).
            return 403, (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
                         b"<Message>Signature not valid in the specified time frame</Message></Error>"), \
                {"Content-Type": "application/xml"}
        with self._lock:
            run = self.runs[run_id]
            data = self._zip(run)
        return 200, data, {"Content-Type": "application/zip",
                           "Content-Disposition": f"attachment; filename=logs_{run_id}.zip"}

    def _zip(self, run: Run) -> bytes:
        """The run's log archive as GitHub lays it out: `{n}_{job}.txt` at the top for each job's whole log and
        `{job}/{n}_{step}.txt` per step; each line starts with its UTC timestamp and the files with a BOM."""
        now = self.now()
        end = run.finished_at()
        cancelled = run.conclusion_at(now) == "cancelled"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for index, job in enumerate(run.jobs, start=1):
                span = max(0.0, (end - run.started).total_seconds())
                share = span / max(1, len(job.lines))
                stamped, emitted = [], 0
                for i, text in enumerate(job.lines):
                    at = run.started + timedelta(seconds=share * i)
                    if cancelled and at >= end:
                        break
                    stamped.append(f"{_stamp(at)} {text}")
                    emitted += 1
                if cancelled:
                    stamped.append(f"{_stamp(end)} ##[error]The operation was canceled.")
                elif run.outcome != "success":
                    stamped.append(f"{_stamp(end)} ##[error]Process completed with exit code 1.")
                whole = "\ufeff" + "\n".join(stamped) + "\n"
                archive.writestr(f"{index}_{job.name}.txt", whole.encode())
                archive.writestr(f"{job.name}/1_Set up job.txt", f"\ufeff{_stamp(run.started)} Current runner "
                                 f"version: '2.330.0'\n".encode())
                archive.writestr(f"{job.name}/2_Run.txt", ("\ufeff" + "\n".join(stamped[:emitted]) + "\n").encode())
        return buffer.getvalue()

    # -- JSON shapes (/rest/actions/workflow-runs, "Get a workflow run" response schema)

    def _html_url(self, run: Run, base: str) -> str:
        return f"{self.html_base or base}/{run.repo.full_name}/actions/runs/{run.id}"

    def _run_json(self, run: Run, base: str) -> dict[str, Any]:
        now = self.now()
        api = f"{base}/repos/{run.repo.full_name}"
        status = run.status_at(now)
        updated = min(now, run.finished_at()) if status == "completed" else (run.started if status == "in_progress"
                                                                             else run.created)
        return {
            "id": run.id, "name": run.workflow.name, "node_id": f"WFR_{run.id}", "head_branch": run.ref,
            "head_sha": run.sha, "path": run.workflow.path, "display_title": run.display_title,
            "run_number": run.number, "event": "workflow_dispatch", "status": status,
            "conclusion": run.conclusion_at(now), "workflow_id": run.workflow.id, "check_suite_id": run.id + 1,
            "url": f"{api}/actions/runs/{run.id}", "html_url": self._html_url(run, base), "pull_requests": [],
            "created_at": _iso(run.created), "updated_at": _iso(updated), "run_attempt": 1,
            "run_started_at": _iso(run.created), "actor": _user(run.actor), "triggering_actor": _user(run.actor),
            "jobs_url": f"{api}/actions/runs/{run.id}/jobs", "logs_url": f"{api}/actions/runs/{run.id}/logs",
            "cancel_url": f"{api}/actions/runs/{run.id}/cancel", "rerun_url": f"{api}/actions/runs/{run.id}/rerun",
            "workflow_url": f"{api}/actions/workflows/{run.workflow.id}",
            "repository": {"id": run.repo.id, "full_name": run.repo.full_name, "private": run.repo.private},
        }

    def _workflow_json(self, workflow: Workflow, base: str) -> dict[str, Any]:
        repo = self.repos[workflow.repo]
        return {"id": workflow.id, "node_id": f"W_{workflow.id}", "name": workflow.name, "path": workflow.path,
                "state": "active", "url": f"{base}/repos/{repo.full_name}/actions/workflows/{workflow.id}",
                "html_url": f"{self.html_base or base}/{repo.full_name}/blob/main/{workflow.path}"}

    def _jobs_json(self, run: Run, base: str) -> dict[str, Any]:
        now = self.now()
        status, conclusion = run.status_at(now), run.conclusion_at(now)
        jobs = [{"id": run.id * 10 + i, "run_id": run.id, "name": job.name, "status": status,
                 "conclusion": conclusion, "started_at": _iso(run.started) if status != "queued" else None,
                 "completed_at": _iso(run.finished_at()) if status == "completed" else None,
                 "html_url": f"{self._html_url(run, base)}/job/{run.id * 10 + i}"}
                for i, job in enumerate(run.jobs, start=1)]
        return {"total_count": len(jobs), "jobs": jobs}

    def _html(self, match: re.Match[str], base: str) -> Reply:
        with self._lock:
            run = self.runs.get(int(match["run"]))
            if run is None or run.repo.full_name.lower() != f"{match['owner']}/{match['repo']}".lower():
                return 404, b"<h1>Not Found</h1>", {"Content-Type": "text/html; charset=utf-8"}
            now = self.now()
            state = run.conclusion_at(now) or run.status_at(now)
            lines = "\n".join(f"{job.name}: {line}" for job in run.jobs for line in job.lines)
        page = (f"<!doctype html><title>{html.escape(run.display_title)}</title><h1>{html.escape(run.display_title)}"
                f"</h1><p>{html.escape(run.workflow.path)} #{run.number} on {html.escape(run.ref)}: <b>{state}</b></p>"
                f"<pre>{html.escape(lines) if state in CONCLUSIONS else ''}</pre>")
        return 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}


# -- helpers


def _error(status: int, message: str, docs: str) -> Reply:
    """GitHub's error body: `message`, `documentation_url` and the status as a string."""
    return status, {"message": message, "documentation_url": docs, "status": str(status)}, {}


def _request_id() -> str:
    return uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:6].upper()


def _sha(repo: str, name: str) -> str:
    return hashlib.sha1(f"{repo}@{name}".encode()).hexdigest()


def _ref_name(repo: Repo, ref: str) -> str | None:
    """The branch or tag a dispatch's `ref` names (short or `refs/heads/...` / `refs/tags/...`), or None."""
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):] if ref[len("refs/heads/"):] in repo.branches else None
    if ref.startswith("refs/tags/"):
        return ref[len("refs/tags/"):] if ref[len("refs/tags/"):] in repo.tags else None
    return ref if ref in repo.branches or ref in repo.tags else None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_input(input_id: str, spec: dict[str, Any], value: Any) -> tuple[str | None, str]:
    """A value for a declared input, as the workflow's input type allows: strings for every type, JSON booleans
    for boolean inputs, JSON numbers for number inputs (the `inputs` context keeps booleans and numbers typed,
    workflow-syntax#onworkflow_dispatchinputs). Returns (problem, value as text). The wording for choices is
    GitHub's as seen in public threads; for booleans and numbers it is modelled on it."""
    kind = spec.get("type", "string")
    if isinstance(value, dict | list) or value is None:
        return f"Provided value for input '{input_id}' must be a string, a number or a boolean", ""
    text = _as_text(value)
    if kind == "boolean" and text not in ("true", "false"):
        return f"Provided value '{text}' for input '{input_id}' is not a valid boolean", ""
    if kind == "number":
        try:
            float(text)
        except ValueError:
            return f"Provided value '{text}' for input '{input_id}' is not a valid number", ""
    if kind == "choice" and text not in [str(o) for o in spec.get("options", [])]:
        return f"Provided value '{text}' for input '{input_id}' not in the list of allowed values", ""
    if kind in ("string", "choice", "environment") and isinstance(value, bool | int | float):
        return f"Provided value for input '{input_id}' must be a string", ""
    return None, text


EXPRESSION = re.compile(r"\$\{\{\s*(?P<expr>[^}]*?)\s*\}\}")


def _render(template: str, values: dict[str, str], ref: str, actor: str, workflow: str) -> str:
    """A `run-name` with its expressions evaluated: `inputs.x` and `github.event.inputs.x`, `github.ref_name`,
    `github.actor`, `github.workflow`; anything else renders empty (workflow-syntax#run-name)."""

    def value(m: re.Match[str]) -> str:
        expr = m["expr"]
        for prefix in ("inputs.", "github.event.inputs."):
            if expr.startswith(prefix):
                return values.get(expr[len(prefix):], "")
        return {"github.ref_name": ref, "github.actor": actor, "github.workflow": workflow}.get(expr, "")

    return EXPRESSION.sub(value, template)


def _created_filter(text: str) -> Callable[[datetime], bool]:
    """GitHub's date-search syntax for `created` (/search/search-github/getting-started-with-searching-on-github
    /understanding-the-search-syntax#query-for-dates): `>=D`, `>D`, `<=D`, `<D`, `D..D` (either end `*`), or `D`;
    D is a date or an ISO 8601 time. A bare date covers its whole day."""

    def bounds(value: str) -> tuple[datetime, datetime]:
        value = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day, day + timedelta(days=1)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", value):
            raise ValueError(value)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return at, at + timedelta(seconds=1)

    op = next((o for o in (">=", "<=", ">", "<") if text.startswith(o)), None)
    if op is not None:
        start, end = bounds(text[len(op):])
        low, high = {">=": (start, None), ">": (end, None), "<=": (None, end), "<": (None, start)}[op]
        return lambda t: (low is None or t >= low) and (high is None or t < high)
    if ".." in text:
        left, _, right = text.partition("..")
        lo = bounds(left)[0] if left.strip() != "*" else None
        hi = bounds(right)[1] if right.strip() != "*" else None
        return lambda t: (lo is None or t >= lo) and (hi is None or t < hi)
    lo, hi = bounds(text)
    return lambda t: lo <= t < hi


def _link(url: str, query: dict[str, str], page: int, rel: str) -> str:
    return f'<{url}?{urlencode({**query, "page": str(page)}, quote_via=quote)}>; rel="{rel}"'


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"}


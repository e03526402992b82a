"""GitHub Actions through the GitHub REST API, with httpx: dispatch a workflow, find and follow its run,
cancel it, read the end of its logs.

Plain HTTP rather than an SDK: five endpoints, and the error mapping, redirect handling and download cap
below are what matter (PyGithub and githubkit would add a large dependency and still need all of it).
Calls send GitHub's recommended headers (`Accept: application/vnd.github+json`, `X-GitHub-Api-Version`, a
`User-Agent`, which GitHub requires) and the token as a Bearer token, only to `settings.github_api_url`.
Every failure is a `TargetError` whose message never holds the token.

A GitHub App signs in here too (`installation_token`): a JWT signed with the app's private key is exchanged for an
installation token, kept in this process until shortly before it expires.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx
import jwt

from shared.adapters import tls
from shared.adapters.clock import clock_for
from shared.adapters.http_answers import retry_after as _retry_after
from shared.adapters.http_answers import scrub as _scrub
from shared.config import Settings
from shared.ports import PipelineRun, TargetError

API_VERSION = "2022-11-28"
USER_AGENT = "slipway-release-manager"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_LOG_ARCHIVE = 64 * 1024 * 1024
"""The largest log archive downloaded by default (bytes, compressed): a run's logs are read for their last
lines only."""
MAX_LOG_TEXT = 256 * 1024 * 1024
"""The most text unpacked from one archive (a zip bomb stops here)."""
MAX_LINE = 2000
FIND_PAGES = 10
"""Pages of 100 runs `find_run` reads: GitHub returns at most 1,000 runs for a filtered list
(docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow)."""
SECONDARY_WAIT = 60.0
"""docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit: for a
secondary rate limit without `retry-after` and with requests remaining, "wait for at least one minute"."""
TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z ")
JOB_FILE = re.compile(r"^(?P<n>\d+)_(?P<name>.+)\.txt$")
JWT_BACKDATE = 60
JWT_LIFETIME = 540
"""docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-
github-app: sign with RS256; `iat` "60 seconds in the past" against clock drift; `exp` "no more than 10 minutes into
the future" (9 here: GitHub refuses an `exp` it sees as too far ahead when clocks differ); `iss` the app's client id
or app id."""
RENEW_BEFORE = timedelta(minutes=5)
"""An installation token lasts an hour (docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/
generating-an-installation-access-token-for-a-github-app); a cached one is replaced this long before its
`expires_at`, so that no call starts with a token about to lapse."""
APP_HINTS = {401: "the private key in the step's secret is not this app's, or the app id is wrong",
             404: "no such installation of this app",
             403: "the installation is suspended or the app may not do this"}


class _Minted(NamedTuple):
    token: str
    expires_at: datetime


class GitHubActions:
    """PipelinesPort on GitHub's REST API (GitHub Enterprise Server: `https://HOST/api/v3`)."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None, *,
                 max_log_bytes: int = MAX_LOG_ARCHIVE) -> None:
        self.settings = settings
        self._transport = transport
        self.max_log_bytes = max_log_bytes
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self.now: Callable[[], datetime] = clock_for(settings).now
        """The clock JWTs and token expiry are reckoned on (the local stack's scaled clock, as GitHub's emulator)."""
        self._minted: dict[tuple[str, str, int, str], _Minted] = {}
        """Installation tokens by (API, app, installation, the key's hash): a new key gets a new token."""

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        base_url=self.settings.github_api_url.rstrip("/"), timeout=TIMEOUT, transport=self._transport,
                        verify=tls.context(),
                        follow_redirects=False,
                        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                                 "User-Agent": USER_AGENT})
        return self._client

    # -- PipelinesPort

    def dispatch(self, repo: str, workflow: str, ref: str, inputs: dict[str, str], token: str) -> int | None:
        """`return_run_details` makes GitHub answer 200 with the new run's id (github.blog changelog 2026-02-19,
        docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event); a server without it answers
        204 and the run is found by its marker."""
        what = f"dispatch of {workflow} on {ref} in {repo}"
        response = self._call("POST", f"{_repo(repo)}/actions/workflows/{quote(workflow, safe='')}/dispatches",
                              token, what, json={"ref": ref, "inputs": inputs, "return_run_details": True})
        if response.status_code == 204:
            return None
        run_id = self._json(response, what).get("workflow_run_id")
        return int(run_id) if isinstance(run_id, int) else None

    def find_run(self, repo: str, workflow: str, marker: str, token: str) -> PipelineRun | None:
        """The oldest `workflow_dispatch` run created in the last day whose `display_title` (the workflow's
        `run-name`) holds `marker` as a word. Runs come newest first, at most 1,000 of them."""
        since = (clock_for(self.settings).now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        pattern = re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(marker)}(?![A-Za-z0-9_-])")
        what = f"list of runs of {workflow} in {repo}"
        found: dict[str, Any] | None = None
        for page in range(1, FIND_PAGES + 1):
            response = self._call("GET", f"{_repo(repo)}/actions/workflows/{quote(workflow, safe='')}/runs", token,
                                  what, params={"event": "workflow_dispatch", "created": f">={since}",
                                                "per_page": 100, "page": page})
            runs = self._json(response, what).get("workflow_runs") or []
            for run in runs:
                if isinstance(run, dict) and pattern.search(str(run.get("display_title") or "")):
                    found = run  # keep going: the oldest match is the one dispatched first
            if len(runs) < 100:
                break
        return _run(found) if found is not None else None

    def run(self, repo: str, run_id: int, token: str) -> PipelineRun:
        what = f"read of workflow run {run_id} in {repo}"
        return _run(self._json(self._call("GET", f"{_repo(repo)}/actions/runs/{int(run_id)}", token, what), what))

    def cancel(self, repo: str, run_id: int, token: str) -> None:
        """Idempotent: GitHub's 409 for a run that already completed means there is nothing left to cancel."""
        try:
            self._call("POST", f"{_repo(repo)}/actions/runs/{int(run_id)}/cancel", token,
                       f"cancel of workflow run {run_id} in {repo}")
        except _Conflict:
            return

    def log_lines(self, repo: str, run_id: int, token: str, limit: int) -> list[str]:
        """The last `limit` lines of the run's job logs, jobs in order, each line prefixed with `[job]` (GitHub's
        per-line timestamps dropped). GitHub answers 302 with a short-lived pre-signed download URL
        (docs.github.com/rest/actions/workflow-runs#download-workflow-run-logs); it is fetched without the
        token, never from a plain-http host other than the loopback, and at most `max_log_bytes` of it."""
        if limit <= 0:
            return []
        what = f"logs of workflow run {run_id} in {repo}"
        response = self._call("GET", f"{_repo(repo)}/actions/runs/{int(run_id)}/logs", token, what)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            raise TargetError(f"GitHub {what}: expected a redirect to the log archive, got {response.status_code}",
                              retryable=False)
        url = str(response.request.url.join(location))
        _check_download_url(url, what)
        return _tail(self._download(url, what), limit, what)

    # -- GitHub App

    def installation_token(self, app_id: str, installation_id: int, private_key: str) -> str:
        """An installation token of the app (`app_id`: its client id or app id), minted with a JWT signed by
        `private_key` (PEM) at `POST /app/installations/{id}/access_tokens` (docs.github.com/rest/apps/apps
        #create-an-installation-access-token-for-an-app), or the one minted before while it has more than
        RENEW_BEFORE left. Neither the key nor the JWT is ever in a message."""
        key = (self.settings.github_api_url, app_id, int(installation_id),
               hashlib.sha256(private_key.encode()).hexdigest())
        now = self.now()
        with self._lock:
            cached = self._minted.get(key)
        if cached is not None and now < cached.expires_at - RENEW_BEFORE:
            return cached.token
        what = f"sign-in of app {app_id} as installation {int(installation_id)}"
        assertion = _app_jwt(app_id, private_key, now, what)
        response = self._call("POST", f"/app/installations/{int(installation_id)}/access_tokens", assertion, what,
                              hints=APP_HINTS)
        body = self._json(response, what)
        token, expires = body.get("token"), body.get("expires_at")
        try:
            expires_at = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            expires_at = None
        if not isinstance(token, str) or not token or expires_at is None or expires_at.tzinfo is None:
            raise TargetError(f"GitHub {what}: the answer holds no token and expiry", retryable=True)
        with self._lock:
            self._minted[key] = _Minted(token, expires_at)
        return token

    def _forget(self, token: str) -> bool:
        """Drop a minted token GitHub refused (revoked, or expired on GitHub's clock): True when it was one."""
        with self._lock:
            stale = [k for k, v in self._minted.items() if v.token == token]
            for k in stale:
                del self._minted[k]
        return bool(stale)

    # -- HTTP

    def _call(self, method: str, path: str, token: str, what: str, *, json: Any = None,
              params: dict[str, Any] | None = None, accept: str | None = None,
              hints: dict[int, str] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **({"Accept": accept} if accept else {})}
        try:
            response = self._http().request(method, path, json=json, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise TargetError(f"GitHub {what}: timed out ({type(exc).__name__})", retryable=True) from None
        except httpx.HTTPError as exc:
            raise TargetError(f"GitHub {what}: {type(exc).__name__}: {_scrub(str(exc), token)}",
                              retryable=True) from None
        if response.status_code == 401 and self._forget(token):
            # An installation token this process minted was refused: the next try mints a new one.
            raise TargetError(f"GitHub {what}: 401 the app's installation token was refused (expired or revoked); "
                              f"a new one is requested", retryable=True)
        if response.status_code >= 400:
            raise _error(response, what, token, hints)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise TargetError(f"GitHub {what}: the answer ({response.status_code}) is not JSON",
                              retryable=True) from None
        if not isinstance(body, dict):
            raise TargetError(f"GitHub {what}: unexpected answer {type(body).__name__}", retryable=True)
        return body

    def _download(self, url: str, what: str) -> bytes:
        """The archive, read in chunks up to the cap. A fresh request: no Authorization header goes to the
        storage host, and no further redirect is followed."""
        try:
            with httpx.Client(timeout=TIMEOUT, transport=self._transport, verify=tls.context(), follow_redirects=False,
                              headers={"User-Agent": USER_AGENT}) as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise TargetError(f"GitHub {what}: the log archive's download answered {response.status_code}"
                                      f"{' (its link expired)' if response.status_code == 403 else ''}",
                                      retryable=response.status_code in (403, 429) or response.status_code >= 500)
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_log_bytes:
                    raise TargetError(_too_big(what, self.max_log_bytes), retryable=False)
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > self.max_log_bytes:
                        raise TargetError(_too_big(what, self.max_log_bytes), retryable=False)
                return bytes(data)
        except httpx.HTTPError as exc:
            raise TargetError(f"GitHub {what}: download failed ({type(exc).__name__})", retryable=True) from None


class _Conflict(TargetError):
    """A 409 (a cancel of a completed run)."""


def _repo(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _run(body: dict[str, Any]) -> PipelineRun:
    try:
        return PipelineRun(int(body["id"]), str(body["status"]), body.get("conclusion"), str(body.get("html_url", "")))
    except (KeyError, TypeError, ValueError):
        raise TargetError("GitHub answered a workflow run without id or status", retryable=True) from None


def _check_download_url(url: str, what: str) -> None:
    """The log archive comes from GitHub's storage over https. Plain http is allowed only to 127.0.0.1, where
    the local emulator serves it: a pre-signed URL sent in clear text could be read or altered on the way, and
    an http redirect to anywhere else is not GitHub's."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return
    raise TargetError(f"GitHub {what}: refusing to download the log archive from {parts.scheme}://{parts.hostname}",
                      retryable=False)


def _too_big(what: str, cap: int) -> str:
    return f"GitHub {what}: the log archive is larger than {cap:,} bytes; not read"


def _tail(archive: bytes, limit: int, what: str) -> list[str]:
    """The last `limit` lines of the jobs' logs. The archive holds `{n}_{job}.txt` per job (the whole job log)
    and `{job}/{n}_{step}.txt` per step; when the job files are missing, the step files are read instead."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise TargetError(f"GitHub {what}: the log archive is not a zip file", retryable=True) from None
    with zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        jobs = sorted(((int(m["n"]), m["name"], n) for n in names if "/" not in n and (m := JOB_FILE.match(n))),
                      key=lambda j: (j[0], j[1]))
        if not jobs:
            steps: dict[str, list[tuple[int, str]]] = {}
            for n in names:
                folder, _, leaf = n.partition("/")
                if (m := JOB_FILE.match(leaf)) and "/" not in leaf:
                    steps.setdefault(folder, []).append((int(m["n"]), n))
            sources = [(job, [p for _, p in sorted(files)]) for job, files in sorted(steps.items())]
        else:
            sources = [(name, [path]) for _, name, path in jobs]
        tail: deque[str] = deque(maxlen=limit)
        budget = MAX_LOG_TEXT
        for job, paths in sources:
            for path in paths:
                with zf.open(path) as member:
                    for raw in io.TextIOWrapper(member, encoding="utf-8-sig", errors="replace"):
                        budget -= len(raw)
                        if budget < 0:
                            tail.append(f"[{job}] ... (logs cut at {MAX_LOG_TEXT // (1024 * 1024)} MiB)")
                            return list(tail)
                        line = TIMESTAMP.sub("", raw.rstrip("\r\n"))
                        tail.append(f"[{job}] {line[:MAX_LINE]}")
        return list(tail)


def _app_jwt(app_id: str, private_key: str, now: datetime, what: str) -> str:
    """The JWT that authenticates as the app (RS256; iat, exp and iss as JWT_LIFETIME's docs say)."""
    issued = int(now.timestamp())
    try:
        return jwt.encode({"iat": issued - JWT_BACKDATE, "exp": issued + JWT_LIFETIME, "iss": app_id}, private_key,
                          algorithm="RS256")
    except (jwt.PyJWTError, ValueError, TypeError):  # a key that does not load; its text is never repeated
        raise TargetError(f"GitHub {what}: the app's private key in Key Vault is not an RSA private key in PEM format",
                          retryable=False) from None


def _error(response: httpx.Response, what: str, token: str, hints: dict[int, str] | None = None) -> TargetError:
    """GitHub's answer as a TargetError. Rate limits (429, or 403 with `x-ratelimit-remaining: 0`, a
    `retry-after`, or the secondary-limit message) and 5xx are retryable, after `retry-after` seconds or until
    `x-ratelimit-reset` (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api); 401, other
    403s, 404 and 422 are not, with GitHub's message."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            message += " (" + "; ".join(str(e.get("message") or e) if isinstance(e, dict) else str(e)
                                        for e in errors[:5]) + ")"
    message = _scrub(" ".join(message.split())[:500], token) or response.reason_phrase
    text = f"GitHub {what}: {status} {message}"
    headers = response.headers
    remaining = headers.get("x-ratelimit-remaining")
    limited = status == 429 or (status == 403 and (remaining == "0" or "retry-after" in headers
                                                   or "rate limit" in message.lower()))
    if limited:
        return TargetError(text, retryable=True, retry_after=_rate_wait(headers))
    if status >= 500:
        return TargetError(text, retryable=True, retry_after=_retry_after(headers.get("retry-after")))
    if hints and status in hints:
        text += f" ({hints[status]})"
    elif status == 401:
        text += " (the token in the step's secret is wrong, expired or revoked)"
    elif status == 404:
        text += " (no such repository or workflow, or the token cannot see it)"
    elif status == 403:
        text += " (the token lacks the Actions write permission on the repository)"
    if status == 409:
        return _Conflict(text, retryable=False)
    return TargetError(text, retryable=False)


def _rate_wait(headers: httpx.Headers) -> float:
    after = _retry_after(headers.get("retry-after"))
    if after is not None:
        return after
    reset = headers.get("x-ratelimit-reset")
    if headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        return float(min(3600, max(1, int(reset) - int(time.time()))))
    return SECONDARY_WAIT


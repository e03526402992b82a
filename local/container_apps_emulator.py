"""An Azure Container Apps emulator for jobs, speaking the Microsoft.App REST API as
`azure.mgmt.appcontainers.ContainerAppsAPIClient` (azure-mgmt-appcontainers 5.1.0) sends it.

It answers, for jobs seeded with `add_job`:

* `GET .../providers/Microsoft.App/jobs/{job}` (Jobs_Get) and the job's environment,
  `GET .../providers/Microsoft.App/managedEnvironments/{env}` (ManagedEnvironments_Get), whose
  `appLogsConfiguration.logAnalyticsConfiguration.customerId` names the Log Analytics workspace;
* `POST .../jobs/{job}/start` (Jobs_Start) with an optional `JobExecutionTemplate`: a long-running
  operation (202 + `Location`, polled until 200 with the execution's name and id);
* `GET .../jobs/{job}/executions` (JobsExecutions_List, paged with `nextLink`) and
  `GET .../jobs/{job}/executions/{name}` (JobExecution), with the statuses of `JobExecutionRunningState`;
* `POST .../jobs/{job}/executions/{name}/stop` (Jobs_StopExecution), long-running too.

Source: azure-rest-api-specs specification/app/resource-manager/Microsoft.App/ContainerApps/stable/
2025-07-01/Jobs.json (paths, "x-ms-long-running-operation-options": {"final-state-via": "location"} for
start and stop, the examples Job_Start.json and Job_Execution_Get.json) and the models of
azure-mgmt-appcontainers 5.1.0 (api-version 2026-07-01: `JobExecutionProperties.detailedStatus`,
`ContainerExecutionStatus.code` "Exit code").

An execution runs as a LOCAL PROCESS. The image name selects what runs from a small table (`images`:
image → its ENTRYPOINT, `image_args`: image → its CMD); `files` maps paths inside the "image" to host
files. An image nobody seeded is never turned into a host command: the execution fails as a failed
image pull would. `command` replaces the ENTRYPOINT and `args` the CMD, as Kubernetes (on which
Container Apps runs) does ("Define a Command and Arguments for a Container": a command given without
args ignores the image's CMD too); an executable that is not a file of the image fails to start, as
runc says `exec: "x": executable file not found in $PATH` (exit code 128). The process gets only the
template's environment (secret references resolved from the job's secrets, which in Azure may be Key
Vault references the job reads with its identity) plus PATH.

Each line the process prints becomes a row of `ContainerAppConsoleLogs_CL` handed to `on_console
(workspace_id, row)`; an exit becomes a row of `ContainerAppSystemLogs_CL` handed to `on_system`.
`feed(monitor)` wires both into a `local.monitor_emulator.MonitorEmulator`, whose log queries then
see them, as Log Analytics would (after its ingestion delay: `console_delay_seconds`).

Point the client at `url` with an authentication policy that allows http; a request without a bearer
token is refused as ARM refuses it. Tests make it misbehave with `inject`, read what it was asked in
`requests` and what ran in `executions()`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as random
import selectors
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

from local.rest_emulator import Reply, Request, RestEmulator

logger = logging.getLogger(__name__)

API_VERSIONS = ("2025-07-01", "2026-07-01")
"""Microsoft.App api-versions answered: the newest stable one in azure-rest-api-specs and the default of
azure-mgmt-appcontainers 5.1.0. Anything else is refused as ARM refuses an unknown api-version."""
SAMPLE_IMAGE = "slipway/sample-migrate:1"
SAMPLE_SCRIPT = "/app/sample_migrate.py"
CONSOLE_TABLE = "ContainerAppConsoleLogs_CL"
SYSTEM_TABLE = "ContainerAppSystemLogs_CL"
CONSOLE_COLUMNS: list[tuple[str, str]] = [
    ("TimeGenerated", "datetime"), ("_timestamp_d", "real"), ("ContainerJobName_s", "string"),
    ("ContainerAppName_s", "string"), ("ContainerGroupName_s", "string"), ("ContainerName_s", "string"),
    ("ContainerImage_s", "string"), ("EnvironmentName_s", "string"), ("RevisionName_s", "string"),
    ("Stream_s", "string"), ("Log_s", "string"),
]
"""Columns of a console row as the Log Analytics destination names them (`_s` strings, `_d` numbers).
learn.microsoft.com "Monitor logs in Azure Container Apps with Log Analytics" lists ContainerAppName_s,
ContainerGroupName_s (the replica), ContainerImage_s, EnvironmentName_s, Log_s, RevisionName_s; rows of
a job carry the job in ContainerJobName_s and no app or revision, and the replica is named
`{execution}-{suffix}`: "Create a job with Azure Container Apps" queries one execution's lines with
`ContainerGroupName_s startswith '<execution>' | order by _timestamp_d asc`."""
SYSTEM_COLUMNS: list[tuple[str, str]] = [
    ("TimeGenerated", "datetime"), ("_timestamp_d", "real"), ("ContainerJobName_s", "string"),
    ("ExecutionName_s", "string"), ("ReplicaName_s", "string"), ("EnvironmentName_s", "string"),
    ("Type_s", "string"), ("Reason_s", "string"), ("Log_s", "string"),
]
"""A container's end in the system logs: Reason `ContainerTerminated`, "Container 'x' was terminated with
exit code 'n'" (azureossd.github.io, "Container Apps - Backoff restarts and container exits"). ARM shows
the same code in the execution's `detailedStatus` (api-version 2026-07-01), which is what Slipway reads."""
KINDS = ("jobs", "environments", "start", "executions", "execution", "stop", "operations")
FAULTS = ("throttle", "error", "timeout")
JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
"""Job names: lower case letters, digits and '-', starting with a letter, ending with a letter or digit,
no '--', fewer than 32 characters (`az containerapp job` --name)."""
CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""A container's name is a Kubernetes DNS label (RFC 1123)."""
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
"""Kubernetes' rule for environment variable names."""
HISTORY = 100
"""Executions a job keeps in its history (the oldest finished ones go first). "Each Container Apps job
maintains a history of recent job executions" (jobs.md); the emulator keeps this many."""

Hook = Callable[[str, dict[str, Any]], None]


@dataclass
class Environment:
    id: str
    name: str
    location: str
    workspace_id: str | None
    destination: str | None = "log-analytics"


@dataclass
class Job:
    id: str
    name: str
    subscription: str
    resource_group: str
    environment: Environment
    secrets: dict[str, str]
    container: dict[str, Any]
    """The job's own template container (used when a start names none)."""
    replica_timeout: int
    location: str
    executions: list[Execution] = field(default_factory=list)


@dataclass
class Execution:
    name: str
    job: Job
    replica: str
    template: dict[str, Any]
    """`{"containers": [...]}` as started (secret references by name, never their values)."""
    started: datetime
    status: str = "Running"
    ended: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    argv: list[str] = field(default_factory=list)
    """What the process ran, as host paths."""
    env: dict[str, str] = field(default_factory=dict)
    """The process environment (with secret values: for tests only, never served)."""
    lines: list[tuple[str, str]] = field(default_factory=list)
    """(stream, text) in the order printed."""
    process: subprocess.Popen[bytes] | None = None
    stop_requested: bool = False
    workdir: str | None = None

    @property
    def container(self) -> dict[str, Any]:
        return dict(self.template["containers"][0])

    @property
    def finished(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Stopped", "Degraded")


@dataclass
class Operation:
    id: str
    kind: str
    """start | stop"""
    execution: Execution
    polls_left: int


@dataclass
class Fault:
    kind: str
    fault: str
    count: int
    seconds: float | None = None


def _default_files() -> dict[str, str]:
    here = Path(__file__).resolve().parent
    return {"python": sys.executable, "python3": sys.executable, "/usr/local/bin/python": sys.executable,
            SAMPLE_SCRIPT: str(here / "sample_migrate.py")}


class ContainerAppsEmulator(RestEmulator):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "westeurope") -> None:
        super().__init__(host, port)
        self.region = region
        self.images: dict[str, list[str]] = {SAMPLE_IMAGE: ["python", SAMPLE_SCRIPT]}
        """Image reference → its ENTRYPOINT (paths inside the image). Only these images "pull"."""
        self.image_args: dict[str, list[str]] = {}
        """Image reference → its CMD (default arguments), when it has one."""
        self.files: dict[str, str] = _default_files()
        """Paths (or PATH names) inside every seeded image → the host file they are. Only these run."""
        self.on_console: Hook | None = None
        """`(workspace_id, row)` for each console line (a ContainerAppConsoleLogs_CL row)."""
        self.on_system: Hook | None = None
        """`(workspace_id, row)` for each system event (a ContainerAppSystemLogs_CL row)."""
        self.console_delay_seconds = 0.0
        """Log Analytics ingestion delay: rows reach the hooks this long after they were printed (in Azure
        typically tens of seconds to a few minutes)."""
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.start_polls = 1
        """How many polls of a start operation answer 202 before it completes."""
        self.retry_after = "1"
        """The Retry-After of operation answers (seconds)."""
        self.page_size = 20
        """Executions per page of the list (the rest behind `nextLink`)."""
        self.stop_grace_seconds = 5.0
        """A stopped replica gets SIGTERM, then SIGKILL after this (Kubernetes' termination grace period)."""
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.requests: list[Request] = []
        self.jobs: dict[tuple[str, str, str], Job] = {}
        self.environments: dict[str, Environment] = {}
        self.operations: dict[str, Operation] = {}
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._last_stamp = datetime.min.replace(tzinfo=UTC)

    # -- lifecycle

    def stop(self) -> None:
        """Stop serving and kill every execution still running."""
        self._stopping.set()
        with self._lock:
            running = [e for job in self.jobs.values() for e in job.executions if e.process and not e.finished]
        for execution in running:
            self._signal(execution, signal.SIGKILL)
        super().stop()

    # -- seeding and test hooks

    def add_environment(self, environment_id: str, log_workspace_id: str | None = None, *,
                        destination: str | None = "log-analytics") -> Environment:
        """A managed environment; its logs go to the Log Analytics workspace `log_workspace_id` (a
        customer id, a GUID) unless `destination` says otherwise ("azure-monitor", or None: no logs)."""
        m = re.match(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.App/managedEnvironments/"
                     r"(?P<name>[^/]+)$", environment_id, re.I)
        if m is None:
            raise ValueError(f"{environment_id!r} is not a managed environment's resource id")
        with self._lock:
            workspace = (log_workspace_id or str(uuid.uuid4())) if destination == "log-analytics" else None
            env = Environment(environment_id, m["name"], self.region, workspace, destination)
            self.environments[environment_id.lower()] = env
            return env

    def add_job(self, subscription: str, resource_group: str, name: str, environment_id: str,
                secrets: dict[str, str] | None = None, log_workspace_id: str | None = None, *,
                image: str = SAMPLE_IMAGE, replica_timeout: int = 1800) -> str:
        """A manual-trigger job in `environment_id` (created, with `log_workspace_id`, when not seeded yet);
        `secrets` are its secrets by name (in Azure: values or Key Vault references the job reads with its
        identity). Returns the job's resource id."""
        if not JOB_NAME.match(name) or "--" in name or name.endswith("-"):
            raise ValueError(f"invalid job name {name!r}")
        with self._lock:
            env = self.environments.get(environment_id.lower()) or self.add_environment(environment_id,
                                                                                         log_workspace_id)
            job_id = (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.App/"
                      f"jobs/{name}")
            self.jobs[(subscription.lower(), resource_group.lower(), name.lower())] = Job(
                job_id, name, subscription, resource_group, env, dict(secrets or {}),
                {"name": name, "image": image, "resources": {"cpu": 0.5, "memory": "1Gi"}}, replica_timeout,
                self.region)
            return job_id

    def executions(self, job: str | None = None) -> list[Execution]:
        """Executions (of the job named `job`, or of every job), in the order they started."""
        with self._lock:
            return [e for j in self.jobs.values() if job is None or j.name.lower() == job.lower()
                    for e in j.executions]

    def feed(self, monitor: Any) -> None:
        """Deliver console and system rows into a MonitorEmulator's tables (its `append_rows`)."""
        self.on_console = lambda workspace, row: monitor.append_rows(CONSOLE_TABLE, CONSOLE_COLUMNS, [row])
        self.on_system = lambda workspace, row: monitor.append_rows(SYSTEM_TABLE, SYSTEM_COLUMNS, [row])

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next `count` requests of `kind` (jobs, environments, start, executions, execution, stop,
        operations) misbehave: `throttle` (429 with Retry-After: 2), `error` (500) or `timeout` (held
        `seconds`, default `timeout_seconds`, then answered). A throttled or failed start starts nothing."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        with self._lock:
            self._faults.append(Fault(kind, fault, count, seconds))

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parsed.path)).rstrip("/")
        query = dict(parse_qsl(parsed.query, keep_blank_values=True))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        kind = _kind(method, path)
        with self._lock:
            self.requests.append(Request(method, path, query, body, dict(headers)))
            fault = self._take_fault(kind)
        if fault is not None:
            if fault.fault == "timeout":
                self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            elif fault.fault == "throttle":
                return 429, _error("TooManyRequests", "The request is being throttled (injected)."), \
                    {"Retry-After": "2"}
            else:
                return 500, _error("InternalServerError", "An internal error occurred (injected)."), {}
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return 401, _error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                                       "missing."), {}
        version = query.get("api-version")
        if not version:
            return 400, _error("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is "
                                                             "required for all requests."), {}
        if version not in API_VERSIONS:
            return 400, _error("InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The supported "
                                                             f"versions are '{','.join(API_VERSIONS)}'."), {}
        with self._lock:
            return self._route(method, path, query, body, base)

    def _take_fault(self, kind: str | None) -> Fault | None:
        if kind is None:
            return None
        for fault in self._faults:
            if fault.kind == kind and fault.count > 0:
                fault.count -= 1
                return fault
        return None

    def _route(self, method: str, path: str, query: dict[str, str], body: Any, base: str) -> Reply:
        if m := OPERATION.match(path):
            if method != "GET":
                return 405, _error("MethodNotAllowed", f"{method} is not allowed on an operation"), {}
            return self._operation(m["op"], query, base)
        if m := ENVIRONMENT.match(path):
            env = self.environments.get(path.lower())
            if env is None:
                return 404, _not_found("Microsoft.App/managedEnvironments", m["env"], m["rg"]), {}
            if method != "GET":
                return 405, _error("MethodNotAllowed", f"the emulator answers only GET on {path}"), {}
            return 200, _environment_json(env), {}
        m = JOB.match(path)
        if m is None:
            return 404, _error("NotFound", f"{method} {path} is not emulated"), {}
        job = self.jobs.get((m["sub"].lower(), m["rg"].lower(), m["job"].lower()))
        if job is None:
            return 404, _not_found("Microsoft.App/jobs", m["job"], m["rg"]), {}
        rest = m["rest"] or ""
        if rest == "" and method == "GET":
            return 200, _job_json(job), {}
        if rest == "/start" and method == "POST":
            return self._start(job, body, query, base)
        if rest == "/executions" and method == "GET":
            return self._list(job, path, query, base)
        if em := re.match(r"^/executions/(?P<name>[^/]+)(?P<stop>/stop)?$", rest, re.I):
            execution = next((e for e in job.executions if e.name.lower() == em["name"].lower()), None)
            if execution is None:
                return 404, _not_found("Microsoft.App/jobs/executions", f"{job.name}/{em['name']}",
                                       job.resource_group), {}
            if em["stop"] and method == "POST":
                return self._stop_execution(execution, query, base)
            if not em["stop"] and method == "GET":
                return 200, _execution_json(execution), {}
        return 405, _error("MethodNotAllowed", f"{method} is not allowed on {path}"), {}

    # -- start

    def _start(self, job: Job, body: Any, query: dict[str, str], base: str) -> Reply:
        if body is not None and not isinstance(body, dict):
            return 400, _error("InvalidRequestContent", "The request content was invalid and could not be "
                                                        "deserialized: the body must be a JobExecutionTemplate."), {}
        template = body or {}
        if template.get("initContainers"):
            return 400, _error("BadRequest", "the Container Apps emulator does not run init containers"), {}
        unknown = set(template) - {"containers", "initContainers"}
        if unknown:
            return 400, _error("InvalidRequestContent", f"Could not find member '{sorted(unknown)[0]}' on object "
                                                        f"of type 'JobExecutionTemplate'."), {}
        containers = template.get("containers") or [job.container]
        if not isinstance(containers, list) or len(containers) != 1:
            return 400, _error("BadRequest", "the Container Apps emulator runs executions of exactly one "
                                             "container"), {}
        container, problem = _checked_container(containers[0], job)
        if problem is not None:
            return 400, problem, {}
        execution = self._launch(job, container)
        op = Operation(uuid.uuid4().hex, "start", execution, self.start_polls)
        self.operations[op.id] = op
        return 202, None, {"Location": self._operation_url(op, query, base), "Retry-After": self.retry_after}

    def _operation_url(self, op: Operation, query: dict[str, str], base: str) -> str:
        sub = op.execution.job.subscription
        return (f"{base}/subscriptions/{sub}/providers/Microsoft.App/locations/{self.region}/"
                f"containerappsjobOperationResults/{op.id}?{urlencode({'api-version': query['api-version']})}")

    def _operation(self, op_id: str, query: dict[str, str], base: str) -> Reply:
        op = self.operations.get(op_id)
        if op is None:
            return 404, _error("NotFound", f"operation {op_id} was not found"), {}
        waiting = op.polls_left > 0 if op.kind == "start" else not op.execution.finished
        if waiting:
            op.polls_left -= 1
            return 202, None, {"Location": self._operation_url(op, query, base), "Retry-After": self.retry_after}
        if op.kind == "start":
            return 200, {"name": op.execution.name, "id": _execution_id(op.execution)}, {}
        return 200, None, {}

    def _launch(self, job: Job, container: dict[str, Any]) -> Execution:
        name = f"{job.name}-{_suffix(7)}"
        execution = Execution(name, job, f"{name}-{_suffix(5)}", {"containers": [container]}, self.now())
        job.executions.append(execution)
        self._forget_old(job)
        image = str(container["image"])
        entrypoint = self.images.get(image)
        if entrypoint is None:
            # Never a host command from an image name nobody seeded: the replica cannot pull it.
            self._end(execution, "Failed", None, "ImagePullFailure",
                      f"Failed to pull image '{image}': the local Container Apps emulator runs only the images "
                      f"seeded in its table ({', '.join(sorted(self.images)) or 'none'})")
            return execution
        command, args = list(container.get("command") or []), list(container.get("args") or [])
        argv = command + args if command else list(entrypoint) + (args or list(self.image_args.get(image, [])))
        program = self._file(argv[0]) if argv else None
        if program is None:
            self._end(execution, "Failed", 128, "StartError",
                      f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH')
            return execution
        execution.argv = [program, *(self.files.get(a, a) for a in argv[1:])]
        env = {e["name"]: (str(job.secrets[e["secretRef"]]) if "secretRef" in e else str(e.get("value", "")))
               for e in container.get("env") or []}
        env["PATH"] = os.environ.get("PATH", os.defpath)
        execution.env = env
        execution.workdir = tempfile.mkdtemp(prefix=f"{name}-")
        try:
            execution.process = subprocess.Popen(
                execution.argv, env=env, cwd=execution.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self._end(execution, "Failed", 128, "StartError", f"starting the container failed: {exc}")
            return execution
        reader = threading.Thread(target=self._read, args=(execution,), daemon=True)
        reader.start()
        threading.Thread(target=self._wait, args=(execution, [reader]), daemon=True).start()
        return execution

    def _file(self, name: str) -> str | None:
        """The host file of an executable named as the container would find it (a path, or a PATH name)."""
        return self.files.get(name) or (self.files.get(name.rsplit("/", 1)[-1]) if "/" not in name else None)

    def _forget_old(self, job: Job) -> None:
        while len(job.executions) > HISTORY:
            oldest = next((e for e in job.executions if e.finished), None)
            if oldest is None:
                return
            job.executions.remove(oldest)

    # -- a running execution

    def _read(self, execution: Execution) -> None:
        """Both streams in one loop, stdout first when both have data: lines keep the order they were
        printed in (two readers would race, and a stderr line could overtake the stdout line before it)."""
        process = execution.process
        assert process is not None and process.stdout is not None and process.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        pending = {"stdout": b"", "stderr": b""}
        while selector.get_map():
            for key, _ in sorted(selector.select(), key=lambda event: event[0].data != "stdout"):
                stream = str(key.data)
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    if pending[stream]:
                        self._line(execution, stream, pending[stream])
                    continue
                pending[stream] += chunk
                while b"\n" in pending[stream]:
                    line, pending[stream] = pending[stream].split(b"\n", 1)
                    self._line(execution, stream, line)
        selector.close()
        process.stdout.close()
        process.stderr.close()

    def _line(self, execution: Execution, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        with self._lock:
            execution.lines.append((stream, text))
            row = self._console_row(execution, stream, text)
        self._deliver(self.on_console, execution, row)

    def _wait(self, execution: Execution, readers: list[threading.Thread]) -> None:
        process = execution.process
        assert process is not None
        deadline = (execution.started + timedelta(seconds=execution.job.replica_timeout) - self.now()).total_seconds()
        timed_out = False
        try:
            code = process.wait(timeout=max(0.0, deadline))
        except subprocess.TimeoutExpired:
            # The job's replicaTimeout: "Maximum number of seconds a replica is allowed to run" (Jobs.json).
            timed_out = True
            self._signal(execution, signal.SIGKILL)
            code = process.wait()
        for reader in readers:
            reader.join(timeout=5)
        exit_code = 128 - code if code < 0 else code  # killed by signal n: 128 + n, as a container reports
        with self._lock:
            if timed_out:
                self._end(execution, "Failed", exit_code, "DeadlineExceeded",
                          "Job was active longer than specified deadline")
            elif execution.stop_requested:
                self._end(execution, "Stopped", exit_code, "Stopped", "The execution was stopped")
            elif exit_code == 0:
                self._end(execution, "Succeeded", 0, None, None)
            else:
                self._end(execution, "Failed", exit_code, "BackoffLimitExceeded",
                          "Job has reached the specified backoff limit")
        if execution.workdir:
            shutil.rmtree(execution.workdir, ignore_errors=True)

    def _end(self, execution: Execution, status: str, code: int | None, reason: str | None,
             message: str | None) -> None:
        with self._lock:
            execution.status, execution.exit_code = status, code
            execution.reason, execution.message = reason, message
            execution.ended = self.now()
            container = execution.container["name"]
            text = (f"Container '{container}' was terminated with exit code '{code}'" if code is not None
                    else message or status)
            row = {"TimeGenerated": self._stamp(), "ContainerJobName_s": execution.job.name,
                   "ExecutionName_s": execution.name, "ReplicaName_s": execution.replica,
                   "EnvironmentName_s": execution.job.environment.name, "Type_s": "Normal" if code == 0 else "Warning",
                   "Reason_s": "ContainerTerminated" if code is not None else (reason or status), "Log_s": text}
            row["_timestamp_d"] = row["TimeGenerated"].timestamp()
        self._deliver(self.on_system, execution, row)

    def _stop_execution(self, execution: Execution, query: dict[str, str], base: str) -> Reply:
        if execution.finished:
            # Not documented: the emulator refuses to stop what already ended, so callers look first.
            return 400, _error("BadRequest", f"Job execution '{execution.name}' is not running: it "
                                             f"{execution.status.lower()}."), {}
        execution.stop_requested = True
        if execution.process is not None:
            self._signal(execution, signal.SIGTERM)
            timer = threading.Timer(self.stop_grace_seconds, self._signal, args=(execution, signal.SIGKILL))
            timer.daemon = True
            timer.start()
        op = Operation(uuid.uuid4().hex, "stop", execution, 0)
        self.operations[op.id] = op
        return 202, None, {"Location": self._operation_url(op, query, base), "Retry-After": self.retry_after}

    @staticmethod
    def _signal(execution: Execution, sig: int) -> None:
        process = execution.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # -- logs

    def _stamp(self) -> datetime:
        """The emulator's time, strictly increasing, so that rows order as they were printed."""
        with self._lock:
            at = max(self.now(), self._last_stamp + timedelta(microseconds=1))
            self._last_stamp = at
            return at

    def _console_row(self, execution: Execution, stream: str, text: str) -> dict[str, Any]:
        at = self._stamp()
        container = execution.container
        return {"TimeGenerated": at, "_timestamp_d": at.timestamp(), "ContainerJobName_s": execution.job.name,
                "ContainerAppName_s": "", "ContainerGroupName_s": execution.replica,
                "ContainerName_s": container["name"], "ContainerImage_s": container["image"],
                "EnvironmentName_s": execution.job.environment.name, "RevisionName_s": "", "Stream_s": stream,
                "Log_s": text}

    def _deliver(self, hook: Hook | None, execution: Execution, row: dict[str, Any]) -> None:
        workspace = execution.job.environment.workspace_id
        if hook is None or workspace is None:
            return

        def send() -> None:
            try:
                hook(workspace, row)
            except Exception:  # a broken hook must not stop the execution
                logger.exception("log hook failed for execution %s", execution.name)

        if self.console_delay_seconds > 0:
            timer = threading.Timer(self.console_delay_seconds, send)
            timer.daemon = True
            timer.start()
        else:
            send()

    # -- reading

    def _list(self, job: Job, path: str, query: dict[str, str], base: str) -> Reply:
        if query.get("$filter"):
            return 400, _error("BadRequest", "the Container Apps emulator does not evaluate $filter"), {}
        try:
            skip = int(query.get("$skiptoken") or 0)
        except ValueError:
            return 400, _error("BadRequest", "invalid $skiptoken"), {}
        page = job.executions[skip: skip + self.page_size]
        answer: dict[str, Any] = {"value": [_execution_json(e) for e in page]}
        if skip + self.page_size < len(job.executions):
            answer["nextLink"] = (f"{base}{path}?" + urlencode({"api-version": query["api-version"],
                                                                "$skiptoken": str(skip + self.page_size)}))
        return 200, answer, {}


JOB = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/jobs/"
                 r"(?P<job>[^/]+)(?P<rest>/.*)?$", re.I)
ENVIRONMENT = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/"
                         r"managedEnvironments/(?P<env>[^/]+)$", re.I)
OPERATION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.App/locations/(?P<loc>[^/]+)/"
                       r"containerappsjobOperationResults/(?P<op>[^/]+)$", re.I)


def _kind(method: str, path: str) -> str | None:
    if OPERATION.match(path):
        return "operations"
    if ENVIRONMENT.match(path):
        return "environments"
    m = JOB.match(path)
    if m is None:
        return None
    rest = (m["rest"] or "").lower()
    if rest == "":
        return "jobs"
    if rest == "/start":
        return "start"
    if rest == "/executions":
        return "executions"
    return "stop" if rest.endswith("/stop") else "execution"


CPU_STEPS = [round(0.25 * n, 2) for n in range(1, 17)]
"""Consumption: 0.25 to 4 vCPU in steps of 0.25, each with twice as many GiB of memory (learn.microsoft.com,
containers.md "the total amount of CPUs and memory requested for all the containers ... must add up to one
of the following combinations": 0.25/0.5Gi ... 4.0/8.0Gi)."""


def _checked_container(given: Any, job: Job) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The container as the execution keeps it, or ARM's error for what ARM refuses."""
    if not isinstance(given, dict):
        return {}, _error("InvalidRequestContent", "a container must be an object")
    unknown = set(given) - {"image", "name", "command", "args", "env", "resources"}
    if unknown:
        return {}, _error("InvalidRequestContent", f"Could not find member '{sorted(unknown)[0]}' on object of "
                                                   f"type 'JobExecutionContainer'.")
    name, image = given.get("name"), given.get("image")
    if not isinstance(image, str) or not image.strip():
        return {}, _error("InvalidParameterValueInContainerTemplate", "The container image is required.")
    if not isinstance(name, str) or not CONTAINER_NAME.match(name):
        return {}, _error("InvalidParameterValueInContainerTemplate",
                          f"Invalid container name '{name}': a lowercase RFC 1123 label must consist of lower case "
                          f"alphanumeric characters or '-', and must start and end with an alphanumeric character.")
    for key in ("command", "args"):
        value = given.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            return {}, _error("InvalidRequestContent", f"'{key}' must be an array of strings")
    env_out: list[dict[str, str]] = []
    seen: set[str] = set()
    for var in given.get("env") or []:
        if not isinstance(var, dict) or not isinstance(var.get("name"), str) or not ENV_NAME.match(var["name"]):
            return {}, _error("InvalidParameterValueInContainerTemplate",
                              f"Invalid environment variable {var!r}: a name must consist of alphabetic characters, "
                              f"digits, '_', '-', or '.', and must not start with a digit.")
        if var["name"] in seen:
            return {}, _error("InvalidParameterValueInContainerTemplate",
                              f"Environment variable '{var['name']}' is defined twice.")
        seen.add(var["name"])
        has_value, has_ref = "value" in var and var["value"] is not None, bool(var.get("secretRef"))
        if has_value == has_ref:
            return {}, _error("InvalidParameterValueInContainerTemplate",
                              f"Environment variable '{var['name']}' needs exactly one of value and secretRef.")
        if has_ref:
            if var["secretRef"] not in job.secrets:
                # The platform's words: microsoft/azure-container-apps#370 ("SecretRef '…' defined for container
                # '…' not found.").
                return {}, _error("ContainerAppSecretRefNotFound",
                                  f"SecretRef '{var['secretRef']}' defined for container '{name}' not found.")
            env_out.append({"name": var["name"], "secretRef": var["secretRef"]})
        else:
            env_out.append({"name": var["name"], "value": str(var["value"])})
    resources = given.get("resources") or {"cpu": 0.5, "memory": "1Gi"}
    cpu, memory = resources.get("cpu"), str(resources.get("memory", ""))
    m = re.fullmatch(r"(\d+(?:\.\d{1,2})?)Gi", memory)
    if not isinstance(cpu, int | float) or m is None or round(float(cpu), 2) not in CPU_STEPS \
            or abs(float(m[1]) - 2 * float(cpu)) > 1e-9:
        combos = "; ".join(f"[cpu: {c}, memory: {2 * c}Gi]" for c in CPU_STEPS)
        return {}, _error("ContainerAppInvalidResourceTotal",
                          f"The total requested CPU and memory resources for this application (CPU: {cpu}, memory: "
                          f"{memory}) is invalid. Total CPU and memory for all containers defined in a Container App "
                          f"must add up to one of the following CPU - Memory combinations: {combos}")
    container: dict[str, Any] = {"image": image, "name": name, "resources": {"cpu": float(cpu), "memory": memory}}
    if given.get("command"):
        container["command"] = list(given["command"])
    if given.get("args"):
        container["args"] = list(given["args"])
    if env_out:
        container["env"] = env_out
    return container, None


def _execution_id(execution: Execution) -> str:
    return f"{execution.job.id}/executions/{execution.name}"


def _execution_json(execution: Execution) -> dict[str, Any]:
    container = execution.container
    state: dict[str, Any] = {"name": container["name"], "status": "Terminated" if execution.finished else "Running"}
    if execution.exit_code is not None:
        state["code"] = execution.exit_code
    if execution.message:
        state["additionalInformation"] = execution.message
    props: dict[str, Any] = {
        "status": execution.status, "startTime": _iso(execution.started), "template": execution.template,
        "detailedStatus": {"replicas": [{"name": execution.replica, "containers": [state]}]},
    }
    if execution.ended is not None:
        props["endTime"] = _iso(execution.ended)
    if execution.reason:
        props["reason"], props["message"] = execution.reason, execution.message or ""
    return {"id": _execution_id(execution), "name": execution.name, "type": "Microsoft.App/jobs/executions",
            "properties": props}


def _job_json(job: Job) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "type": "Microsoft.App/jobs", "location": job.location,
            "properties": {
                "provisioningState": "Succeeded", "runningState": "Ready", "environmentId": job.environment.id,
                "configuration": {"triggerType": "Manual", "replicaTimeout": job.replica_timeout,
                                  "replicaRetryLimit": 0,
                                  "manualTriggerConfig": {"replicaCompletionCount": 1, "parallelism": 1},
                                  # a secret's value is write-only: a read shows its name
                                  "secrets": [{"name": n} for n in sorted(job.secrets)]},
                "template": {"containers": [job.container]}}}


def _environment_json(env: Environment) -> dict[str, Any]:
    logs: dict[str, Any] = {"destination": env.destination}
    if env.destination == "log-analytics":
        # sharedKey is write-only (LogAnalyticsConfiguration.shared_key: visibility create, update)
        logs["logAnalyticsConfiguration"] = {"customerId": env.workspace_id}
    return {"id": env.id, "name": env.name, "type": "Microsoft.App/managedEnvironments", "location": env.location,
            "properties": {"provisioningState": "Succeeded", "appLogsConfiguration": logs}}


def _suffix(n: int) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _not_found(kind: str, name: str, group: str) -> dict[str, Any]:
    return _error("ResourceNotFound", f"The Resource '{kind}/{name}' under resource group '{group}' was not found. "
                                      f"For more details please go to https://aka.ms/ARMResourceNotFoundFix")

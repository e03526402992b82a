"""Azure Container Apps jobs through ARM with `azure-mgmt-appcontainers`, and their console lines
through Log Analytics with `azure-monitor-query`.

An execution is started with a `JobExecutionTemplate` (POST `.../jobs/{job}/start`, a long-running
operation whose result names the execution), looked at with `JobExecution` and the executions list,
and stopped with `Jobs_StopExecution`. The template replaces the job's own containers for that one
execution, so what runs is exactly what the step describes: the job's own environment variables are
not inherited. Secrets reach the container only as `secretRef`s naming secrets of the job (values, or
Key Vault references the job reads with its own identity): Slipway never sees a secret's value.

The exit code is the one ARM reports in the execution's `detailedStatus` (replicas → containers →
`code`, api-version 2026-07-01); the console lines are rows of `ContainerAppConsoleLogs_CL` in the Log
Analytics workspace of the job's environment (`appLogsConfiguration.logAnalyticsConfiguration
.customerId`). Log Analytics ingests them minutes late (the step keeps reading after the execution
ends), and until an environment's first line the table does not exist at all: both read as "no lines
yet". One client per subscription, built on first use; the SDKs' own retries are off (`azure_auth.py`):
every error becomes a TargetError and the step decides when to look again.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.adapters.arm_app_service import _PollFor
from shared.adapters.azure_auth import CALL_ERRORS, client_args, reason, retry_after, target_error, transient
from shared.config import Settings
from shared.ports import JobExecution, JobRun, TargetError

MARKER_ENV = "SLIPWAY_RUN"
CONSOLE_TABLE = "ContainerAppConsoleLogs_CL"
JOB_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/jobs/"
                    r"(?P<job>[^/]+)$", re.I)
ROLE_HINT = "Slipway's identity needs a role that may start and read the job (e.g. Container Apps Jobs Operator)"
LOGS_TIMEOUT = 30


@dataclass(frozen=True)
class Execution(JobExecution):
    """A JobExecution with ARM's words on why it is where it is (`reason: message`, e.g. a failed image pull
    or the job's replica timeout), for a failure that has no exit code to show."""

    detail: str = ""
    started: datetime | None = None


class ContainerJobs:
    wait_seconds = 20.0
    """How long a start or a stop waits for its long-running operation before it lets the step look later."""

    def __init__(self, settings: Settings, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._workspaces: dict[str, str] = {}
        """Job id → its environment's Log Analytics workspace (a job's environment is set at creation)."""
        self._starts: dict[tuple[str, str], datetime] = {}
        """(job id, execution) → when it started: where the log query's time range begins."""

    # -- clients, built on first use

    def _credential_and_options(self) -> tuple[Any, dict[str, Any]]:
        credential, options = client_args(self.settings, self._credential)
        self._credential = credential  # one managed identity for every client
        return credential, options

    def _client(self, subscription_id: str) -> Any:
        with self._lock:
            key = f"arm|{subscription_id.lower()}"
            if key not in self._clients:
                from azure.mgmt.appcontainers import ContainerAppsAPIClient

                credential, options = self._credential_and_options()
                self._clients[key] = ContainerAppsAPIClient(
                    credential, subscription_id, base_url=self.settings.container_apps_url, polling_interval=1,
                    credential_scopes=[self.settings.arm_scope], **options)
            return self._clients[key]

    def _logs_client(self) -> Any:
        with self._lock:
            if "logs" not in self._clients:
                from azure.monitor.query import LogsQueryClient

                credential, options = self._credential_and_options()
                self._clients["logs"] = LogsQueryClient(credential, endpoint=self.settings.logs_url,
                                                        connection_timeout=5, read_timeout=LOGS_TIMEOUT, **options)
            return self._clients["logs"]

    # -- the port

    def start(self, job: str, run: JobRun) -> str:
        from azure.mgmt.appcontainers.models import (
            ContainerResources,
            EnvironmentVar,
            JobExecutionContainer,
            JobExecutionTemplate,
        )

        sub, group, name = _parse(job)
        client = self._client(sub)
        with _errors(name):
            found = client.jobs.get(group, name)
        containers = (found.properties.template.containers or []) if found.properties and \
            found.properties.template else []
        container_name = (containers[0].name if containers and containers[0].name else None) or name
        env = [EnvironmentVar(name=k, value=v) for k, v in (run.env or {}).items()]
        env += [EnvironmentVar(name=k, secret_ref=v) for k, v in (run.secret_env or {}).items()]
        env.append(EnvironmentVar(name=MARKER_ENV, value=run.marker))
        template = JobExecutionTemplate(containers=[JobExecutionContainer(
            image=run.image, name=container_name, command=list(run.command) or None, args=list(run.args) or None,
            env=env, resources=ContainerResources(cpu=run.cpu, memory=run.memory))])
        polling = _PollFor(self.wait_seconds)
        with _errors(name, during="start"):
            poller = client.jobs.begin_start(group, name, template, polling=polling)
        with _errors(name, during="start", operation=True):
            poller.wait()
            if polling.finished():
                started = poller.result()
                if started is not None and started.name:
                    return str(started.name)
        # ARM accepted the start but has not named the execution yet: it carries the marker.
        mine = next((e for e in self.executions(job) if e.marker == run.marker), None)
        if mine is None:
            raise TargetError(f"job {name}: the start was accepted but its execution is not listed yet",
                              retryable=True, retry_after=10)
        return mine.name

    def executions(self, job: str) -> list[JobExecution]:
        sub, group, name = _parse(job)
        client = self._client(sub)
        with _errors(name):
            found = [_execution(e) for e in client.jobs_executions.list(group, name)]
        for e in found:
            if e.started is not None:
                self._starts[(job.lower(), e.name)] = e.started
        epoch = datetime.min.replace(tzinfo=UTC)
        found.sort(key=lambda e: e.started or epoch, reverse=True)
        return list(found)

    def execution(self, job: str, name: str) -> JobExecution | None:
        sub, group, job_name = _parse(job)
        client = self._client(sub)
        try:
            with _errors(f"{job_name}/{name}"):
                found = _execution(client.job_execution(group, job_name, name))
        except TargetError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return None
            raise
        if found.started is not None:
            self._starts[(job.lower(), found.name)] = found.started
        return found

    def stop(self, job: str, name: str) -> None:
        """Stop a running execution; one that already ended is left as it is (so stopping twice is harmless)."""
        sub, group, job_name = _parse(job)
        current = self.execution(job, name)
        if current is None or current.finished:
            return
        client = self._client(sub)
        polling = _PollFor(self.wait_seconds)
        try:
            with _errors(f"{job_name}/{name}", during="stop"):
                poller = client.jobs.begin_stop_execution(group, job_name, name, polling=polling)
            with _errors(f"{job_name}/{name}", during="stop", operation=True):
                poller.wait()  # gives up after wait_seconds: the step sees the status on its next look
        except TargetError:
            again = self.execution(job, name)
            if again is not None and again.finished:  # it ended between the look and the stop
                return
            raise

    def logs(self, job: str, execution: str, skip: int) -> list[str]:
        """The execution's console lines after the first `skip`, in the order they were printed.

        The query asks for the job's rows from the execution's start on, and keeps those of the
        execution's replicas (`ContainerGroupName_s` is `{execution}-{suffix}`), ordered by `_timestamp_d`
        (when the line was printed; `TimeGenerated` breaks ties). A line Log Analytics ingests late may
        sort before lines already read; `skip` counts lines, so such a line can be shown out of place."""
        from azure.monitor.query import LogsQueryStatus

        _, _, job_name = _parse(job)
        workspace = self._workspace(job)
        started = self._started(job, execution)
        text = f"{CONSOLE_TABLE} | where ContainerJobName_s == '{_kql(job_name)}'"
        try:
            result = self._logs_client().query_workspace(
                workspace, text, timespan=(started - timedelta(minutes=5), timedelta(days=2)),
                server_timeout=LOGS_TIMEOUT)
        except HttpResponseError as exc:
            if (exc.status_code or 0) == 400 and "resolve table" in str(exc):
                return []  # no console line in the workspace yet: the table appears with the first one
            raise _logs_error(workspace, exc) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TargetError(f"Log Analytics unreachable ({exc})", retryable=True) from exc
        if result.status != LogsQueryStatus.SUCCESS:
            raise TargetError(f"Log Analytics answered a partial result for {execution}: "
                              f"{getattr(result.partial_error, 'message', '')}", retryable=True)
        table = result.tables[0]
        columns = list(table.columns)
        rows = [dict(zip(columns, row, strict=False)) for row in table.rows]
        prefix = f"{execution}-".lower()
        mine = [r for r in rows if str(r.get("ContainerGroupName_s") or "").lower().startswith(prefix)]
        mine.sort(key=_printed)
        return [str(r.get("Log_s") if r.get("Log_s") is not None else "") for r in mine][skip:]

    # -- helpers

    def _workspace(self, job: str) -> str:
        if job.lower() in self._workspaces:
            return self._workspaces[job.lower()]
        sub, group, name = _parse(job)
        client = self._client(sub)
        with _errors(name):
            found = client.jobs.get(group, name)
        env_id = str(found.properties.environment_id or "") if found.properties else ""
        m = re.match(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/"
                     r"managedEnvironments/(?P<env>[^/]+)$", env_id, re.I)
        if m is None:
            raise TargetError(f"job {name} has no managed environment ('{env_id}'): its console lines cannot be "
                              f"found", retryable=False)
        with _errors(f"environment {m['env']}"):
            environment = self._client(m["sub"]).managed_environments.get(m["rg"], m["env"])
        logs = environment.properties.app_logs_configuration if environment.properties else None
        destination = (logs.destination if logs else None) or "none"
        workspace = logs.log_analytics_configuration.customer_id if logs and logs.log_analytics_configuration \
            else None
        if destination != "log-analytics" or not workspace:
            raise TargetError(f"environment {m['env']} sends console logs to '{destination}', not to a Log Analytics "
                              f"workspace: Slipway cannot read the execution's lines", retryable=False)
        self._workspaces[job.lower()] = str(workspace)
        return str(workspace)

    def _started(self, job: str, execution: str) -> datetime:
        key = (job.lower(), execution)
        if key not in self._starts:
            found = self.execution(job, execution)
            if found is None:
                raise TargetError(f"execution {execution} not found", retryable=False)
        return self._starts.get(key) or datetime.now(UTC) - timedelta(days=1)


def _parse(job: str) -> tuple[str, str, str]:
    m = JOB_ID.match(job.strip())
    if m is None:
        raise TargetError(f"'{job}' is not a Container Apps job's resource id", retryable=False)
    return m["sub"], m["rg"], m["job"]


def _execution(found: Any) -> Execution:
    props = found.properties
    marker, codes, detail = None, [], ""
    started: datetime | None = None
    status = "Unknown"
    if props is not None:
        status = str(getattr(props.status, "value", props.status) or "Unknown")
        started = props.start_time
        for container in (props.template.containers or []) if props.template else []:
            for var in container.env or []:
                if var.name == "SLIPWAY_RUN":
                    marker = var.value
        for replica in (props.detailed_status.replicas or []) if props.detailed_status else []:
            codes += [c.code for c in replica.containers or [] if c.code is not None]
        if props.reason or props.message:
            detail = ": ".join(str(p) for p in (props.reason, props.message) if p)
    failing = [c for c in codes if c != 0]
    code = failing[0] if failing else (0 if codes else None)
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return Execution(name=str(found.name), status=status, marker=marker, exit_code=code, detail=detail,
                     started=started)


def _printed(row: dict[str, Any]) -> tuple[float, str]:
    stamp = row.get("_timestamp_d")
    at = row.get("TimeGenerated")
    when = at.timestamp() if isinstance(at, datetime) else 0.0
    return (float(stamp) if isinstance(stamp, int | float) else when, at.isoformat() if isinstance(at, datetime)
            else str(at or ""))


def _kql(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _logs_error(workspace: str, exc: HttpResponseError) -> TargetError:
    status = exc.status_code or 0
    hint = "; Slipway's identity needs Log Analytics Reader on the workspace" if status in (401, 403) else ""
    message = str(exc.message or exc.reason or "").splitlines()[0][:300] if (exc.message or exc.reason) else ""
    return TargetError(f"Log Analytics workspace {workspace} answered {status} ({message}){hint}",
                       retryable=transient(status), retry_after=retry_after(exc))


class _errors:
    """Turn SDK errors into TargetError: retryable for throttling, 5xx and network trouble."""

    def __init__(self, where: str, *, during: str = "", operation: bool = False) -> None:
        self.where = f"job {where}" + (f" {during}" if during else "")
        self.operation = operation
        """True while polling a long-running operation: its failure is the operation's own verdict."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, TargetError):
            return
        if isinstance(exc, ResourceNotFoundError):
            raise TargetError(f"{self.where}: not found ({reason(exc)})", retryable=False) from exc
        if isinstance(exc, ClientAuthenticationError):
            raise TargetError(f"{self.where}: not authorised ({reason(exc)}); {ROLE_HINT}", retryable=False) from exc
        if isinstance(exc, HttpResponseError) and self.operation:
            status = exc.status_code or 0
            if status < 500 and status != 429:
                raise TargetError(f"{self.where} failed: {reason(exc)}", retryable=False) from exc
        if isinstance(exc, CALL_ERRORS):
            forbidden = isinstance(exc, HttpResponseError) and exc.status_code == 403
            raise target_error(exc, self.where, hint=f"; {ROLE_HINT}" if forbidden else "") from exc

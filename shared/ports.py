"""What the services need from the outside world. Adapters implement these; unit tests fake them.

Only `shared/adapters/` talks to Azure SDKs; services see these small interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

from shared.domain.gates import Reading
from shared.domain.release import Release
from shared.domain.target import Target


class TargetError(Exception):
    """A call to a deployment target failed.

    `retryable` is True for throttling, 5xx and network errors (try again later, after
    `retry_after` seconds when the service said so); False for errors that will not go away
    by themselves (404 site, 403 forbidden, bad request).
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class MissingUpload(LookupError):
    """The packages container has no blob of the name a build gave."""


@dataclass(frozen=True)
class LastSwap:
    """The site's `slotSwapStatus`: when the last successful swap completed, and between which slots
    (Microsoft.Web `SlotSwapStatus`: timestampUtc, sourceSlotName, destinationSlotName)."""

    at: datetime
    slots: frozenset[str]


@dataclass(frozen=True)
class SlotInfo:
    """What a slot is now: its public URL and its app settings."""

    url: str
    app_settings: dict[str, str]
    state: str = "Running"
    last_swap: LastSwap | None = None


@dataclass(frozen=True)
class SwapProgress:
    """Where a slot swap stands: done, or still running with the token to look at it again."""

    done: bool
    token: str | None = None


class AppServicePort(Protocol):
    """App Service sites and slots through ARM (azure-mgmt-web). Every call raises TargetError."""

    def slots(self, site: Target) -> list[str]:
        """Names of the site's slots, "production" included."""
        ...

    def swap(self, site: Target, source: str, target: str, *, preserve_vnet: bool = True,
             token: str | None = None) -> SwapProgress:
        """Start a swap of two slots (or look again at the one `token` names); never waits long."""
        ...

    def restart(self, target: Target) -> None: ...

    def sticky_names(self, site: Target) -> list[str]: ...

    def set_sticky_names(self, site: Target, names: list[str]) -> None: ...

    def apply_slot_config(self, site: Target, source: str, target: str = "production") -> None:
        """Swap with preview, phase 1: `source` takes `target`'s slot-sticky settings."""
        ...

    def reset_slot_config(self, site: Target, source: str) -> None:
        """Cancel a swap with preview."""
        ...

    def read_slot(self, target: Target) -> SlotInfo:
        """The slot's URL and current app settings. Raises TargetError."""
        ...

    def write_app_settings(self, target: Target, settings: dict[str, str]) -> None:
        """Replace the slot's app settings with `settings` (ARM replaces them all). Raises TargetError."""
        ...

    def stack(self, target: Target) -> str:
        """The slot's linuxFxVersion (`PYTHON|3.11`), else its site kind (`functionapp`)."""
        ...

    def hosting(self, site: Target) -> dict[str, str]:
        """What kind of app the site is, which decides how code reaches it: `kind` (ARM's, e.g. `app,linux`,
        `functionapp,linux`), `sku` (the plan's SKU the site reports: `FlexConsumption`, `ElasticPremium`,
        `Dynamic`, `Standard`, …; "" when ARM does not say) and, for a Flex Consumption app,
        `deploymentStorage` (the blob container its One Deploy stores the package in)."""
        ...

    def zip_deploy(self, target: Target, package: str) -> str | None:
        """Push the package file to the slot's deployment endpoint; the URL to follow it at, or None
        when it is done already."""
        ...

    def deployment_status(self, target: Target, url: str) -> tuple[bool, bool, str]:
        """(finished, succeeded, status text) of a zip deployment."""
        ...

    def set_container(self, target: Target, image: str) -> None:
        """Run the slot from a container image: its `linuxFxVersion` becomes `DOCKER|{image}` (Linux web and
        function apps); the slot restarts and pulls it, the old container serving meanwhile."""
        ...

    def container(self, target: Target) -> str | None:
        """The image the slot runs (its `linuxFxVersion` without `DOCKER|`), or None when it runs no custom
        container."""
        ...


@dataclass(frozen=True)
class StoredPackage:
    """Slipway's own copy of a build's package: a blob and its snapshot, which no one can change."""

    name: str
    snapshot: str
    sha256: str
    size: int


class PackagePort(Protocol):
    """Build packages: uploaded by builds, then copied into Slipway's own container when a version
    is registered, digested while copied, and kept as a read-only snapshot."""

    def upload(self, name: str, path: str) -> None:
        """Put the file at `path` in the upload container as `name` (a package Slipway itself downloaded, as
        from an Azure DevOps build), to be registered like a build's own upload."""
        ...

    def store(self, upload: str, dest: str) -> StoredPackage:
        """Copy an uploaded package to `dest` in Slipway's container, hashing the bytes it writes. Raises
        MissingUpload when the upload container has no blob of that name (the copy's own read finds out: no
        read before it)."""
        ...

    def fetch(self, url: str, dest: str) -> StoredPackage:
        """Download a package from a URL to `dest` in Slipway's container, hashing what it writes.
        Raises ValueError with the reason when the URL does not give a package."""
        ...

    def digest(self, name: str, snapshot: str) -> str:
        """The sha256 of a stored package's snapshot, computed from its bytes now."""
        ...

    def download(self, name: str, snapshot: str) -> tuple[str, str]:
        """A stored package's snapshot in a local temporary file, and the sha256 of those bytes:
        what a zip deployment then sends is exactly what was checked."""
        ...

    def blob_url(self, name: str, snapshot: str) -> str:
        """The snapshot's URL without a signature, for an app reading it with its managed identity."""
        ...

    def discard(self, name: str) -> None:
        """Delete a stored package (and its snapshots) that lost a race to register."""
        ...


class LogPort(Protocol):
    """Step logs as blobs, as Slipway wrote them before a step run's lines went into the change that records
    the run (shared/services/step_logs.py): read, and deleted by retention."""

    def read(self, name: str) -> str | None:
        """The whole log, or None when the step wrote nothing yet."""
        ...

    def delete(self, name: str) -> None:
        """Delete the named log (retention); a log that is not there is fine."""
        ...


@dataclass(frozen=True)
class ProbeResult:
    status: int | None
    body: str
    error: str | None = None
    retry_after: float | None = None


class HttpProbePort(Protocol):
    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        """GET a URL; network errors come back in `error`, never raised."""
        ...

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout_seconds: float) -> ProbeResult:
        """Call a URL for an `http-request` step: redirects are not followed (the answer is judged as it
        is), addresses the app must never call are refused, network errors come back in `error`."""
        ...


class SignalPort(Protocol):
    """Health signals for gates: Azure Monitor metrics, log queries, fired alerts, REST probes."""

    def read(self, signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
        """One provider call for one signal; failures come back in the reading, never raised.
        `resource_id` is the stage's slot, for signals that name no resource of their own."""
        ...


class FunctionKeysPort(Protocol):
    """This function app's host keys, for callers that authenticate with a function key."""

    def verify(self, key: str) -> str | None:
        """The name of the host key `key` is (`_master` for the master key), or None."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait until `seconds` of this clock's time have passed (a step that looks again soon waits in its
        invocation instead of a queue message's round trip)."""
        ...


class MessageBus(Protocol):
    def send(self, queue: str, body: str, delay_seconds: float = 0.0) -> None:
        """Send a message, invisible for `delay_seconds` (a durable timer)."""
        ...


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, text: str, html: str) -> None:
        """Send one mail; raises on failure (the queue delivers the message again, then poisons it)."""
        ...


@dataclass(frozen=True)
class ArmDeployment:
    """An ARM template deployment as ARM reports it (Microsoft.Resources `DeploymentExtended`)."""

    state: str
    """provisioningState: Accepted, Running, Succeeded, Failed, Canceled, …"""
    outputs: dict[str, Any]
    """Output name → value (the `value` of each output, as the template typed it)."""
    error: str = ""
    """The deployment's error: code and message, with the first nested details."""

    @property
    def finished(self) -> bool:
        return self.state in ("Succeeded", "Failed", "Canceled")


@dataclass(frozen=True)
class ArmTemplate:
    """What to deploy: exactly one of a template body, a template spec version id, or a template URL."""

    template: dict[str, Any] | None = None
    spec_id: str | None = None
    uri: str | None = None
    parameters: dict[str, Any] | None = None
    """Parameter name → value (not wrapped in {"value": …})."""
    mode: str = "Incremental"
    """Incremental | Complete (resource-group scope only)."""
    location: str | None = None
    """Where the deployment's metadata lives: required at subscription scope."""


@dataclass(frozen=True)
class WhatIfChange:
    """One resource a deployment would change (Microsoft.Resources `WhatIfChange`)."""

    resource_id: str
    change: str
    """Create, Delete, Modify, Deploy, NoChange, Ignore, Unsupported."""
    properties: tuple[str, ...] = ()
    """For Modify: the property paths that change."""


class ArmDeploymentsPort(Protocol):
    """ARM template deployments at resource-group (`/subscriptions/{s}/resourceGroups/{rg}`) or
    subscription (`/subscriptions/{s}`) scope. Every call raises TargetError."""

    def deploy(self, scope: str, name: str, what: ArmTemplate) -> None:
        """PUT the deployment `name` and return without waiting (it runs on in ARM)."""
        ...

    def get(self, scope: str, name: str) -> ArmDeployment | None:
        """The deployment `name`, or None when ARM has none of that name."""
        ...

    def operations(self, scope: str, name: str) -> list[dict[str, Any]]:
        """Its operations so far: {"resource", "type", "operation", "state", "message"} each."""
        ...

    def cancel(self, scope: str, name: str) -> None:
        """Cancel a deployment that is still running (a finished one is left as it is)."""
        ...

    def what_if(self, scope: str, what: ArmTemplate) -> list[WhatIfChange]:
        """What deploying `what` would change, per resource; waits for ARM's answer."""
        ...


@dataclass(frozen=True)
class JobExecution:
    """One execution of a Container Apps job (Microsoft.App `JobExecution`)."""

    name: str
    status: str
    """Running, Processing, Stopped, Degraded, Failed, Unknown, Succeeded."""
    marker: str | None = None
    """The value of the `SLIPWAY_RUN` environment variable the execution was started with."""
    exit_code: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Stopped", "Degraded")


@dataclass(frozen=True)
class JobRun:
    """What one execution runs: a container image, its command, arguments and environment."""

    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    """Plain values (never secrets)."""
    secret_env: dict[str, str] | None = None
    """Environment variable → the name of a secret of the job (a Key Vault reference the job holds)."""
    marker: str = ""
    """Set as `SLIPWAY_RUN`: finds the execution again after a crash between start and record."""
    cpu: float = 0.5
    memory: str = "1Gi"


class ContainerJobsPort(Protocol):
    """Azure Container Apps jobs (`azure-mgmt-appcontainers`); `job` is the job's resource id. Every
    call raises TargetError."""

    def start(self, job: str, run: JobRun) -> str:
        """Start an execution with this template; its name."""
        ...

    def executions(self, job: str) -> list[JobExecution]:
        """The job's executions, newest first (for finding one by its marker)."""
        ...

    def execution(self, job: str, name: str) -> JobExecution | None: ...

    def stop(self, job: str, name: str) -> None: ...

    def logs(self, job: str, execution: str, skip: int) -> list[str]:
        """Console lines of the execution after the first `skip` (from the environment's Log Analytics
        workspace, table ContainerAppConsoleLogs_CL)."""
        ...


@dataclass(frozen=True)
class PipelineRun:
    """A run of a GitHub Actions workflow (or an Azure Pipelines run)."""

    id: int
    status: str
    """queued, in_progress, completed, …"""
    conclusion: str | None
    """success, failure, cancelled, timed_out, … when completed."""
    url: str
    """The run's page, for people."""


class PipelinesPort(Protocol):
    """GitHub Actions through the GitHub REST API. Every call raises TargetError."""

    def dispatch(self, repo: str, workflow: str, ref: str, inputs: dict[str, str], token: str) -> int | None:
        """`workflow_dispatch` a workflow (file name or id) on `ref`; the new run's id when GitHub says it."""
        ...

    def find_run(self, repo: str, workflow: str, marker: str, token: str) -> PipelineRun | None:
        """The workflow's run whose name or inputs carry `marker` (a run dispatched before a crash)."""
        ...

    def run(self, repo: str, run_id: int, token: str) -> PipelineRun: ...

    def cancel(self, repo: str, run_id: int, token: str) -> None: ...

    def log_lines(self, repo: str, run_id: int, token: str, limit: int) -> list[str]:
        """The last `limit` lines of the run's logs (jobs' logs, in order)."""
        ...

    def installation_token(self, app_id: str, installation_id: int, private_key: str) -> str:
        """A GitHub App installation's token, signed in with the app's private key (kept until near its end)."""
        ...


class SecretsPort(Protocol):
    """Key Vault secrets, read with Slipway's managed identity. Raises TargetError (unreachable,
    forbidden, no such secret): a secret is never silently empty."""

    def get(self, reference: str) -> str:
        """The value of a secret by its URI (`https://{vault}.vault.azure.net/secrets/{name}[/{version}]`)."""
        ...


class AzurePipelinesPort(Protocol):
    """Azure Pipelines through the Azure DevOps REST API (api-version 7.1), as Slipway's managed identity
    (Microsoft Entra). `organization` is the organization's name or its `https://dev.azure.com/{organization}` URL;
    `project` its project's name or id. A run is a build: its id is the build's id. Runs come as PipelineRun
    with the build's `status` (notStarted, postponed, inProgress, cancelling, completed) and `result` as
    `conclusion` (succeeded, partiallySucceeded, failed, canceled; None before it completes). Every call raises
    TargetError."""

    def run(self, organization: str, project: str, pipeline_id: int, branch: str,
            template_parameters: dict[str, str], variables: dict[str, str]) -> int:
        """Start a run of the pipeline on `branch` (a full ref) with runtime parameters and queue-time variables;
        the run's id."""
        ...

    def get_run(self, organization: str, project: str, pipeline_id: int, run_id: int) -> PipelineRun: ...

    def find_run(self, organization: str, project: str, pipeline_id: int, parameter: str,
                 marker: str) -> PipelineRun | None:
        """The pipeline's recent run whose runtime parameter `parameter` is `marker` (one started before a crash)."""
        ...

    def cancel(self, organization: str, project: str, run_id: int) -> None:
        """Ask a run to cancel; a run that already completed is left as it is."""
        ...

    def log_lines(self, organization: str, project: str, run_id: int, limit: int) -> list[str]:
        """The last `limit` lines of the run's logs (its jobs' tasks, in order)."""
        ...

    def build(self, organization: str, project: str, build_id: int) -> dict[str, Any]:
        """The build as Azure DevOps has it (Builds - Get)."""
        ...

    def artifacts(self, organization: str, project: str, build_id: int) -> list[dict[str, Any]]:
        """The build's published artifacts (Artifacts - List)."""
        ...

    def download_artifact(self, organization: str, project: str, build_id: int, name: str, out: BinaryIO,
                          limit: int) -> int:
        """Write the artifact, zipped under a folder of its name, to `out`; its size (at most `limit`)."""
        ...


@runtime_checkable
class RetentionStore(Protocol):
    """What retention needs of the pipeline store beyond `PipelineStore`: deleting a release as a whole.

    A release is marked `deleting` first (ETag-guarded); from then on the store's reads do not see it, and
    `purge_release` deletes its dependent rows and its release row last, so a crash anywhere leaves either
    the whole release or a `deleting` one that the next run finishes."""

    def mark_deleting(self, definition_id: int, release_id: int, etag: str) -> None:
        """ConcurrentChange when the release changed since it was read with `etag`."""
        ...

    def deleting_releases(self, definition_id: int, limit: int) -> list[Release]:
        """Releases of the definition a crash left marked `deleting`, at most `limit`."""
        ...

    def package_in_use(self, stored: str, but: tuple[int, int]) -> bool:
        """Does a release other than `but` (definition, release) name this stored package? True when the
        store cannot tell at once (retention then keeps the package)."""
        ...

    def purge_release(self, definition_id: int, release_id: int) -> int:
        """Delete the release's events, outbox, list entries and keep-forever record, then its row; how many
        rows went. A release not there is fine."""
        ...

    def audit(self, definition_id: int, record: dict[str, Any]) -> None:
        """Append an audit record to the definition's history (deletions, keep-forever changes)."""
        ...

    def audits(self, definition_id: int) -> list[dict[str, Any]]:
        """The definition's audit records, oldest first."""
        ...


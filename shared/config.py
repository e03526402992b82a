"""Every setting the app reads, in one place, with its default.

The same names appear in `local.settings.example.json` and in the Bicep app settings; a test
checks that they agree. Values come from the process environment, which the Functions host fills
from app settings (Azure) or `local.settings.json` (local stack).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

STEPS_QUEUE = "slipway-steps"
"""Deployment steps, one message per step run. Bound by name in the queue trigger."""
STEPS_POISON_QUEUE = f"{STEPS_QUEUE}-poison"
EVENTS_QUEUE = "slipway-events"
"""Durable timers (approval timeouts, the end of deferrals) as delayed messages, lane turns and
schedule registrations."""
GATES_QUEUE = "slipway-gates"
"""Gate samples: one delayed message per sample of a running gate."""
MAIL_QUEUE = "slipway-mail"
"""Mails, one message per recipient: a bad address fails alone and ends in the poison queue."""
QUEUES = (STEPS_QUEUE, EVENTS_QUEUE, GATES_QUEUE, MAIL_QUEUE)
"""Every queue a trigger reads; each has a `-poison` twin where the host moves a message that
failed every delivery."""

@dataclass(frozen=True)
class Settings:
    """Typed view of the app settings. Field metadata names the environment variable."""

    storage_connection: str = ""
    """`AzureWebJobsStorage`: a connection string (local stack) or empty when identity-based."""
    table_service_uri: str = ""
    """`AzureWebJobsStorage__tableServiceUri`: identity-based storage in Azure."""
    queue_service_uri: str = ""
    blob_service_uri: str = ""
    storage_client_id: str = ""
    """`AzureWebJobsStorage__clientId`: the user-assigned identity used for storage."""
    table_name: str = "Slipway"
    packages_container: str = "packages"
    logs_container: str = "logs"
    sweep_schedule: str = "*/15 * * * * *"
    scheduler_schedule: str = "0 * * * * *"
    """When the scheduler ticks (NCRONTAB, 6 fields): it fires the schedules that are due."""
    retention_schedule: str = "0 */5 * * * *"
    """When the retention timer ticks (NCRONTAB, 6 fields): each tick deletes at most `retention_batch` releases."""
    retention_batch: int = 10
    metrics_schedule: str = "30 * * * * *"
    """When the metrics rollup ticks (NCRONTAB, 6 fields): each tick folds at most `metrics_batch` releases."""
    metrics_batch: int = 200
    schedule_grace_minutes: int = 60
    """A schedule occurrence missed by longer than this (the host was down) is skipped, not fired late."""
    gate_min_interval_seconds: int = 60
    """The shortest sampling interval a gate may ask for (the local stack lowers it for demos)."""
    cloud: str = "AzureCloud"
    """The Azure cloud (`AzureCloud`, `AzureUSGovernment`, `AzureChinaCloud`, as Bicep's
    `environment().name`): ARM, Azure Monitor and Log Analytics endpoints and token scopes follow it."""
    monitor_endpoint: str = ""
    """ARM endpoint for metric and alert gate signals; the cloud's ARM when empty (the local Azure
    Monitor emulator locally)."""
    logs_endpoint: str = ""
    """Log Analytics query endpoint for log-query gate signals; the cloud's when empty (the local
    Azure Monitor emulator locally)."""
    clock_start: str = ""
    """Local stack only: an ISO time the clock starts at (empty: the real time)."""
    clock_speed: int = 1
    """Local stack only: simulated seconds per real second; timers shrink by the same factor."""
    arm_endpoint: str = ""
    """ARM for App Service; the cloud's when empty (the local App Service emulator locally)."""
    arm_auth: str = "managed-identity"
    """`managed-identity` in Azure; `local-emulator` only against the local App Service emulator."""
    managed_identity_client_id: str = ""
    deployments_endpoint: str = ""
    """ARM endpoint for template deployments, what-if and template specs; the cloud's ARM when empty
    (the local ARM deployments emulator locally)."""
    container_apps_endpoint: str = ""
    """ARM endpoint for Container Apps jobs (script steps); the cloud's ARM when empty (the local
    Container Apps emulator locally)."""
    log_quiet_seconds: int = 30
    """How long a script step keeps reading an ended execution's console lines after the last one arrived
    (Log Analytics ingests them late); the local stack, whose emulator ingests at once, shortens it."""
    http_local_hosts: str = ""
    """Loopback hosts that http-request steps may call, comma-separated (the local stack's own services);
    empty in Azure. Link-local addresses (the cloud's instance metadata) are never called."""
    github_api_url: str = "https://api.github.com"
    """GitHub's REST API for run-pipeline steps (GitHub Enterprise Server: `https://HOST/api/v3`; the
    local GitHub emulator locally)."""
    azure_devops_url: str = ""
    """Azure DevOps for run-pipeline steps on Azure Pipelines: empty in Azure, where a step's organization URL
    (`https://dev.azure.com/{organization}`) is called; the local Azure DevOps emulator locally."""
    keyvault_endpoint: str = ""
    """Local stack only: where requests for any `*.vault.azure.net` secret go (the Key Vault emulator)."""
    keyvault_ca_file: str = ""
    """Local stack only: the CA that signed the Key Vault emulator's certificate (Key Vault clients refuse
    anything but https)."""
    slot_url_scheme: str = "https"
    step_lease_seconds: int = 30
    """A running step's claim lasts this long; its heartbeat renews it every third of it. The sweeper
    sends a step again once its claim ran out (its host died) or, for a message nobody claimed, after
    twice this (a message lost before it was received). With the sweep every 15 s, a crash delays a
    release by at most lease + 15 s + the queue's polling interval."""
    step_continue_seconds: int = 60
    """A step handler whose step starts the next one at once (the stage's next step, or the next stage's
    first) runs it itself, without a queue hop, while this many seconds of its invocation have not passed
    (0: every step goes through the queue). The step is claimed in the write that starts it, so a host that dies
    before running it leaves a claim that runs out, and the sweeper sends the step."""
    step_wait_seconds: int = 10
    """A step that looks again within this many seconds (a deployment not finished yet, a check not passing
    yet) waits in its invocation, within `step_continue_seconds`, and runs again claimed by the write that
    recorded its look: no queue message, no claim of its own, and it looks again when due, not when the
    queue is next polled. Longer waits, and a host that dies waiting (its claim runs out), go through the
    queue as before. 0: every look again goes through the queue."""
    max_step_redeliveries: int = 3
    email_endpoint: str = ""
    """Azure Communication Services endpoint for approval mails (identity-based); empty: no mail."""
    email_sender: str = ""
    smtp_host: str = ""
    """SMTP server for mails when Communication Services is not configured (the local stack's sink)."""
    smtp_port: int = 25
    public_url: str = ""
    """Base URL of this app for links in mails; `https://$WEBSITE_HOSTNAME` in Azure when empty."""
    website_hostname: str = ""
    """Set by App Service itself."""
    website_auth_enabled: str = ""
    """Set by App Service itself: "true" when App Service Authentication is on. Only then does the
    `X-MS-CLIENT-PRINCIPAL` header come from the platform (which strips it from outside requests);
    otherwise anyone can send it (azure-functions-host `AuthenticationLevelHandler.cs` trusts it on
    the same condition)."""
    link_hours: int = 72
    mail_groups: str = ""
    """Who a group's mail goes to: JSON `{"group": ["a@contoso.com", …]}`, keyed by the group as approvers and
    assignees name it (a name or an object id). Entra lists no group's members to Slipway, so a group without
    an entry here is not mailed (the log says so)."""
    """How long an approval link in a mail works (never past the approval's timeout)."""
    auth_mode: str = "appservice"
    """`appservice`: identities come from App Service authentication (Azure). `development`: the
    local stack, where a request without a principal acts as `dev_identity`."""
    dev_identity: str = "developer@localhost (development identity)"
    admins: str = ""
    """Comma-separated names or groups granted the admin role (besides the Slipway.Admin app role)."""
    release_managers: str = ""
    readers: str = "*"
    """'*' lets every signed-in user read."""
    key_roles: str = "releaseManager"
    """Roles of automation calling with a function key."""
    group_ids: str = ""
    """`name=objectId` pairs, comma-separated: Entra sends group object ids, so approvers and role
    grants may name a group by a name mapped here (or by its object id directly)."""
    function_app_id: str = ""
    """Resource id of this function app: its host keys (read through ARM) are what a function key is
    checked against, as the API's routes are anonymous to the host so that Entra tokens alone work."""
    gate_header_settings: str = ""
    """The only app settings a REST gate may send as header values: `NAME@host` (only to that host)
    or `NAME` (any host), comma-separated. Nothing else of the process environment is ever sent."""
    github_webhook_secret: str = field(default="", repr=False)
    """The secret of GitHub webhooks to `/api/hooks/github` (their `X-Hub-Signature-256`); in Azure a Key Vault
    reference, resolved by App Service. Empty: every GitHub delivery is refused."""
    azure_devops_hook_user: str = ""
    azure_devops_hook_password: str = field(default="", repr=False)
    """Basic authentication of Azure DevOps service hooks to `/api/hooks/azure-devops` (the Web Hooks consumer's
    username and password); the password alone also works as `X-Slipway-Webhook-Token`. A Key Vault reference in
    Azure. Empty: every Azure DevOps delivery is refused."""
    azure_devops_hook_organization: str = ""
    """The Azure DevOps organization (name or `https://dev.azure.com/{name}`) whose service hooks deliver builds:
    Slipway reads each delivered build back from it (Builds - Get) and downloads its artifact, as its managed
    identity. Empty: deliveries are recorded, and nothing is released from them."""
    acr_webhook_token: str = field(default="", repr=False)
    """The value Azure Container Registry webhooks to `/api/hooks/acr` send in their custom header
    `X-Slipway-Webhook-Token`; a Key Vault reference in Azure. Empty: every ACR delivery is refused."""
    github_token: str = field(default="", repr=False)
    """A GitHub token with Actions and Contents read on the repositories that deliver webhooks: it downloads a
    run's artifact or a release asset. A Key Vault reference in Azure."""
    package_store_container: str = "slipway-packages"
    """Where Slipway keeps its own copy of every registered package: what was approved is what runs."""
    app_insights_connection: str = ""
    """Set by the platform in Azure: telemetry goes to Application Insights; empty locally."""

    @property
    def arm_url(self) -> str:
        return (self.arm_endpoint or CLOUDS.get(self.cloud, CLOUDS["AzureCloud"])["arm"]).rstrip("/")

    @property
    def arm_scope(self) -> str:
        """The token scope for ARM calls: the cloud's resource manager audience."""
        return CLOUDS.get(self.cloud, CLOUDS["AzureCloud"])["arm"].rstrip("/") + "/.default"

    @property
    def deployments_url(self) -> str:
        return (self.deployments_endpoint or self.cloud_arm).rstrip("/")

    @property
    def container_apps_url(self) -> str:
        return (self.container_apps_endpoint or self.cloud_arm).rstrip("/")

    @property
    def cloud_arm(self) -> str:
        return CLOUDS.get(self.cloud, CLOUDS["AzureCloud"])["arm"]

    @property
    def monitor_url(self) -> str:
        return (self.monitor_endpoint or CLOUDS.get(self.cloud, CLOUDS["AzureCloud"])["arm"]).rstrip("/")

    @property
    def logs_url(self) -> str:
        return (self.logs_endpoint or CLOUDS.get(self.cloud, CLOUDS["AzureCloud"])["logs"]).rstrip("/")

    @property
    def easy_auth(self) -> bool:
        """Is App Service Authentication on (so that its principal header can be trusted)?"""
        return self.website_auth_enabled.strip().lower() == "true"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = ENV_NAMES[f.name]
            if name in env and env[name] != "":
                values[f.name] = int(env[name]) if f.type == "int" else env[name]
        return cls(**values)  # type: ignore[arg-type]


CLOUDS: dict[str, dict[str, str]] = {
    "AzureCloud": {"arm": "https://management.azure.com", "logs": "https://api.loganalytics.io"},
    "AzureUSGovernment": {"arm": "https://management.usgovcloudapi.net", "logs": "https://api.loganalytics.us"},
    "AzureChinaCloud": {"arm": "https://management.chinacloudapi.cn", "logs": "https://api.loganalytics.azure.cn"},
}
"""Per cloud, Resource Manager (also Azure Monitor's metrics and alerts) and the Log Analytics query API
(learn.microsoft.com: "Azure Government developer guide", "Azure China developer guide", and the
azure-monitor-query docs on sovereign clouds)."""

ENV_NAMES: dict[str, str] = {
    "storage_connection": "AzureWebJobsStorage",
    "table_service_uri": "AzureWebJobsStorage__tableServiceUri",
    "queue_service_uri": "AzureWebJobsStorage__queueServiceUri",
    "blob_service_uri": "AzureWebJobsStorage__blobServiceUri",
    "storage_client_id": "AzureWebJobsStorage__clientId",
    "table_name": "SLIPWAY_TABLE",
    "packages_container": "SLIPWAY_PACKAGES_CONTAINER",
    "logs_container": "SLIPWAY_LOGS_CONTAINER",
    "sweep_schedule": "SLIPWAY_SWEEP_SCHEDULE",
    "scheduler_schedule": "SLIPWAY_SCHEDULER_SCHEDULE",
    "retention_schedule": "SLIPWAY_RETENTION_SCHEDULE",
    "retention_batch": "SLIPWAY_RETENTION_BATCH",
    "metrics_schedule": "SLIPWAY_METRICS_SCHEDULE",
    "metrics_batch": "SLIPWAY_METRICS_BATCH",
    "schedule_grace_minutes": "SLIPWAY_SCHEDULE_GRACE_MINUTES",
    "gate_min_interval_seconds": "SLIPWAY_GATE_MIN_INTERVAL_SECONDS",
    "cloud": "SLIPWAY_CLOUD",
    "monitor_endpoint": "SLIPWAY_MONITOR_ENDPOINT",
    "logs_endpoint": "SLIPWAY_LOGS_ENDPOINT",
    "clock_start": "SLIPWAY_CLOCK_START",
    "clock_speed": "SLIPWAY_CLOCK_SPEED",
    "arm_endpoint": "SLIPWAY_ARM_ENDPOINT",
    "arm_auth": "SLIPWAY_ARM_AUTH",
    "deployments_endpoint": "SLIPWAY_DEPLOYMENTS_ENDPOINT",
    "container_apps_endpoint": "SLIPWAY_CONTAINERAPPS_ENDPOINT",
    "log_quiet_seconds": "SLIPWAY_LOG_QUIET_SECONDS",
    "http_local_hosts": "SLIPWAY_HTTP_LOCAL_HOSTS",
    "github_api_url": "SLIPWAY_GITHUB_API_URL",
    "azure_devops_url": "SLIPWAY_AZURE_DEVOPS_URL",
    "keyvault_endpoint": "SLIPWAY_KEYVAULT_ENDPOINT",
    "keyvault_ca_file": "SLIPWAY_KEYVAULT_CA_FILE",
    "managed_identity_client_id": "SLIPWAY_MANAGED_IDENTITY_CLIENT_ID",
    "slot_url_scheme": "SLIPWAY_SLOT_URL_SCHEME",
    "step_lease_seconds": "SLIPWAY_STEP_LEASE_SECONDS",
    "step_continue_seconds": "SLIPWAY_STEP_CONTINUE_SECONDS",
    "step_wait_seconds": "SLIPWAY_STEP_WAIT_SECONDS",
    "max_step_redeliveries": "SLIPWAY_MAX_STEP_REDELIVERIES",
    "email_endpoint": "SLIPWAY_EMAIL_ENDPOINT",
    "email_sender": "SLIPWAY_EMAIL_SENDER",
    "smtp_host": "SLIPWAY_SMTP_HOST",
    "smtp_port": "SLIPWAY_SMTP_PORT",
    "public_url": "SLIPWAY_PUBLIC_URL",
    "website_hostname": "WEBSITE_HOSTNAME",
    "website_auth_enabled": "WEBSITE_AUTH_ENABLED",
    "link_hours": "SLIPWAY_LINK_HOURS",
    "mail_groups": "SLIPWAY_MAIL_GROUPS",
    "auth_mode": "SLIPWAY_AUTH_MODE",
    "dev_identity": "SLIPWAY_DEV_IDENTITY",
    "admins": "SLIPWAY_ADMINS",
    "release_managers": "SLIPWAY_RELEASE_MANAGERS",
    "readers": "SLIPWAY_READERS",
    "key_roles": "SLIPWAY_KEY_ROLES",
    "group_ids": "SLIPWAY_GROUP_IDS",
    "function_app_id": "SLIPWAY_FUNCTION_APP_ID",
    "gate_header_settings": "SLIPWAY_GATE_HEADER_SETTINGS",
    "github_webhook_secret": "SLIPWAY_GITHUB_WEBHOOK_SECRET",
    "github_token": "SLIPWAY_GITHUB_TOKEN",
    "acr_webhook_token": "SLIPWAY_ACR_WEBHOOK_TOKEN",
    "azure_devops_hook_user": "SLIPWAY_AZURE_DEVOPS_HOOK_USER",
    "azure_devops_hook_password": "SLIPWAY_AZURE_DEVOPS_HOOK_PASSWORD",
    "azure_devops_hook_organization": "SLIPWAY_AZURE_DEVOPS_HOOK_ORGANIZATION",
    "package_store_container": "SLIPWAY_PACKAGE_STORE_CONTAINER",
    "app_insights_connection": "APPLICATIONINSIGHTS_CONNECTION_STRING",
}

"""The composition root: the one place that picks real adapters from the settings.

Adapters (and the Azure SDKs behind them) are built on first use, not at import, so that a
bad setting cannot stop the Functions host from indexing the app and cold starts stay short.
Tests call `build` with their own settings, policies or adapters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from shared.services.deps import Deps

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_deps: Deps | None = None


def build(settings: Settings | None = None, *, storage_policies: list[Any] | None = None,
          **overrides: Any) -> Deps:
    """Real adapters for every port not given in `overrides`."""
    from shared.adapters.storage_clients import StorageClients
    from shared.services.deps import Deps

    settings = settings or Settings.from_env()
    clients = StorageClients(settings, storage_policies)

    def store() -> Any:
        from shared.adapters.table_store import TableStore
        return TableStore(clients, settings.table_name)

    scaled = settings.clock_speed != 1 or bool(settings.clock_start)

    def bus() -> Any:
        from shared.adapters.clock import ScaledBus
        from shared.adapters.queue_bus import QueueBus
        return ScaledBus(QueueBus(clients), settings.clock_speed) if scaled else QueueBus(clients)

    def clock() -> Any:
        from shared.adapters.clock import clock_for
        return clock_for(settings)

    def app_service() -> Any:
        from shared.adapters.arm_app_service import ArmAppService
        return ArmAppService(settings)

    def packages() -> Any:
        from shared.adapters.blob_packages import BlobPackages
        return BlobPackages(settings, clients)

    def logs() -> Any:
        from shared.adapters.blob_logs import BlobLogs
        return BlobLogs(clients, settings.logs_container)

    def probe() -> Any:
        from shared.adapters.http_probe import HttpxProbe
        return HttpxProbe(settings.http_local_hosts)

    def mailer() -> Any:
        from shared.adapters.mailers import AcsMailer, LogMailer, SmtpMailer
        if settings.email_endpoint:
            return AcsMailer(settings)
        return SmtpMailer(settings) if settings.smtp_host else LogMailer()

    def signals() -> Any:
        from shared.adapters.monitor_signals import MonitorSignals
        return MonitorSignals(settings)

    def function_keys() -> Any:
        from shared.adapters.arm_app_service import ArmAppService
        from shared.adapters.function_keys import FunctionKeys
        return FunctionKeys(settings.function_app_id, ArmAppService(settings).host_keys)

    def arm_deployments() -> Any:
        from shared.adapters.arm_deployments import ArmDeployments
        return ArmDeployments(settings)

    def container_jobs() -> Any:
        from shared.adapters.container_jobs import ContainerJobs
        return ContainerJobs(settings)

    def pipelines() -> Any:
        from shared.adapters.github_actions import GitHubActions
        return GitHubActions(settings)

    def secrets() -> Any:
        from shared.adapters.key_vault import KeyVaultSecrets
        return KeyVaultSecrets(settings)

    def azure_pipelines() -> Any:
        from shared.adapters.azure_pipelines import AzurePipelines
        return AzurePipelines(settings)

    factories = {"store": store, "bus": bus, "clock": clock, "app_service": app_service, "packages": packages,
                 "logs": logs, "probe": probe, "mailer": mailer, "signals": signals,
                 "function_keys": function_keys, "arm_deployments": arm_deployments,
                 "container_jobs": container_jobs, "pipelines": pipelines, "secrets": secrets,
                 "azure_pipelines": azure_pipelines}
    parts = {name: overrides[name] if name in overrides else make() for name, make in factories.items()}
    return Deps(settings=settings, **parts)


def deps() -> Deps:
    """The process-wide dependencies, built once from the environment."""
    global _deps
    if _deps is None:
        with _lock:
            if _deps is None:
                from shared.adapters import telemetry_export

                telemetry_export.configure()
                _deps = build()
    return _deps


def use(chosen: Deps | None) -> None:
    """Install the dependencies the functions use (tests; None rebuilds from the environment)."""
    global _deps
    with _lock:
        _deps = chosen


Reaction = Callable[["Deps", Any, str], str]
_reactions: dict[type, Reaction] = {}


def reactions() -> dict[type, Reaction]:
    """What reacts to each queue message (cosmicpython's handler table, over durable queues).
    A reaction gets the decoded message and the queue's id of this delivery, and returns what it
    did, for the invocation log. Imported on first use, like the adapters."""
    if not _reactions:
        from shared import messages as m
        from shared.services import events, gate_runs, mail, previews, scheduler, steps

        _reactions.update({
            m.RunStep: steps.run,
            m.StopStepRun: steps.stop,
            m.PreviewStage: previews.on_preview,
            m.TakeSample: gate_runs.take_sample,
            m.WakeUp: events.wake,
            m.LaneTurn: events.lane_turn,
            m.RegisterSchedules: scheduler.on_changed,
            m.AskApproval: mail.ask,
            m.AskIntervention: mail.ask_intervention,
            m.TellOutcome: mail.tell,
        })
    return _reactions


def react(chosen: Deps, queue: str, body: str, delivery: str = "") -> str:
    """Decode a message from `queue` and run its reaction. A body that is not one of our messages
    is dropped (logged): delivering it again cannot make it one."""
    from shared.messages import decode

    message = decode(queue, body)
    if message is None:
        logger.error("dropping a message on %s that is not ours: %.200s", queue, body)
        return "malformed"
    return reactions()[type(message)](chosen, message, delivery)

"""Everything a service needs, passed in one object. `shared/bootstrap.py` builds the real one."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Settings
from shared.ports import (
    AppServicePort,
    ArmDeploymentsPort,
    AzurePipelinesPort,
    Clock,
    ContainerJobsPort,
    FunctionKeysPort,
    HttpProbePort,
    LogPort,
    Mailer,
    MessageBus,
    PackagePort,
    PipelinesPort,
    SecretsPort,
    SignalPort,
)
from shared.records import PipelineStore
from shared.services.serial import Serial


@dataclass
class Deps:
    settings: Settings
    store: PipelineStore
    bus: MessageBus
    clock: Clock
    app_service: AppServicePort
    packages: PackagePort
    logs: LogPort
    probe: HttpProbePort
    mailer: Mailer
    signals: SignalPort
    function_keys: FunctionKeysPort
    arm_deployments: ArmDeploymentsPort
    container_jobs: ContainerJobsPort
    pipelines: PipelinesPort
    secrets: SecretsPort
    azure_pipelines: AzurePipelinesPort
    serial: Serial = field(default_factory=Serial)
    """Turns this process's writers of one row take (see `shared.services.serial`)."""

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
    PipelineRun,
    PipelinesPort,
    SecretsPort,
    SignalPort,
    TargetError,
)
from shared.records import PipelineStore


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
    azure_pipelines: AzurePipelinesPort = field(default_factory=lambda: _NoAzurePipelines())
    """Defaults to a stand-in that refuses every call, for Deps that tests of other kinds build by hand."""


class _NoAzurePipelines:
    """AzurePipelinesPort for Deps built without one: every call is a final TargetError."""

    def _refuse(self) -> TargetError:
        return TargetError("Azure Pipelines is not configured in these dependencies", retryable=False)

    def run(self, organization: str, project: str, pipeline_id: int, branch: str,
            template_parameters: dict[str, str], variables: dict[str, str]) -> int:
        raise self._refuse()

    def get_run(self, organization: str, project: str, pipeline_id: int, run_id: int) -> PipelineRun:
        raise self._refuse()

    def find_run(self, organization: str, project: str, pipeline_id: int, parameter: str,
                 marker: str) -> PipelineRun | None:
        raise self._refuse()

    def cancel(self, organization: str, project: str, run_id: int) -> None:
        raise self._refuse()

    def log_lines(self, organization: str, project: str, run_id: int, limit: int) -> list[str]:
        raise self._refuse()

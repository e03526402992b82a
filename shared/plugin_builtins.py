"""Slipway's own step kinds and signals, declared as entry points in pyproject.toml like any plugin's.

Everything is named as "module:attribute" text, resolved on first use: the models live in the module
that builds the definition schema's unions from the registry, which must not import itself back.
"""

from __future__ import annotations

from shared.plugins import SignalKind, StepKind

_D = "shared.schemas.definition"
_S = "shared.services.steps"

DEPLOY_PACKAGE = StepKind(f"{_D}:DeployPackageStep", f"{_S}.deploy:deploy_package", type="deploy-package")
HTTP_CHECK = StepKind(f"{_D}:HttpCheckStep", f"{_S}.checks:http_check", type="http-check")
WAIT = StepKind(f"{_D}:WaitStep", f"{_S}.checks:wait", type="wait")
SWAP = StepKind(f"{_D}:SwapStep", f"{_S}.swap:swap", type="swap")
START_SWAP = StepKind(f"{_D}:StartSwapStep", f"{_S}.swap:start_swap", type="start-swap")
COMPLETE_SWAP = StepKind(f"{_D}:CompleteSwapStep", f"{_S}.swap:swap", type="complete-swap")
CANCEL_SWAP = StepKind(f"{_D}:CancelSwapStep", f"{_S}.swap:cancel_swap", type="cancel-swap")
SWAP_BACK = StepKind(None, f"{_S}.swap:swap_back", type="swap-back")
"""Added by the engine after a failing post-swap check; users never write it."""
RESTART = StepKind(f"{_D}:RestartStep", f"{_S}.app_settings:restart", type="restart")
SET_APP_SETTINGS = StepKind(f"{_D}:SetAppSettingsStep", f"{_S}.app_settings:set_app_settings",
                            type="set-app-settings")
MANUAL_INTERVENTION = StepKind("shared.schemas.step_intervention:ManualInterventionStep",
                               type="manual-intervention")
HTTP_REQUEST = StepKind("shared.schemas.step_http:HttpRequestStep", f"{_S}.http_request:http_request",
                        type="http-request")
ARM_DEPLOYMENT = StepKind("shared.schemas.step_arm:ArmDeploymentStep", f"{_S}.arm:arm_deployment",
                          f"{_S}.arm:stop_arm_deployment", type="arm-deployment")
DEPLOY_CONTAINER = StepKind("shared.schemas.step_container:DeployContainerStep",
                            f"{_S}.container:deploy_container", type="deploy-container")
SCRIPT = StepKind("shared.schemas.step_script:ScriptStep", f"{_S}.script:script", f"{_S}.script:stop_script",
                  type="script")
RUN_PIPELINE = StepKind("shared.schemas.step_pipeline:RunPipelineStep", f"{_S}.pipeline:run_pipeline",
                        f"{_S}.pipeline:stop_run_pipeline", type="run-pipeline")

METRIC = SignalKind(f"{_D}:MetricSignal", type="metric")
LOG_QUERY = SignalKind(f"{_D}:LogQuerySignal", type="logQuery")
ALERTS = SignalKind(f"{_D}:AlertsSignal", type="alerts")
REST = SignalKind(f"{_D}:RestSignal", type="rest")

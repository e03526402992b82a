"""What each step type does: the table from a step's `type` to the function that runs it.

Every function reconciles, then acts, and reports an `Outcome`; see `context.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.services.deps import Deps
from shared.services.steps.app_settings import restart, set_app_settings
from shared.services.steps.arm import arm_deployment, stop_arm_deployment
from shared.services.steps.checks import http_check, wait
from shared.services.steps.container import deploy_container
from shared.services.steps.context import Outcome, StepContext
from shared.services.steps.deploy import deploy_package
from shared.services.steps.http_request import http_request
from shared.services.steps.pipeline import run_pipeline, stop_run_pipeline
from shared.services.steps.script import script, stop_script
from shared.services.steps.swap import cancel_swap, start_swap, swap, swap_back

KINDS: dict[str, Callable[[Deps, StepContext], Outcome]] = {
    "deploy-package": deploy_package,
    "http-check": http_check,
    "wait": wait,
    "swap": swap,
    "complete-swap": swap,
    "start-swap": start_swap,
    "cancel-swap": cancel_swap,
    "restart": restart,
    "set-app-settings": set_app_settings,
    "swap-back": swap_back,
    "http-request": http_request,
    "arm-deployment": arm_deployment,
    "deploy-container": deploy_container,
    "script": script,
    "run-pipeline": run_pipeline,
}

STOPPERS: dict[str, Callable[[Deps, StepContext], str]] = {
    "arm-deployment": stop_arm_deployment,
    "script": stop_script,
    "run-pipeline": stop_run_pipeline,
}
"""What stops the engine's run of a step that starts one (`ENGINE_STEPS`), from its state alone."""

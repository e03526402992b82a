"""Slipway's steps and gate signals as Azure DevOps workflow tasks, for readers of the definition.

Task ids are the tasks' own (microsoft/azure-pipelines-tasks, `Tasks/<Name>/task.json`): a tool that
recognises tasks by id sees the task that does the same job. A step or signal with no such task keeps
the empty GUID and its Slipway type in `inputs.slipwayType`. Inputs carry names and places only, never
a setting's value, a script or a URL's query (which may hold a signature).
"""

from __future__ import annotations

from typing import Any

from shared.services.artifacts import without_query

NO_TASK = "00000000-0000-0000-0000-000000000000"
WEB_APP_DEPLOY = ("497d490f-eea7-4f2b-ab94-48d9c1acdcb1", "4.*")  # Tasks/AzureRmWebAppDeploymentV4/task.json
APP_SERVICE_MANAGE = ("f045e430-8704-11e6-968f-e717e6411619", "0.*")  # Tasks/AzureAppServiceManageV0/task.json
DELAY = ("28782b92-5e8e-4458-9751-a71cd1492bae", "1.*")  # Tasks/DelayV1/task.json
MANUAL_INTERVENTION = ("bcb64569-d51a-4af0-9c01-ea5d05b3b622", "8.*")  # Tasks/ManualInterventionV8/task.json
INVOKE_REST_API = ("9c3e8943-130d-4c78-ac63-8af81df62dfb", "1.*")  # Tasks/InvokeRestApiV1/task.json
AZURE_MONITOR_ALERTS = ("99a72e7f-25e4-4576-bf38-22a42b995ed8", "1.*")  # Tasks/AzureMonitorV1/task.json
SWAP_ACTIONS = {"swap": "Swap Slots", "start-swap": "Swap Slots", "complete-swap": "Swap Slots",
                "cancel-swap": "Swap Slots", "restart": "Restart Azure App Service"}


def step_task(step: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    kind = str(step.get("type", ""))
    site = {"WebAppName": str(target.get("site", "")), "ResourceGroupName": str(target.get("resourceGroup", ""))}
    slot = str(step.get("slot") or target.get("slot") or "")
    if kind == "deploy-package":
        known, inputs = WEB_APP_DEPLOY, {**site, "DeployToSlotOrASEFlag": str(bool(slot)).lower(), "SlotName": slot}
    elif kind in SWAP_ACTIONS:
        known, inputs = APP_SERVICE_MANAGE, {**site, "Action": SWAP_ACTIONS[kind], "SpecifySlotOrASE": "true",
                                             "Slot": slot, "SourceSlot": slot,
                                             "SwapWithProduction": str(step.get("targetSlot", "production")
                                                                       == "production").lower()}
    elif kind == "wait":
        known, inputs = DELAY, {"delayForMinutes": f"{int(step.get('seconds', 0)) / 60:g}"}
    elif kind == "manual-intervention":
        known, inputs = MANUAL_INTERVENTION, {"instructions": str(step.get("instructions", "")),
                                              "emailRecipients": ",".join(step.get("assignees") or []),
                                              "onTimeout": str(step.get("onTimeout", "reject"))}
    elif kind == "http-request":
        known, inputs = INVOKE_REST_API, {"method": str(step.get("method", "POST")),
                                          "urlSuffix": without_query(str(step.get("url", "")))}
    else:
        known, inputs = (NO_TASK, "1.*"), {"slipwayType": kind}
    return _task(str(step.get("name") or kind), known, inputs, enabled=True,
                 continue_on_error=bool(step.get("continueOnError", False)))


def signal_task(signal: dict[str, Any]) -> dict[str, Any]:
    kind = str(signal.get("type", ""))
    if kind == "rest":
        known, inputs = INVOKE_REST_API, {"method": str(signal.get("method", "GET")),
                                          "urlSuffix": without_query(str(signal.get("url", "")))}
    elif kind == "alerts":
        known, inputs = AZURE_MONITOR_ALERTS, {"severity": ",".join(signal.get("severities") or [])}
    else:
        known, inputs = (NO_TASK, "1.*"), {"slipwayType": kind}
    return _task(str(signal.get("name") or kind), known, inputs, enabled=True, continue_on_error=False)


def _task(name: str, known: tuple[str, str], inputs: dict[str, str], *, enabled: bool,
          continue_on_error: bool) -> dict[str, Any]:
    return {"taskId": known[0], "version": known[1], "name": name, "refName": "", "enabled": enabled,
            "alwaysRun": False, "continueOnError": continue_on_error, "timeoutInMinutes": 0,
            "retryCountOnTaskFailure": 0,
            "definitionType": "task", "overrideInputs": {}, "condition": "succeeded()", "environment": {},
            "inputs": inputs}

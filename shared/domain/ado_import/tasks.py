"""Workflow tasks by task id → the step kind that does the same in Slipway (see each mapping's module for
its inputs), or a manual intervention that says what the task did.

Ids: microsoft/azure-pipelines-tasks @ 299572e2, `Tasks/*/task.json` `id` (one id for every major version
of a task).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.domain.ado_import import task_appservice, task_arm, task_server
from shared.domain.ado_import.task_model import Mapped, StageTasks, Task
from shared.domain.ado_import.task_unmapped import SCRIPT_NOTE, replaced

SCRIPTS = {
    "46e4be58-730b-4389-8a2f-ea10b3e5e815": "AzureCLI",
    "e213ff0f-5d5c-4791-802d-52ea3e7be1f1": "PowerShell",
    "72a1931b-effb-4d2e-8fd8-f8472a07cb62": "AzurePowerShell",
    "6c731c3c-3c68-459a-a5c9-bde6e6595b5b": "Bash",
    "d9bafed4-0b18-4f58-968d-86655b4d2ce9": "CmdLine",
    "bfc8bf76-e7ac-4a8c-9a55-a944a9f632fd": "BatchScript",
    "6392f95f-7e76-4a18-b3c7-7f078d2f7700": "PythonScript",
}
"""Scripts run on an agent; Slipway runs a script as a Container Apps job, which needs an image and a job
that only the user can provide."""

MAPPINGS: dict[str, Callable[[Task, StageTasks], Mapped]] = {
    task_appservice.WEB_APP_DEPLOYMENT: task_appservice.deploy,
    task_appservice.WEB_APP: task_appservice.deploy,
    task_appservice.FUNCTION_APP: task_appservice.deploy,
    task_appservice.MANAGE: task_appservice.manage,
    task_appservice.SETTINGS: task_appservice.settings,
    task_arm.ARM: task_arm.arm,
    task_server.DELAY: task_server.delay,
    task_server.INVOKE_REST_API: task_server.invoke_rest_api,
    task_server.AZURE_FUNCTION: task_server.azure_function,
    task_server.MANUAL_INTERVENTION: task_server.manual_intervention,
}


def map_task(task: Task, stage: StageTasks) -> Mapped:
    """The step for an enabled task."""
    if task.definition_type.casefold() == "metatask":
        return replaced(task, stage, "it is a task group, whose tasks are defined outside the definition.",
                        "Rebuild the group's tasks as steps of this stage.")
    if task.task_id in SCRIPTS:
        return replaced(task, stage, f"it runs a script ({SCRIPTS[task.task_id]}) on an agent, and Slipway has no "
                                     f"agents.", SCRIPT_NOTE)
    mapping = MAPPINGS.get(task.task_id)
    if mapping is None:
        return replaced(task, stage, "Slipway has no step that does what this task does.")
    return mapping(task, stage)

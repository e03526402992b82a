"""Tasks Slipway cannot run: each becomes a manual intervention that says what the task did, so that an
imported definition still stops where the work used to happen, and a person does it or decides.

Task ids and names: microsoft/azure-pipelines-tasks @ 299572e2, `Tasks/*/task.json` (`id`, `name`);
ARM Outputs is a Marketplace extension (its id as demogen-10 carries it).
"""

from __future__ import annotations

import json
import re

from shared.domain.ado_import.model import REPLACED
from shared.domain.ado_import.reading import text
from shared.domain.ado_import.task_model import Mapped, StageTasks, Task

SCRIPT_NOTE = ("Slipway runs scripts as a Container Apps job (`script` step): build an image with this script and "
               "fill `job`/`image`.")
GENERIC = ("Run it on an engine Slipway drives: a `script` step (a Container Apps job), a `run-pipeline` step "
           "(GitHub Actions or Azure Pipelines) or an `http-request` step.")
_SQL = "Run SqlPackage in a `script` step (a Container Apps job whose image holds it and the DACPAC)."
_TESTS = ("Run the tests where they can run: a `run-pipeline` step (GitHub Actions or Azure Pipelines) or a "
          "`script` step; results are published there.")
_TOOL = ("Slipway has no agents: install the tool in the image of the `script` step that needs it, then delete "
         "this step.")
_FILES = ("Slipway has no agent workspace: steps take the artifact's package as it is; do this work in the build, "
          "then delete this step.")
_MACHINES = ("Slipway deploys to App Service, not to machines of a deployment group: move the app to App Service, "
             "or drive the machines from a `run-pipeline` step.")
_CONTAINER = "Use a `deploy-container` step with the image pinned by digest (…@sha256:…)."
_CLUSTER = "Run it in a `run-pipeline` step (GitHub Actions or Azure Pipelines)."
KNOWN: dict[str, tuple[str, str]] = {
    "ce85a08b-a538-4d2b-8589-1d37a9ab970f": ("SqlAzureDacpacDeployment", _SQL),
    "4b506f7f-720f-47bb-bf21-029bac6a690d": ("SqlDacpacDeploymentOnMachineGroup", _SQL),
    "70a3a82d-4a3c-4a09-8d30-a793739dc94f": ("SqlServerDacpacDeployment", _SQL),
    "bd1bed02-f04e-11e7-8c3f-9a214cf093ae": ("AzureMysqlDeployment", _SQL.replace("SqlPackage", "the MySQL client")),
    "6fec3938-df52-4c01-9f5a-8ed5f66c377e": ("MysqlDeploymentOnMachineGroup", _MACHINES),
    "ef087383-ee5e-42c7-9a53-ab56c98420f9": ("VSTest", _TESTS),
    "0b0f01ed-7dde-43ff-9cbb-e48954daf9b1": ("PublishTestResults", _TESTS),
    "2c65196a-54fd-4a02-9be8-d9d1837b7111": ("VisualStudioTestPlatformInstaller", _TOOL),
    "33c63b11-352b-45a2-ba1b-54cb568a29ca": ("UsePythonVersion", _TOOL),
    "31c75bbb-bcdf-4706-8d7c-4da6a1959bc2": ("UseNode", _TOOL),
    "b0ce7256-7898-45d3-9cb5-176b752bfea6": ("UseDotNet", _TOOL),
    "c0e0b74f-0931-47c7-ac27-7c5a19456a36": ("JavaToolInstaller", _TOOL),
    "5e1e3830-fbfb-11e5-aab1-090c92bc4988": ("ExtractFiles", _FILES),
    "5bfb729a-a7c8-4a78-a7c3-8d717bb7c13c": ("CopyFiles", _FILES),
    "d8b84976-e99a-4b86-b885-4849694435b0": ("ArchiveFiles", _FILES),
    "b7e8b412-0437-4065-9371-edc5881de25b": ("DeleteFiles", _FILES),
    "a433f589-fce1-4460-9ee6-44a624aeb1fb": ("DownloadBuildArtifacts", _FILES),
    "61f2a582-95ae-4948-b34d-a1b3c4f6a737": ("DownloadPipelineArtifact", _FILES),
    "e94f1750-a6a8-11e6-be69-bdf37a7b15d8": ("AzureNLBManagement", _MACHINES),
    "1b2aec60-dc49-11e6-9b76-63056e018cac": ("IISWebAppManagementOnMachineGroup", _MACHINES),
    "1b467810-6725-4b6d-accd-886174c09bba": ("IISWebAppDeploymentOnMachineGroup", _MACHINES),
    "731004d4-1d66-4f70-8c05-638018b22210": ("WindowsMachineFileCopy", _MACHINES),
    "3b5693d4-5777-4fee-862a-bd2b7a374c68": ("PowerShellOnTargetMachines", _MACHINES),
    "1e244d32-2dd4-4165-96fb-b7441ca9331e": ("AzureKeyVault", "Give secrets as Key Vault references "
                                             "(`@Microsoft.KeyVault(…)` variable values): Slipway reads them when "
                                             "a step needs them. Then delete this step."),
    "eb72cb01-a7e5-427b-a8a1-1b31ccac8a43": ("AzureFileCopy", GENERIC),
    "15858991-8bac-4542-99e7-577fef9b5be6": ("AzureWebAppContainer", _CONTAINER),
    "13c22ce0-3b93-43f9-aeb7-71fbce7bf5b2": ("AzureFunctionAppContainer", _CONTAINER),
    "b832bec5-8c27-4fef-9fb8-6bec8524ad8a": ("AppCenterDistribute", "Mobile store and App Center uploads have no "
                                             "Slipway equivalent: " + _CLUSTER),
    "afa7d54d-537b-4dc8-b60a-e0eeea2c9a87": ("HelmDeploy", _CLUSTER),
    "dee316a2-586f-4def-be79-488a1f503dfe": ("KubernetesManifest", _CLUSTER),
    "cbc316a2-586f-4def-be79-488a1f503564": ("Kubernetes", _CLUSTER),
    "f1e4b0e6-017e-4819-8a48-ef19ae96e289": ("queryWorkItems", GENERIC),
    "584bcff2-3353-4f11-872b-6ba01267a972": ("ARM Outputs (Marketplace)", "An arm-deployment step's outputs are "
                                             "variables for the later steps (`$(name)`): delete this step."),
}
SECRET_INPUT = re.compile(r"(?i)password|passwd|passphrase|pwd|secret|token|credential|connectionstring|certificate|"
                          r"pfx|privatekey|apikey|accesskey|sas|key$|keys$")
"""Inputs whose names suggest a secret: their values are not written into instructions (a true/false is
shown: it is a switch, not a secret)."""
MAX_INPUT = 500
MAX_INSTRUCTIONS = 9900


def replaced(task: Task, stage: StageTasks, why: str, suggestion: str = "") -> Mapped:
    """A manual intervention named for the task, whose instructions state what the task did: its name,
    id, version and inputs (secret-looking ones masked)."""
    known, default = KNOWN.get(task.task_id, ("", GENERIC))
    what = f"{known} task {task.task_id}" if known else f"task {task.task_id or '(no id)'}"
    lines = [f'This step replaces the Azure DevOps task "{task.label}" ({what}, version {task.version or "?"}), '
             f"which Slipway could not carry over: {why}", "",
             f"What to do: {suggestion or default}", "",
             "Until then, do by hand what the task did and resume, or reject to stop the deployment.", "",
             "Its inputs (variables as `$ (Name)` where Slipway does not define them):"]
    for key, value in task.inputs.values.items():
        shown = text(value) if not isinstance(value, dict | list) else _json(value)
        if not shown.strip():
            continue
        if SECRET_INPUT.search(key) and shown.strip().casefold() not in ("true", "false"):
            shown = "***"
        elif len(shown) > MAX_INPUT:
            shown = shown[:MAX_INPUT] + "…"
        lines.append(f"- {key[:100]}: {shown}")
    instructions = stage.scope.shown("\n".join(lines))
    if len(instructions) > MAX_INSTRUCTIONS:
        instructions = instructions[:MAX_INSTRUCTIONS] + "…"
    return Mapped({"type": "manual-intervention", "instructions": instructions}, REPLACED,
                  f"{why} {suggestion or default}")


def _json(value: object) -> str:
    try:
        return json.dumps(value)[:MAX_INPUT]
    except (ValueError, RecursionError):
        return ""

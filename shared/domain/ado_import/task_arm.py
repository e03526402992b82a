"""ARM template deployments (AzureResourceGroupDeployment V2 and AzureResourceManagerTemplateDeployment V3,
one task id) as `arm-deployment` steps: the template and parameters file inside the artifact, the override
parameters, the mode and the scope.

Id and inputs: microsoft/azure-pipelines-tasks @ 299572e2, Tasks/AzureResourceGroupDeploymentV2 and
Tasks/AzureResourceManagerTemplateDeploymentV3 task.json (`overrideParameters` is `-name value` pairs).
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.domain.ado_import.model import CHANGED, MAPPED
from shared.domain.ado_import.names import DEPLOYMENT_NAME, LOCATION, PARAMETER_NAME, RESOURCE_GROUP
from shared.domain.ado_import.refs import Scope
from shared.domain.ado_import.task_model import Mapped, StageTasks, Task
from shared.domain.ado_import.task_unmapped import replaced

ARM = "94a74903-f93f-4075-884f-dc11f34058b4"
_OVERRIDE = re.compile(r"\s*-([A-Za-z_][A-Za-z0-9_]*)\s+(\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|\S+)")


def arm(task: Task, stage: StageTasks) -> Mapped:
    inputs = task.inputs
    scope_kind = (inputs.get("deploymentScope") or "Resource Group").casefold()
    action = inputs.get("action") or "Create Or Update Resource Group"
    mode = (inputs.get("deploymentMode") or "Incremental").casefold()
    if scope_kind == "management group":
        return replaced(task, stage, "it deploys at a management group, which Slipway does not.",
                        "Deploy it from a `run-pipeline` step, or at a subscription with an arm-deployment step.")
    if scope_kind == "resource group" and action.casefold() != "create or update resource group":
        return replaced(task, stage, f"its action \"{action}\" is not a template deployment.",
                        "Do it in a `script` step (a Container Apps job with the Azure CLI).")
    if mode == "validation":
        return replaced(task, stage, "it only validates the template.",
                        "Slipway shows an arm-deployment's what-if to approvers; delete this step or validate in "
                        "the build.")
    if not stage.has_artifacts and (inputs.get("templateLocation") or "Linked artifact").casefold() != \
            "url of the file":
        return replaced(task, stage, "the definition has no artifact to take the template from.",
                        "Add the build that holds the template as an artifact.")
    step: dict[str, Any] = {"type": "arm-deployment"}
    changes: list[str] = []
    if (inputs.get("templateLocation") or "Linked artifact").casefold() == "url of the file":
        link = stage.scope.rewrite(inputs.get("csmFileLink"))
        changes += link.notes
        if len(link.text) > 2048 or not re.fullmatch(r"https://[^\s/]+/\S*", link.text):
            return replaced(task, stage, "its template URL is not an https URL.", "Give `templateUrl` (https).")
        step["templateUrl"] = link.text
        if inputs.get("csmParametersFileLink"):
            changes.append("its parameters file by URL was not carried over: give the values in `parameters`")
    else:
        found = stage.scope.artifact_file(inputs.raw("csmFile"))
        template, why = _inside(found.inner)
        if template is None:
            return replaced(task, stage, f"its template ({inputs.get('csmFile') or 'none'}) is not a JSON file "
                                         f"inside an artifact.", "Give `template`: the path inside the artifact.")
        changes += why
        if found.alias is not None:
            step["artifact"] = found.alias
        else:
            changes.append("its template path names no artifact: the step reads the primary artifact")
        step["template"] = template
        if inputs.get("csmParametersFile"):
            params = stage.scope.artifact_file(inputs.raw("csmParametersFile"))
            path, _ = _inside(params.inner)
            if path is not None and params.alias == found.alias and not path.startswith("*"):
                step["parametersFile"] = path
            else:
                changes.append(f"its parameters file ({inputs.get('csmParametersFile')}) is not in the template's "
                               f"artifact: give the values in `parameters`")
    parameters, notes = overrides(inputs.raw("overrideParameters"), stage.scope)
    changes += notes
    if parameters:
        step["parameters"] = parameters
    if mode == "complete":
        step["mode"] = "Complete"
    if scope_kind == "subscription":
        step["scope"] = "subscription"
        location = re.sub(r"\s+", "", (stage.scope.literal(inputs.get("location")) or "")).lower()
        if not LOCATION.match(location):
            return replaced(task, stage, "its location is not one Slipway can read.",
                            "Use an arm-deployment step with `scope: subscription` and `location`.")
        step["location"] = location
        if mode == "complete":
            del step["mode"]
            changes.append("ARM deploys incrementally at a subscription: the Complete mode was dropped")
    else:
        group = inputs.get("resourceGroupName")
        literal = stage.scope.literal(group) if group else None
        if literal is not None and RESOURCE_GROUP.match(literal):
            if literal.casefold() != stage.target.resource_group.casefold():
                step["resourceGroup"] = literal
        elif group:
            changes.append(f"it deploys to the stage's resource group: {group} is not a name Slipway can read")
        changes.append("Slipway deploys into an existing resource group: it does not create it")
    name = stage.scope.literal(inputs.get("deploymentName")) if inputs.get("deploymentName") else None
    if name is not None and DEPLOYMENT_NAME.match(name):
        step["deploymentName"] = name
    if inputs.get("deploymentOutputs"):
        changes.append(f"its outputs are variables of the later steps (`$(name)` for each output), not the JSON "
                       f"variable {inputs.get('deploymentOutputs')}")
    if task.timeout_minutes:
        step["timeoutMinutes"] = min(task.timeout_minutes, 1440)
    note = "deploys the template" + (f" {step.get('template') or step.get('templateUrl')}")
    return Mapped(step, CHANGED if changes else MAPPED, "; ".join([note, *dict.fromkeys(changes)]) + ".")


def _inside(path: str) -> tuple[str | None, list[str]]:
    """A template path as arm-deployment takes it (a relative path inside the artifact to a .json file)."""
    notes = []
    parts = [p for p in path.split("/") if p not in ("", ".")]
    while parts and parts[0] == "**":
        parts = parts[1:]
        notes.append("its template path had wildcards: check the path inside the artifact")
    candidate = "/".join(parts)
    if candidate.casefold().endswith(".bicep"):
        candidate = candidate[:-len(".bicep")] + ".json"
        notes.append("Slipway deploys JSON: compile the Bicep file in the build (`az bicep build`)")
    if any(ch in candidate for ch in "*?"):
        notes.append("its template path has wildcards: give the path inside the artifact")
    valid = 6 <= len(candidate) <= 1024 and re.fullmatch(r"(?is)[^\s].*\.json", candidate) is not None and \
        "\\" not in candidate and all(p not in ("", ".", "..") for p in candidate.split("/"))
    return (candidate if valid else None), notes


def overrides(text: str, scope: Scope) -> tuple[dict[str, Any], list[str]]:
    """`-name value -other "a value"` as parameters; unquoted whole numbers and true/false become JSON
    numbers and booleans, `[…]`/`{…}` that parse become arrays and objects."""
    parameters: dict[str, Any] = {}
    notes: list[str] = []
    position, rest = 0, text.strip()
    while position < len(rest):
        match = _OVERRIDE.match(rest, position)
        if match is None:
            notes.append(f"part of its override parameters could not be read: {rest[position:position + 80]!r}")
            break
        position = match.end()
        name, raw = match.group(1), match.group(2)
        if raw.startswith("("):
            notes.append(f"override parameter {name[:64]} is a PowerShell expression: give its value in `parameters`")
            break
        if not PARAMETER_NAME.match(name) or len(parameters) >= 256:
            notes.append(f"override parameter {name[:64]} was left out")
            continue
        parameters[name] = _value(raw, scope, notes)
    return parameters, notes


def _value(raw: str, scope: Scope, notes: list[str]) -> Any:
    if raw[:1] == '"' and raw[-1:] == '"' and len(raw) >= 2:
        value: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif raw[:1] == "'" and raw[-1:] == "'" and len(raw) >= 2:
        value = raw[1:-1].replace("''", "'")
    elif re.fullmatch(r"-?\d{1,15}", raw):
        return int(raw)
    elif raw.casefold() in ("true", "false"):
        return raw.casefold() == "true"
    elif raw[:1] in "[{":
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = raw
    else:
        value = raw
    return _rewrite(value, scope, notes)


def _rewrite(value: Any, scope: Scope, notes: list[str]) -> Any:
    if isinstance(value, str):
        rewritten = scope.rewrite(value)
        notes += rewritten.notes
        return rewritten.text
    if isinstance(value, list):
        return [_rewrite(v, scope, notes) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, scope, notes) for k, v in value.items()}
    return value

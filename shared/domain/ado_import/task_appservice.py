"""App Service tasks: deploy a package (AzureRmWebAppDeployment V3–V5, AzureWebApp V1, AzureFunctionApp
V1–V2), manage the app (AzureAppServiceManage V0: swaps, restart) and its settings (AzureAppServiceSettings
V1), as `deploy-package`, `swap`/`start-swap`/`complete-swap`/`cancel-swap`, `restart` and `set-app-settings`.

Ids, input names, aliases and defaults: microsoft/azure-pipelines-tasks @ 299572e2, Tasks/<folder>/task.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.domain.ado_import.model import CHANGED, MAPPED
from shared.domain.ado_import.names import SETTING_NAME, SLOT
from shared.domain.ado_import.task_model import Mapped, StageTasks, Task
from shared.domain.ado_import.task_unmapped import replaced

WEB_APP_DEPLOYMENT = "497d490f-eea7-4f2b-ab94-48d9c1acdcb1"
"""AzureRmWebAppDeploymentV3/V4/V5 (one id for every major version)."""
WEB_APP = "18bde28a-8172-45cb-b204-5cef1393dbb1"
"""AzureWebAppV1."""
FUNCTION_APP = "501dd25d-1785-43e4-b4e5-a5c78ccc0573"
"""AzureFunctionAppV1/V2."""
MANAGE = "f045e430-8704-11e6-968f-e717e6411619"
"""AzureAppServiceManageV0."""
SETTINGS = "3eeea460-bffa-11e9-9cb5-2a2ae2dbcce4"
"""AzureAppServiceSettingsV1."""
APP_TASKS = (WEB_APP_DEPLOYMENT, WEB_APP, FUNCTION_APP, MANAGE, SETTINGS)
_CONTAINER_KINDS = ("webappcontainer", "functionappcontainer", "webapphypervcontainer")
_DEPLOY_METHODS = {"auto": "auto", "zipdeploy": "zipDeploy", "runfrompackage": "runFromPackage",
                   "runfromzip": "runFromPackage"}
_NOT_CARRIED = {
    "AppSettings": "app settings (add a set-app-settings step before it)",
    "ConfigurationSettings": "configuration settings",
    "appSettings": "app settings (add a set-app-settings step before it)",
    "configurationStrings": "configuration settings",
    "JSONFiles": "JSON variable substitution (do it in the build)",
    "XmlTransformation": "XML transformation (do it in the build)",
    "XmlVariableSubstitution": "XML variable substitution (do it in the build)",
    "WebConfigParameters": "web.config parameters",
    "customWebConfig": "web.config parameters",
    "ScriptType": "the post-deployment script",
    "VirtualApplication": "the virtual application",
    "SetParametersFile": "Web Deploy's parameters file",
    "AdditionalArguments": "Web Deploy's arguments",
}
_LINUX_ONLY = {
    "StartupCommand": "the startup command (set it on the app)",
    "startUpCommand": "the startup command (set it on the app)",
    "RuntimeStack": "the runtime stack (set it on the app)",
    "runtimeStack": "the runtime stack (set it on the app)",
}
"""Inputs the task reads only for Linux apps (task.json `visibleRule`)."""
_LINUX_KINDS = ("applinux", "linux", "webapplinux", "functionapplinux")
_DEFAULT_OFF = ("", "false", ":: you can provide your deployment commands here. one command per line.")


@dataclass(frozen=True)
class AppRef:
    """How a task names its app: the inputs as written (variables and all)."""

    site: str
    resource_group: str
    slot: str | None
    """None: the production slot."""
    deploys: bool


def app_of(task: Task) -> AppRef | None:
    """The app an App Service task works on, or None for other tasks."""
    inputs = task.inputs
    if task.task_id == WEB_APP_DEPLOYMENT:
        to_slot = inputs.flag("DeployToSlotOrASEFlag", "DeployToSlotFlag", "deployToSlotOrASE")
        return AppRef(inputs.get("WebAppName"), inputs.get("ResourceGroupName"),
                      _slot(inputs.get("SlotName")) if to_slot else None, True)
    if task.task_id in (WEB_APP, FUNCTION_APP):
        to_slot = inputs.flag("deployToSlotOrASE")
        return AppRef(inputs.get("appName"), inputs.get("resourceGroupName"),
                      _slot(inputs.get("slotName")) if to_slot else None, True)
    if task.task_id == MANAGE:
        return AppRef(inputs.get("WebAppName"), inputs.get("ResourceGroupName"), None, False)
    if task.task_id == SETTINGS:
        return AppRef(inputs.get("appName"), inputs.get("resourceGroupName"), _slot(inputs.get("slotName")), False)
    return None


def _slot(name: str) -> str | None:
    return None if name.casefold() in ("", "production") else name


def same_app(app: AppRef, stage: StageTasks) -> bool:
    """Does the task work on the stage's app? A task that names none works on it."""
    if not app.site or stage.target.site_key is None:
        return True
    if app.site.casefold() == stage.target.site_key:
        return True
    literal = stage.scope.literal(app.site)
    return literal is not None and literal.casefold() == stage.target.site.casefold()


def slot_name(raw: str, stage: StageTasks) -> str | None:
    """A slot name the task gives, as Slipway takes it (None when it is a variable nothing resolves)."""
    literal = stage.scope.literal(raw)
    return literal if literal is not None and SLOT.match(literal) else None


def deploy(task: Task, stage: StageTasks) -> Mapped:
    app = app_of(task)
    assert app is not None
    inputs = task.inputs
    kind = inputs.get("WebAppKind", "appType").casefold()
    if kind in _CONTAINER_KINDS or (kind in ("applinux", "linux") and inputs.get("ImageSource").casefold() ==
                                    "registry" and inputs.get("DockerRepository")):
        return replaced(task, stage, "it deploys a container image.", _container_hint(task))
    if inputs.get("ConnectionType").casefold() == "publishprofile":
        return replaced(task, stage, "it deploys with a publish profile, not to an Azure app Slipway can reach.",
                        "Give the stage's target (subscription, resource group, app) and use a deploy-package step.")
    if not same_app(app, stage):
        return replaced(task, stage, f"it deploys to another app ({app.site}) than the stage's first App Service "
                                     f"task ({stage.target.site_named}).",
                        "A Slipway stage deploys to one app: make a stage for this app with a deploy-package step.")
    if stage.target.packaged:
        return replaced(task, stage, "the stage deploys a package already, and a Slipway stage deploys one package "
                                     "to its app.",
                        "Make a stage for this app (one per app and slot) with a deploy-package step.")
    changes: list[str] = []
    target_slot = (stage.target.slot or "").casefold()
    named_slot = slot_name(app.slot, stage) if app.slot is not None else None
    if app.slot is not None and named_slot is None and not target_slot:
        changes.append(f"its slot ({app.slot}) could not be read: the stage deploys to the production slot until "
                       f"you set `target.slot`")
    elif app.slot is not None and (named_slot or app.slot).casefold() != target_slot:
        return replaced(task, stage, f"it deploys to slot {app.slot}, another slot than the stage's.",
                        "Make a stage for that slot with a deploy-package step.")
    if not stage.has_artifacts:
        return replaced(task, stage, "the definition has no artifact to deploy.",
                        "Add the build as an artifact, then use a deploy-package step.")
    package = inputs.raw("Package", "packageForLinux", "package") or inputs.raw("BuiltinLinuxPackage")
    found = stage.scope.artifact_file(package)
    step: dict[str, Any] = {"type": "deploy-package"}
    if found.alias is not None:
        step["artifact"] = found.alias
    else:
        changes.append(f"its package path ({package.strip() or 'none'}) names no artifact: the step deploys the "
                       f"primary artifact")
    method = inputs.get("deploymentMethod", "DeploymentType") if task.task_id != WEB_APP_DEPLOYMENT or \
        inputs.flag("UseWebDeploy", "enableCustomDeployment") else ""
    if method.casefold() in _DEPLOY_METHODS:
        step["method"] = _DEPLOY_METHODS[method.casefold()]
    elif method:
        changes.append(f"Slipway has no {method}: it deploys by zip deployment or run-from-package")
    read = {**_NOT_CARRIED, **(_LINUX_ONLY if kind in _LINUX_KINDS else {})}
    lost = sorted({why for name, why in read.items() if inputs.get(name).casefold() not in _DEFAULT_OFF})
    if lost:
        changes.append("not carried over: " + "; ".join(lost))
    stage.target.packaged = True
    inner = f" (the task took {found.inner} from it)" if found.inner else ""
    note = f"deploys the package registered for the artifact's version{inner}"
    return Mapped(step, CHANGED if changes else MAPPED, "; ".join([note, *changes]) + ".")


def _container_hint(task: Task) -> str:
    image = "/".join(p for p in (task.inputs.get("DockerNamespace"), task.inputs.get("DockerRepository")) if p)
    return "Use a deploy-container step with the image" + (f" ({image})" if image else "") + \
        " pinned by digest (…@sha256:…)."


def manage(task: Task, stage: StageTasks) -> Mapped:
    app = app_of(task)
    assert app is not None
    inputs = task.inputs
    action = inputs.get("Action") or "Swap Slots"
    folded = action.casefold()
    if not same_app(app, stage):
        return replaced(task, stage, f"it manages another app ({app.site}) than the stage's "
                                     f"({stage.target.site_named}).", "Make a stage for that app.")
    swaps = {"swap slots": "swap", "start swap with preview": "start-swap", "complete swap": "complete-swap"}
    if folded in swaps:
        source = slot_name(inputs.get("SourceSlot"), stage)
        to_production = inputs.flag("SwapWithProduction", default=True)
        target = "production" if to_production else slot_name(inputs.get("TargetSlot"), stage)
        if source is None or target is None or source.casefold() == target.casefold():
            return replaced(task, stage, f"its slots ({inputs.get('SourceSlot') or '?'} → "
                                         f"{'production' if to_production else inputs.get('TargetSlot') or '?'}) "
                                         f"are not two slot names Slipway can read.",
                            f"Use a {swaps[folded]} step with `slot` and `targetSlot`.")
        if not stage.has_artifacts and folded != "start swap with preview":
            return replaced(task, stage, "the definition has no artifact, and a Slipway swap checks which "
                                         "artifact version ends up in the target slot.",
                            f"Add the build as an artifact, then use a {swaps[folded]} step.")
        step: dict[str, Any] = {"type": swaps[folded], "slot": source, "targetSlot": target,
                                "preserveVnet": inputs.flag("PreserveVnet")}
        return Mapped(step, MAPPED, f"swaps slot {source} into {target}.")
    if folded == "cancel swap":
        slot = slot_name(inputs.get("Slot"), stage) if inputs.get("Slot") else None
        if slot is None or slot.casefold() == "production":
            return replaced(task, stage, "its slot is not one Slipway can read.", "Use a cancel-swap step with `slot`.")
        return Mapped({"type": "cancel-swap", "slot": slot}, MAPPED, f"cancels the swap of slot {slot}.")
    if folded == "restart azure app service":
        wanted = (slot_name(inputs.get("Slot"), stage) or inputs.get("Slot")) \
            if inputs.flag("SpecifySlot", "SpecifySlotOrASE") else "production"
        restart: dict[str, Any] = {"type": "restart"}
        if (wanted or "production").casefold() != (stage.target.slot or "production").casefold():
            if not SLOT.match(wanted or ""):
                return replaced(task, stage, f"its slot ({wanted}) is not one Slipway can read.",
                                "Use a restart step with `slot`.")
            restart["slot"] = wanted
        return Mapped(restart, MAPPED, f"restarts slot {wanted or 'production'}.")
    hints = {
        "start azure app service": "Start the app in the portal or with `az webapp start`; Slipway does not.",
        "stop azure app service": "Stop the app in the portal or with `az webapp stop`; Slipway does not.",
        "install extensions": "Install the site extensions once on the app (or in its ARM template).",
        "enable continuous monitoring": "Turn on Application Insights for the app once (or in its ARM template); "
                                        "gate on it with `metric` or `alerts` signals.",
        "delete slot": "Delete the slot in the portal or with an arm-deployment; Slipway does not delete slots.",
    }
    return replaced(task, stage, f"Slipway has no step for \"{action}\".",
                    hints.get(folded, "Run it in a `script` step (a Container Apps job with the Azure CLI)."))


def settings(task: Task, stage: StageTasks) -> Mapped:
    app = app_of(task)
    assert app is not None
    inputs = task.inputs
    if not same_app(app, stage):
        return replaced(task, stage, f"it sets another app's settings ({app.site}) than the stage's "
                                     f"({stage.target.site_named}).", "Make a stage for that app.")
    try:
        parsed: Any = json.loads(inputs.raw("appSettings") or "[]")
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(i, dict) for i in parsed):
        return replaced(task, stage, "its app settings are not the JSON list Slipway can read.",
                        "Write them as a set-app-settings step.")
    values: dict[str, Any] = {}
    sticky: list[str] = []
    changes: list[str] = []
    for item in parsed[:100]:
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not SETTING_NAME.match(name) or name in values:
            changes.append(f"setting '{str(name)[:64]}' is not a name Slipway takes (or is given twice)")
            continue
        shown = value if isinstance(value, str) else json.dumps(value) if isinstance(value, int | float | bool) \
            else ""
        rewritten = stage.scope.rewrite(shown)
        changes += rewritten.notes
        if len(rewritten.text) > 4000:
            changes.append(f"setting {name} is longer than 4000 characters and was left out")
            continue
        secret = any(v.secret and f"$({v.name})".casefold() in shown.casefold()
                     for v in stage.scope.variables.values())
        values[name] = {"value": rewritten.text, "secret": secret}
        if item.get("slotSetting") is True:
            sticky.append(name)
    if len(parsed) > 100:
        changes.append("only its first 100 settings were carried over")
    step: dict[str, Any] = {"type": "set-app-settings", "settings": values}
    if sticky:
        step["sticky"] = sticky
    slot = app.slot
    if (slot or "production").casefold() != (stage.target.slot or "production").casefold():
        resolved = slot_name(slot or "production", stage)
        if resolved is None:
            return replaced(task, stage, f"its slot ({slot}) is not one Slipway can read.",
                            "Use a set-app-settings step with `slot`.")
        step["slot"] = resolved
    for name, what in (("generalSettings", "general settings"), ("connectionStrings", "connection strings")):
        if inputs.get(name) not in ("", "[]"):
            changes.append(f"its {what} were not carried over (set them on the app or in its ARM template)")
    note = f"sets {len(values)} app setting(s)"
    return Mapped(step, CHANGED if changes else MAPPED, "; ".join([note, *changes]) + ".")

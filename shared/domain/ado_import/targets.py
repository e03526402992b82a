"""Where a stage deploys. Azure DevOps tasks name the subscription by service connection (never by id) and
the app and resource group by text that is often a `$(Variable)`: the stage's first App Service task gives
what can be read (the app only when both its name and its resource group can be), the caller's default target
the rest, and placeholders what neither gives."""

from __future__ import annotations

from collections.abc import Sequence

from shared.domain.ado_import.names import RESOURCE_GROUP, SITE, SLOT
from shared.domain.ado_import.refs import Scope
from shared.domain.ado_import.task_appservice import app_of
from shared.domain.ado_import.task_arm import ARM
from shared.domain.ado_import.task_model import Target, Task

PLACEHOLDER = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "REPLACE-ME",
               "site": "replace-me"}


def stage_target(tasks: Sequence[Task], scope: Scope, default: dict[str, str] | None) -> Target:
    apps = [app for app in (app_of(t) for t in tasks if t.enabled) if app is not None]
    first = next((a for a in apps if a.site), apps[0] if apps else None)
    given = default or {}
    found: dict[str, str | None] = {"subscriptionId": None, "resourceGroup": None, "site": None}
    slot = None
    if first is not None:
        site = scope.literal(first.site) if first.site else None
        found["site"] = site if site is not None and SITE.match(site) else None
        group = scope.literal(first.resource_group) if first.resource_group else None
        found["resourceGroup"] = group if group is not None and RESOURCE_GROUP.match(group) else None
        deploying = next((a for a in apps if a.deploys and (not a.site or a.site.casefold() ==
                                                            (first.site or "").casefold())), None)
        if deploying is not None and deploying.slot is not None:
            named = scope.literal(deploying.slot)
            slot = named if named is not None and SLOT.match(named) else None
    if found["resourceGroup"] is None:
        for task in tasks:
            if task.enabled and task.task_id == ARM and task.inputs.get("resourceGroupName"):
                group = scope.literal(task.inputs.get("resourceGroupName"))
                if group is not None and RESOURCE_GROUP.match(group):
                    found["resourceGroup"] = group
                    break
    site_from_tasks = found["site"] is not None
    if given.get("site") and given.get("resourceGroup") and (found["site"] is None or found["resourceGroup"] is None):
        # an app is a site in a resource group: where the definition does not name both, the caller's default app
        # is taken whole, never half of it beside half of the definition's
        found["site"], found["resourceGroup"] = given["site"], given["resourceGroup"]
    placeholders = []
    for key in found:
        if found[key] is None:
            found[key] = given.get(key)
        if found[key] is None:
            found[key] = PLACEHOLDER[key]
            placeholders.append(key)
    if slot is None and not site_from_tasks:
        slot = given.get("slot")
    return Target(subscription_id=str(found["subscriptionId"]), resource_group=str(found["resourceGroup"]),
                  site=str(found["site"]), slot=slot,
                  site_key=first.site.casefold() if first is not None and first.site else None,
                  site_named=first.site if first is not None else "",
                  placeholders=placeholders)

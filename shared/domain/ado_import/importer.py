"""An Azure DevOps classic release definition (what `GET _apis/release/definitions/{id}` returns or the
portal's Export writes) → a Slipway definition body and a migration report.

Pure: no I/O, no clock. A document that is not a definition (not an object, environments not a list, a
stage without a name, a structure of the wrong type) is refused with the JSON path of what is wrong;
anything else imports, with every element reported as mapped, changed, replaced or dropped.
"""

from __future__ import annotations

from typing import Any

from shared.domain.ado_import.artifacts import artifacts
from shared.domain.ado_import.context import Context
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED, ImportOptions, ImportResult
from shared.domain.ado_import.names import GUID, LONG_NAME_MAX, RESOURCE_GROUP, SITE, SLOT, printable
from shared.domain.ado_import.reading import Path, clean, get, mapping, refuse, text, whole
from shared.domain.ado_import.refs import Scope
from shared.domain.ado_import.release_name import release_name
from shared.domain.ado_import.report import Report
from shared.domain.ado_import.stages import plan, stage
from shared.domain.ado_import.triggers import release_triggers
from shared.domain.ado_import.variables import secret_values, variable_groups, variables
from shared.domain.errors import FieldError, Invalid

DEFAULT_OPTIONS = ImportOptions()
_TARGET = {"subscriptionId": GUID, "resourceGroup": RESOURCE_GROUP, "site": SITE, "slot": SLOT}


def import_definition(document: Any, options: ImportOptions = DEFAULT_OPTIONS) -> ImportResult:
    _check(options)
    root = mapping(document, (), required=True)
    name = printable(options.name if options.name is not None else text(get(root, "name")), LONG_NAME_MAX)
    if not name:
        refuse(("name",), "a definition needs a name")
    secrets = tuple(dict.fromkeys(_secrets(root)))
    scope = Scope({}, {}, None, secrets)
    report = Report(root, scope.mask)
    found = artifacts(get(root, "artifacts"), ("artifacts",), report)
    declared = variables(get(root, "variables"), ("variables",), "variables", report)
    groups = variable_groups(get(root, "variableGroups"), ("variableGroups",), "variableGroups", report)
    ctx = Context(options, report, Scope(declared.scope, found.aliases, found.primary, secrets), bool(found.items))
    planned = plan(get(root, "environments"), ("environments",))
    names = {p.name.casefold(): p.slipway for p in planned}
    stages = [stage(p, i, names, ctx) for i, p in enumerate(planned)]
    _refuse_cycles(stages, planned)
    triggers = release_triggers(get(root, "triggers"), ("triggers",), found.aliases, found.positions, report)
    for alias, trigger in triggers.continuous.items():
        found.items[found.positions[alias]]["trigger"] = trigger
    name_format, dropped = release_name(text(get(root, "releaseNameFormat")))
    _report_definition(root, name, name_format, dropped, report)
    if ctx.refusals:
        raise Invalid(ctx.refusals)
    definition: dict[str, Any] = {
        "name": name, "description": _description(root), "releaseNameFormat": name_format,
        "artifacts": found.items, "stages": stages}
    if triggers.schedules:
        definition["releaseSchedules"] = triggers.schedules
    if declared.slipway:
        definition["variables"] = declared.slipway
    if groups:
        definition["variableGroups"] = groups
    return ImportResult(_clean(definition), report.entries())


def _check(options: ImportOptions) -> None:
    """The caller's default target is input too: each field must be one a stage target takes."""
    if options.target is None:
        return
    if not isinstance(options.target, dict):
        raise Invalid([FieldError("target", "must be an object")])
    errors = [FieldError(f"target.{key}", f"not a valid {key}") for key, value in options.target.items()
              if key not in _TARGET or not isinstance(value, str) or not _TARGET[key].match(value)]
    if errors:
        raise Invalid(errors)


def _secrets(root: dict[str, Any]) -> list[str]:
    """Every secret value the document holds anyway: masked wherever text is shown."""
    found = secret_values(root.get("variables"))
    environments = root.get("environments")
    for env in environments if isinstance(environments, list) else []:
        if isinstance(env, dict):
            found += secret_values(env.get("variables"))
    return found


def _description(root: dict[str, Any]) -> str:
    described = text(get(root, "description")).strip()
    return described.encode("utf-8")[:4000].decode("utf-8", errors="ignore")


def _refuse_cycles(stages: list[dict[str, Any]], planned: list[Any]) -> None:
    """Stages that wait for each other (which Azure DevOps forbids) would never deploy."""
    edges = {s["name"]: list(s["trigger"].get("stages", [])) for s in stages}
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 2:
            return False
        if state.get(node) == 1:
            return True
        state[node] = 1
        if any(visit(up) for up in edges.get(node, [])):
            return True
        state[node] = 2
        return False

    for i, s in enumerate(stages):
        if visit(s["name"]):
            refuse((*planned[i].path, "conditions"), f"stage '{planned[i].name}' waits for itself through other "
                                                    f"stages (a cycle)")


def _report_definition(root: dict[str, Any], name: str, name_format: str, dropped: list[str],
                       report: Report) -> None:
    original = text(get(root, "name")).strip()
    notes = [f"definition {name}"]
    if original != name:
        notes.append(f"named '{name}' (was '{original}')" if original else "named by the import")
    folder = text(get(root, "path")).strip()
    if folder not in ("", "\\"):
        notes.append(f"Slipway has no folders (it was in {folder})")
    notes.append("its server fields (id, revision, dates, links) are Slipway's own")
    report.add((), "definition", original or name, CHANGED if original != name else MAPPED, "name",
               "; ".join(notes) + ".")
    where: Path = ("releaseNameFormat",)
    if dropped:
        report.add(where, "option", "release name format", CHANGED, "releaseNameFormat",
                   f"{name_format}: Slipway fills in $(rev:r), $(Build.BuildNumber) and $(Release.DefinitionName) "
                   f"only; {', '.join(dropped[:10])} were taken out.")
    elif "releaseNameFormat" in root:
        report.add(where, "option", "release name format", MAPPED, "releaseNameFormat", f"{name_format}.")
    retention = get(root, "retentionPolicy")
    if isinstance(retention, dict) and retention:
        report.add(("retentionPolicy",), "option", "retention", DROPPED, "",
                   f"Slipway has no retention yet and keeps every release (Azure DevOps kept "
                   f"{whole(get(retention, 'daysToKeep'))} days).")


def _clean(value: Any) -> Any:
    """Strings as UTF-8 can carry them (JSON text may hold lone surrogates)."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {clean(str(k)): _clean(v) for k, v in value.items()}
    return value

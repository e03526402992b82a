"""`$(Name)` variables in the text of steps: Azure DevOps' predefined release variables, and the
outputs of the steps before (an ARM deployment's outputs, say) in the same deployment.

Names are case-insensitive, as in Azure DevOps. An output is `$(name)` or, when two steps give the
same name, `$(step name.name)`. A variable nobody defines is an error, never an empty string: a
deployment to `https://$(Sitename).azurewebsites.net` must not quietly go somewhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from shared.domain.release import Deployment, Release

VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\- ]{0,127})\)")
PREDEFINED_PREFIXES = ("Release.", "Build.", "System.", "Slipway.", "Agent.")
"""Names Azure DevOps (and Slipway) define themselves: a definition's own variables may not take them."""
SECRET_REFERENCE = re.compile(r"^\s*@Microsoft\.KeyVault\(.*\)\s*$", re.DOTALL)
MASK = "***"


class UnknownVariable(ValueError):
    """A `$(name)` that nothing defines (the step fails with this reason)."""


def predefined(release: Release, stage: str, dep: Deployment | None) -> dict[str, str]:
    """Azure DevOps' release variables that Slipway knows, by their Azure DevOps names."""
    found = {
        "Release.ReleaseId": str(release.id), "Release.ReleaseName": release.name,
        "Release.DefinitionId": str(release.definition_id),
        "Release.DefinitionName": str(release.definition.get("name", "")),
        "Release.RequestedFor": release.created_by, "Release.Reason": str(release.reason),
        "Release.EnvironmentName": stage, "Release.Environments.Name": stage,
        "Release.ReleaseDescription": release.description,
    }
    if dep is not None:
        found.update({"Release.AttemptNumber": str(dep.attempt), "Release.Deployment.RequestedFor": dep.requested_by})
    for artifact in release.artifacts:
        alias = str(artifact.get("alias", ""))
        for name, key in (("BuildNumber", "version"), ("SourceBranch", "branch"), ("SourceVersion", "commit"),
                          ("Sha256", "sha256")):
            if artifact.get(key) is not None:
                found[f"Release.Artifacts.{alias}.{name}"] = str(artifact[key])
        # the build's own id (an Azure Pipelines build id, a GitHub run id) when the build gave one: Azure DevOps'
        # BuildId is that id, not the build number; a version registered without one has only its version
        build_id = artifact.get("buildId") if artifact.get("buildId") is not None else artifact.get("version")
        if build_id is not None:
            found[f"Release.Artifacts.{alias}.BuildId"] = str(build_id)
        if artifact.get("isPrimary"):
            found["Build.BuildNumber"] = str(artifact.get("version", ""))
            found["Release.PrimaryArtifactSourceAlias"] = alias
    return found


def is_secret(value: str) -> bool:
    """A Key Vault reference: its value is read when a step needs it, never stored, always masked."""
    return bool(SECRET_REFERENCE.match(value))


def custom(release: Release, stage: str) -> dict[str, str]:
    """The definition's variables as this stage sees them: the groups the definition links, its own
    variables, the groups the stage links, then the stage's own (each scope wins over the ones before),
    each replaced by the release's value where the variable allows it (Azure DevOps' "settable at release
    time"). Secrets stay Key Vault references here."""
    found: dict[str, tuple[str, bool]] = {}
    plan: dict[str, Any] = next((s for s in release.definition.get("stages", []) if s.get("name") == stage), {})
    groups = {name.casefold(): values for name, values in (release.groups or {}).items()}

    def linked(names: list[str]) -> list[dict[str, Any]]:
        return [groups.get(n.casefold()) or {} for n in names]

    # lowest first: groups linked by the definition, its variables, groups linked by the stage, the stage's own
    scopes = [*linked(release.definition.get("variableGroups") or []), release.definition.get("variables") or {},
              *linked(plan.get("variableGroups") or []), plan.get("variables") or {}]
    for scope in scopes:
        for name, declared in scope.items():
            value, settable = (declared, False) if isinstance(declared, str) else \
                (str(declared.get("value", "")), bool(declared.get("allowOverride")))
            for known in [k for k in found if k.casefold() == name.casefold()]:
                del found[known]
            found[name] = (value, settable)
    given = {k.casefold(): v for k, v in (release.variables or {}).items()}
    return {name: given.get(name.casefold(), value) if settable else value for name, (value, settable) in found.items()}


def settable(definition: dict[str, Any]) -> list[dict[str, str]]:
    """The variables a release may set (declared with `allowOverride` at some scope), each once, with the
    value a release gets otherwise (none shown for a secret) and the first scope declaring it."""
    found: dict[str, dict[str, str]] = {}
    scopes = [("definition", definition.get("variables") or {})]
    scopes += [(f"stage {s.get('name')}", s.get("variables") or {}) for s in definition.get("stages", [])]
    for scope, declared in scopes:
        for name, spec in declared.items():
            if isinstance(spec, dict) and spec.get("allowOverride"):
                value = str(spec.get("value", ""))
                found.setdefault(name.casefold(), {"name": name, "default": "" if is_secret(value) else value,
                                                   "scope": scope})
    return list(found.values())


def overridable(definition: dict[str, Any]) -> set[str]:
    """Names (case-folded) a release may set."""
    return {v["name"].casefold() for v in settable(definition)}


def shown(variables: Mapping[str, str]) -> dict[str, str]:
    """The variables with every secret masked: what the domain (instructions) and readers may see."""
    return {k: MASK if is_secret(v) else v for k, v in variables.items()}


def outputs(dep: Deployment | None, before: int) -> dict[str, str]:
    """Outputs of the deployment's steps before step `before`: `name` (the later step wins) and
    `step name.name`. Secure outputs were never stored, so they are never here."""
    found: dict[str, str] = {}
    for step in (dep.steps[:before] if dep else []):
        for name, value in (step.state.get("outputs") or {}).items():
            found[name] = found[f"{step.name}.{name}"] = str(value)
    return found


def expand(text: str, variables: Mapping[str, str], secret: Callable[[str], str] | None = None) -> str:
    """Substitute every `$(name)`; raises UnknownVariable naming the first unknown one. A secret (a Key
    Vault reference) becomes its value through `secret`, or *** without one."""
    folded = {k.casefold(): v for k, v in variables.items()}

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.casefold() not in folded:
            raise UnknownVariable(f"unknown variable $({name})")
        value = folded[name.casefold()]
        if is_secret(value):
            return secret(value.strip()) if secret is not None else MASK
        return value

    return VARIABLE.sub(one, text)


SUPPLIED_BY_STEP = frozenset({"slipway.callbackurl"})
"""Names (case-folded) a step defines itself while it runs: http-request's `$(Slipway.CallbackUrl)`, the URL
of the callback it issues just before its call (shared/services/steps/http_request.py)."""


def unresolved(value: Any, variables: Mapping[str, str]) -> str | None:
    """The first `$(name)` in the strings of a JSON value that nothing defines (neither `variables` nor a step
    while it runs), or None.

    Azure DevOps leaves a macro it cannot resolve as literal text ("Define variables", macro syntax: when
    `$(var)` can't be replaced it stays `$(var)`). Slipway deliberately differs, as issue 17 asks for "a clear
    step failure": `Server=$(SqlServre)` written as is into an app setting deploys a broken configuration that
    reports success, and a misspelt name is found at 3 AM by the app rather than by the release."""
    known = {k.casefold() for k in variables} | SUPPLIED_BY_STEP

    def first(item: Any) -> str | None:
        if isinstance(item, str):
            names = (m.group(1).strip() for m in VARIABLE.finditer(item))
            return next((n for n in names if n.casefold() not in known), None)
        children = item if isinstance(item, list) else list(item.values()) if isinstance(item, dict) else []
        return next((found for child in children if (found := first(child)) is not None), None)

    return first(value)


SHELL_FIELDS = {"script": ("command", "args", "env")}
"""Fields a shell reads, by step type: `$(date)` there is command substitution, so an unknown name stays as it
is, as in Azure DevOps' script tasks."""


def unresolved_in_step(step_type: str, config: Mapping[str, Any], variables: Mapping[str, str]) -> str | None:
    """`unresolved` over a step's settings, but for its type and its shell text (`SHELL_FIELDS`)."""
    shell = SHELL_FIELDS.get(step_type, ())
    return unresolved({k: v for k, v in config.items() if k != "type" and k not in shell}, variables)


def expand_known(value: Any, variables: Mapping[str, str], secret: Callable[[str], str] | None = None) -> Any:
    """`expand_all`, leaving a `$(name)` nothing defines yet as it is (for the step to resolve when it runs:
    its callback URL, say), through every string of a JSON value."""
    folded = {k.casefold(): v for k, v in variables.items()}

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.casefold() not in folded:
            return match.group(0)
        found = folded[name.casefold()]
        if is_secret(found):
            return secret(found.strip()) if secret is not None else MASK
        return found

    if isinstance(value, str):
        return VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [expand_known(v, variables, secret) for v in value]
    if isinstance(value, dict):
        return {k: expand_known(v, variables, secret) for k, v in value.items()}
    return value


def expand_all(value: Any, variables: Mapping[str, str], secret: Callable[[str], str] | None = None) -> Any:
    """`expand` through every string of a JSON value (a request body, template parameters)."""
    if isinstance(value, str):
        return expand(value, variables, secret)
    if isinstance(value, list):
        return [expand_all(v, variables, secret) for v in value]
    if isinstance(value, dict):
        return {k: expand_all(v, variables, secret) for k, v in value.items()}
    return value


def mask(value: Any, secrets: set[str]) -> Any:
    """Every secret value replaced by *** wherever it appears, inside longer strings too, through a JSON
    value (the longest first, so that a secret containing another is masked whole)."""
    if not secrets:
        return value
    if isinstance(value, str):
        for known in sorted(secrets, key=len, reverse=True):
            if known:
                value = value.replace(known, MASK)
        return value
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    return value


ARTIFACT_FIELDS = ("BuildNumber", "BuildId", "SourceBranch", "SourceVersion", "Sha256")
RELEASE_NAMES = ("Release.ReleaseId", "Release.ReleaseName", "Release.DefinitionId", "Release.DefinitionName",
                 "Release.RequestedFor", "Release.Reason", "Release.EnvironmentName", "Release.Environments.Name",
                 "Release.ReleaseDescription", "Release.AttemptNumber", "Release.Deployment.RequestedFor",
                 "Build.BuildNumber", "Release.PrimaryArtifactSourceAlias", "Slipway.CallbackUrl")


def save_errors(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, why) for every `$(name)` in a definition's stages that can be known wrong when it is saved:
    a predefined-looking name Slipway does not define, or an artifact alias the definition does not have.
    Other names may be outputs of earlier steps, known only when the stage runs."""
    aliases = {str(a.get("alias", "")).casefold() for a in definition.get("artifacts", [])}
    known = {n.casefold() for n in RELEASE_NAMES}
    found: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            for name in (m.group(1).strip() for m in VARIABLE.finditer(value)):
                why = _unknown(name, aliases, known)
                if why:
                    found.append((where, why))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")

    for i, stage in enumerate(definition.get("stages", [])):
        for key in ("steps", "preGates", "postGates"):
            walk(stage.get(key), f"stages[{i}].{key}")
    return found


def _unknown(name: str, aliases: set[str], known: set[str]) -> str | None:
    folded = name.casefold()
    if folded.startswith("release.artifacts."):
        alias, _, field = name[len("Release.Artifacts."):].rpartition(".")
        if alias.casefold() not in aliases:
            return f"$({name}): the definition has no artifact '{alias}'"
        if field not in ARTIFACT_FIELDS:
            return f"$({name}): an artifact's variables are {', '.join(ARTIFACT_FIELDS)}"
        return None
    if folded.startswith(tuple(p.casefold() for p in PREDEFINED_PREFIXES)) and folded not in known:
        return f"$({name}) is not a variable Slipway defines"
    return None

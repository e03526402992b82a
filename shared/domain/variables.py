"""`$(Name)` variables in the text of steps: Azure DevOps' predefined release variables, and the
outputs of the steps before (an ARM deployment's outputs, say) in the same deployment.

Names are case-insensitive, as in Azure DevOps. An output is `$(name)` or, when two steps give the
same name, `$(step name.name)`. A variable nobody defines is an error, never an empty string: a
deployment to `https://$(Sitename).azurewebsites.net` must not quietly go somewhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.domain.release import Deployment, Release

VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\- ]{0,127})\)")


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
        for name, key in (("BuildNumber", "version"), ("BuildId", "version"), ("SourceBranch", "branch"),
                          ("SourceVersion", "commit"), ("Sha256", "sha256")):
            if artifact.get(key) is not None:
                found[f"Release.Artifacts.{alias}.{name}"] = str(artifact[key])
        if artifact.get("isPrimary"):
            found["Build.BuildNumber"] = str(artifact.get("version", ""))
            found["Release.PrimaryArtifactSourceAlias"] = alias
    return found


def outputs(dep: Deployment | None, before: int) -> dict[str, str]:
    """Outputs of the deployment's steps before step `before`: `name` (the later step wins) and
    `step name.name`. Secure outputs were never stored, so they are never here."""
    found: dict[str, str] = {}
    for step in (dep.steps[:before] if dep else []):
        for name, value in (step.state.get("outputs") or {}).items():
            found[name] = found[f"{step.name}.{name}"] = str(value)
    return found


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Substitute every `$(name)`; raises UnknownVariable naming the first unknown one."""
    folded = {k.casefold(): v for k, v in variables.items()}

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.casefold() not in folded:
            raise UnknownVariable(f"unknown variable $({name})")
        return folded[name.casefold()]

    return VARIABLE.sub(one, text)


def expand_all(value: Any, variables: Mapping[str, str]) -> Any:
    """`expand` through every string of a JSON value (a request body, template parameters)."""
    if isinstance(value, str):
        return expand(value, variables)
    if isinstance(value, list):
        return [expand_all(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: expand_all(v, variables) for k, v in value.items()}
    return value

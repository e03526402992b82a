"""An Azure DevOps service hook delivery (`build.complete`) read as a build.

Payload: learn.microsoft.com/azure/devops/service-hooks/events#build.complete (the sample in
tests/fixtures/ado_build_complete.json). Newer payloads carry `resource.result` ("succeeded") and
`resource.project.name`; the documented sample has only `resource.status` ("succeeded") and the project's id in
`resourceContainers.project.id`, and its branch and commit in `sourceGetVersion` (`LG:{ref}:{sha}`). The build feeds
the artifacts whose `source` is `azure-devops:{project}/{pipeline name}` (the project's name, or its id when the
payload has no name; case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.build_hooks.github import VERSION, NotABuild
from shared.domain.errors import FieldError, Invalid

PREFIX = "azure-devops:"
EVENT = "build.complete"
GIT_VERSION = re.compile(r"^LG:(?P<ref>[^:]+):(?P<sha>[0-9a-fA-F]{40})$")
NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,260}$")


@dataclass(frozen=True)
class AdoBuild:
    source: str
    version: str
    build_id: str
    branch: str | None
    commit: str | None


def read(payload: Any) -> AdoBuild | NotABuild:
    if not isinstance(payload, dict):
        raise Invalid([FieldError("body", "a JSON object is expected")])
    resource = payload.get("resource")
    if not isinstance(resource, dict):
        raise Invalid([FieldError("resource", "an object is required")])
    source = _source(payload, resource)
    event = payload.get("eventType")
    if event != EVENT:
        return NotABuild(source, f"event '{event}' is not a build: Slipway reads {EVENT}")
    if source is None:
        raise Invalid([FieldError("resource.definition.name", "the pipeline's name and project are required")])
    result = resource.get("result", resource.get("status"))
    if result != "succeeded":
        return NotABuild(source, f"the build's result is '{result}', not 'succeeded'")
    number = resource.get("buildNumber")
    if not isinstance(number, str) or not number:
        raise Invalid([FieldError("resource.buildNumber", "a non-empty string is required")])
    if not VERSION.match(number):
        return NotABuild(source, f"the build number '{number[:100]}' is not a version Slipway accepts "
                                 "(letters, digits, `.`, `_`, `+`, `-`; at most 100)")
    build_id = resource.get("id")
    if not isinstance(build_id, int) or isinstance(build_id, bool):
        raise Invalid([FieldError("resource.id", "an integer is required")])
    branch, commit = resource.get("sourceBranch"), resource.get("sourceVersion")
    legacy = GIT_VERSION.match(str(resource.get("sourceGetVersion") or ""))
    if legacy and not branch:
        branch, commit = legacy["ref"], legacy["sha"]
    return AdoBuild(source, number, str(build_id), branch if isinstance(branch, str) and branch else None,
                    commit.lower() if isinstance(commit, str) and re.fullmatch(r"[0-9a-fA-F]{40}", commit) else None)


def _source(payload: dict[str, Any], resource: dict[str, Any]) -> str | None:
    definition, project = resource.get("definition"), resource.get("project")
    name = definition.get("name") if isinstance(definition, dict) else None
    project_name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(project_name, str):
        containers = payload.get("resourceContainers")
        holder = containers.get("project") if isinstance(containers, dict) else None
        project_name = holder.get("id") if isinstance(holder, dict) else None
    if isinstance(name, str) and NAME.match(name) and isinstance(project_name, str) and NAME.match(project_name):
        return f"{PREFIX}{project_name}/{name}"
    return None

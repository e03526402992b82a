"""An Azure DevOps service hook delivery read as a build: which build of which project it names.

Payloads: learn.microsoft.com/azure/devops/service-hooks/events (MicrosoftDocs/azure-devops-docs
docs/service-hooks/events.md): `build.complete` (publisher `tfs`, the sample in tests/fixtures/ado_build_complete.json)
and "Run state changed" `ms.vss-pipelines.run-state-changed-event` (publisher `pipelines`; `resource.run.{id, name,
state, result}`, `resource.pipeline.name`). A YAML pipeline's run is a build with the same id. Both samples name the
project only by id (`resourceContainers.project.id`); newer `build.complete` payloads carry `resource.project.name`,
`resource.result` and `resource.sourceBranch` where the documented one has `resource.status` and `sourceGetVersion`
(`LG:{ref}:{sha}`).

What the payload says is a claim: when Slipway can reach the organization it reads the build back (Builds - Get)
and releases what the API says, not what the delivery says (`Claim` below is only what to look up, and what to
record when nothing is looked up). The build feeds the artifacts whose `source` is `azure-devops:{project}/{pipeline
name}` (the project's name, or its id; case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.build_hooks.github import VERSION, NotABuild
from shared.domain.errors import FieldError, Invalid

PREFIX = "azure-devops:"
BUILD_COMPLETE = "build.complete"
RUN_STATE_CHANGED = "ms.vss-pipelines.run-state-changed-event"
EVENTS = (BUILD_COMPLETE, RUN_STATE_CHANGED)
GIT_VERSION = re.compile(r"^LG:(?P<ref>[^:]+):(?P<sha>[0-9a-fA-F]{40})$")
NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,260}$")
PACKAGE_NAMES = ("package", "drop")
"""With several artifacts on a build, the one with this name (`drop` is the classic Publish Build Artifacts
default)."""


@dataclass(frozen=True)
class AdoBuild:
    """A succeeded build, as the delivery or (better) the Builds API describes it."""

    project: str
    """The project's name when known, else its id."""
    pipeline: str
    version: str
    build_id: int
    branch: str | None
    commit: str | None

    @property
    def source(self) -> str:
        return source_of(self.project, self.pipeline)


def source_of(project: str, pipeline: str) -> str:
    return f"{PREFIX}{project}/{pipeline}"


def read(payload: Any) -> AdoBuild | NotABuild:
    """What the delivery claims; a delivery of a supported event without the fields it must have is a 400 naming
    them."""
    if not isinstance(payload, dict):
        raise Invalid([FieldError("body", "a JSON object is expected")])
    resource = payload.get("resource")
    if not isinstance(resource, dict):
        raise Invalid([FieldError("resource", "an object is required")])
    event = payload.get("eventType")
    if event == RUN_STATE_CHANGED:
        return _run_state_changed(payload, resource)
    project = _project(payload, resource)
    definition = resource.get("definition")
    pipeline = definition.get("name") if isinstance(definition, dict) else None
    source = source_of(project, pipeline) if project and isinstance(pipeline, str) and NAME.match(pipeline) else None
    if event != BUILD_COMPLETE:
        return NotABuild(source, f"event '{str(event)[:80]}' is not a build: Slipway reads {' and '.join(EVENTS)}")
    if source is None or project is None or not isinstance(pipeline, str):
        raise Invalid([FieldError("resource.definition.name", "the pipeline's name and project are required")])
    result = resource.get("result", resource.get("status"))
    if result != "succeeded":
        return NotABuild(source, f"the build's result is '{result}', not 'succeeded'")
    branch, commit = resource.get("sourceBranch"), resource.get("sourceVersion")
    legacy = GIT_VERSION.match(str(resource.get("sourceGetVersion") or ""))
    if legacy and not branch:
        branch, commit = legacy["ref"], legacy["sha"]
    return _build(source, project, pipeline, resource.get("buildNumber"), "resource.buildNumber",
                  resource.get("id"), "resource.id", branch, commit)


def _run_state_changed(payload: dict[str, Any], resource: dict[str, Any]) -> AdoBuild | NotABuild:
    run = resource.get("run")
    if not isinstance(run, dict):
        raise Invalid([FieldError("resource.run", "an object is required")])
    pipeline_holder = resource.get("pipeline") if isinstance(resource.get("pipeline"), dict) else run.get("pipeline")
    pipeline = pipeline_holder.get("name") if isinstance(pipeline_holder, dict) else None
    project = _project(payload, resource)
    if project is None or not isinstance(pipeline, str) or not NAME.match(pipeline):
        raise Invalid([FieldError("resource.pipeline.name", "the pipeline's name and project are required")])
    source = source_of(project, pipeline)
    if run.get("state") != "completed":
        return NotABuild(source, f"the run is '{run.get('state')}': only a completed run is a build")
    if run.get("result") != "succeeded":
        return NotABuild(source, f"the run's result is '{run.get('result')}', not 'succeeded'")
    repositories = run.get("resources", {}).get("repositories") if isinstance(run.get("resources"), dict) else None
    own = repositories.get("self") if isinstance(repositories, dict) else None
    branch = own.get("refName") if isinstance(own, dict) else None
    commit = own.get("version") if isinstance(own, dict) else None
    return _build(source, project, pipeline, run.get("name"), "resource.run.name", run.get("id"), "resource.run.id",
                  branch, commit)


def _build(source: str, project: str, pipeline: str, number: Any, number_field: str, build_id: Any, id_field: str,
           branch: Any, commit: Any) -> AdoBuild | NotABuild:
    if not isinstance(number, str) or not number:
        raise Invalid([FieldError(number_field, "a non-empty string is required")])
    if not isinstance(build_id, int) or isinstance(build_id, bool) or build_id < 1:
        raise Invalid([FieldError(id_field, "a positive integer is required")])
    if not VERSION.match(number):
        return NotABuild(source, f"the build number '{number[:100]}' is not a version Slipway accepts "
                                 "(letters, digits, `.`, `_`, `+`, `-`; at most 100)")
    return AdoBuild(project, pipeline, number, build_id, branch if isinstance(branch, str) and branch else None,
                    commit.lower() if isinstance(commit, str) and re.fullmatch(r"[0-9a-fA-F]{40}", commit) else None)


def _project(payload: dict[str, Any], resource: dict[str, Any]) -> str | None:
    """The project's name when the payload has it, else its id (`resourceContainers.project.id`)."""
    project = resource.get("project")
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str):
        containers = payload.get("resourceContainers")
        holder = containers.get("project") if isinstance(containers, dict) else None
        name = holder.get("id") if isinstance(holder, dict) else None
    return name if isinstance(name, str) and NAME.match(name) else None


def from_api(build: dict[str, Any]) -> AdoBuild | NotABuild:
    """The build as Builds - Get answers it (vsts-rest-api-specs specification/build/7.1/build.json `Build`):
    the truth a release is made from."""
    definition, project = build.get("definition"), build.get("project")
    pipeline = definition.get("name") if isinstance(definition, dict) else None
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(pipeline, str) or not NAME.match(pipeline) or not isinstance(name, str) or not NAME.match(name):
        return NotABuild(None, "Azure DevOps answered a build without its pipeline or project name")
    source = source_of(name, pipeline)
    if build.get("status") != "completed":
        return NotABuild(source, f"Azure DevOps says the build is '{build.get('status')}', not completed")
    if build.get("result") != "succeeded":
        return NotABuild(source, f"Azure DevOps says the build's result is '{build.get('result')}', not 'succeeded'")
    return _build(source, name, pipeline, build.get("buildNumber"), "buildNumber", build.get("id"), "id",
                  build.get("sourceBranch"), build.get("sourceVersion"))


def choose_artifact(artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of a build's artifacts (Artifacts - List), the package: the only one, or the one named `package` or `drop`."""
    named = [a for a in artifacts if isinstance(a, dict) and isinstance(a.get("name"), str)]
    if len(named) == 1:
        return named[0]
    for wanted in PACKAGE_NAMES:
        found = [a for a in named if a["name"].lower() == wanted]
        if len(found) == 1:
            return found[0]
    return None


def inner_package(names: list[str]) -> str | None:
    """Inside an artifact's zip, the zip that is the package (what Azure DevOps' App Service task finds with
    `$(System.DefaultWorkingDirectory)/**/*.zip`): the only `.zip`, or the one named `package.zip`. None: the
    artifact holds no single zip, and its files are the package."""
    zips = [n for n in names if n.lower().endswith(".zip") and not n.endswith("/")]
    if len(zips) == 1:
        return zips[0]
    named = [n for n in zips if n.rsplit("/", 1)[-1].lower() == "package.zip"]
    return named[0] if len(named) == 1 else None

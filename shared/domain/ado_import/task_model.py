"""A workflow task as the importer reads it, what its stage tells its mapping, and what a mapping gives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared.domain.ado_import.reading import Path, flag, get, mapping, text, whole
from shared.domain.ado_import.refs import Scope


@dataclass(frozen=True)
class Inputs:
    """A task's inputs, looked up by name or alias in any case (task.json `name` and `aliases`)."""

    values: dict[str, Any]

    def raw(self, *names: str) -> str:
        return text(get(self.values, *names))

    def get(self, *names: str) -> str:
        return self.raw(*names).strip()

    def flag(self, *names: str, default: bool = False) -> bool:
        return flag(get(self.values, *names), default)


@dataclass(frozen=True)
class Task:
    path: Path
    task_id: str
    """Lower case: exports write ids in either case."""
    version: str
    name: str
    """The display name the user gave it."""
    ref_name: str
    inputs: Inputs
    enabled: bool
    continue_on_error: bool
    condition: str
    always_run: bool
    timeout_minutes: int
    definition_type: str

    @property
    def major(self) -> int | None:
        match = re.match(r"^\s*(\d{1,4})", self.version)
        return int(match.group(1)) if match else None

    @property
    def label(self) -> str:
        return self.name or self.ref_name or self.task_id or "task"


def read_task(value: Any, path: Path) -> Task:
    data = mapping(value, path, required=True)
    timeout = whole(get(data, "timeoutInMinutes"))
    return Task(
        path=path, task_id=text(get(data, "taskId")).strip().lower(), version=text(get(data, "version")).strip(),
        name=text(get(data, "name")).strip(), ref_name=text(get(data, "refName")).strip(),
        inputs=Inputs(mapping(get(data, "inputs"), (*path, "inputs"))),
        enabled=flag(get(data, "enabled"), True), continue_on_error=flag(get(data, "continueOnError")),
        condition=text(get(data, "condition")).strip(), always_run=flag(get(data, "alwaysRun")),
        timeout_minutes=timeout if timeout is not None and 0 < timeout <= 525600 else 0,
        definition_type=text(get(data, "definitionType")).strip())


@dataclass
class Target:
    """The app a stage deploys to, and how its tasks name it."""

    subscription_id: str
    resource_group: str
    site: str
    slot: str | None
    site_key: str | None
    """The app name as the stage's first App Service task wrote it (case-folded), None when none did."""
    site_named: str = ""
    """The same, as written."""
    placeholders: list[str] = field(default_factory=list)
    """The fields nothing in the document gave (they hold REPLACE-ME values)."""
    packaged: bool = False
    """A deploy-package step is in the stage already: it deploys one package to its slot."""

    def as_dict(self) -> dict[str, str]:
        out = {"subscriptionId": self.subscription_id, "resourceGroup": self.resource_group, "site": self.site}
        if self.slot:
            out["slot"] = self.slot
        return out


@dataclass
class StageTasks:
    """What mapping a task needs to know about its stage."""

    scope: Scope
    target: Target
    stage: str
    has_artifacts: bool


@dataclass(frozen=True)
class Mapped:
    step: dict[str, Any] | None
    """None when the task is dropped."""
    outcome: str
    note: str

"""What an import takes and gives back: options, the Slipway definition and the migration report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAPPED = "mapped"
"""Same behaviour in Slipway."""
CHANGED = "changed"
"""Carried over with a difference the note states."""
REPLACED = "replaced"
"""Became a manual intervention step that states what the original did."""
DROPPED = "dropped"
"""Not carried over; the note says why and what to do instead."""


@dataclass(frozen=True)
class ImportOptions:
    strict: bool = False
    """Tasks with no equivalent refuse the import (Invalid naming each task's path)."""
    target: dict[str, str] | None = None
    """Default stage target {"subscriptionId", "resourceGroup", "site"} for stages whose tasks do not say
    (Azure DevOps names subscriptions by service connection, never by id)."""
    name: str | None = None
    """The Slipway definition's name instead of the document's."""


@dataclass(frozen=True)
class ReportEntry:
    path: str
    """JSON path into the Azure DevOps document, e.g. `$.environments[1].deployPhases[0].workflowTasks[2]`."""
    kind: str
    """definition|artifact|trigger|stage|condition|approval|gate|schedule|variable|variableGroup|task|option"""
    name: str
    """What the user knows it by (stage name, task display name, variable name)."""
    outcome: str
    """mapped | changed | replaced | dropped"""
    became: str
    """Where it is in the Slipway definition, e.g. `stages[1].steps[2]`; empty when dropped."""
    note: str
    """What it became, or why not and what to do instead."""


@dataclass(frozen=True)
class ImportResult:
    definition: dict[str, Any]
    """A Slipway definition body (what `POST /api/definitions` takes)."""
    report: list[ReportEntry]
    """Every stage, trigger, condition, approval, gate, schedule, variable and task, in document order."""

"""The shape of a definition that the release state machine needs: stages, triggers and steps.

A release keeps the definition revision it was created from as plain JSON; `Plan.from_dict`
reads the parts that decide what runs when. `graph_errors` checks the stage graph (unknown and
cyclic references) for definition validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.errors import FieldError

AFTER_RELEASE = "afterRelease"
AFTER_STAGES = "afterStages"
MANUAL = "manual"
SCHEDULE = "schedule"
STEP_TYPES = ("deploy-package", "http-check", "wait", "swap", "start-swap", "complete-swap", "cancel-swap",
              "restart", "set-app-settings")
SWAP_TYPES = ("swap", "complete-swap")
"""Steps after which a failing post-swap check swaps back."""


@dataclass(frozen=True)
class StepPlan:
    index: int
    type: str
    name: str
    continue_on_error: bool
    config: dict[str, Any]


@dataclass(frozen=True)
class StagePlan:
    name: str
    trigger: str
    after: tuple[str, ...]
    """Upstream stages of an afterStages trigger: a join waits for all of them."""
    allow_partial: bool
    steps: tuple[StepPlan, ...]
    target: dict[str, str]
    pre_approvals: dict[str, Any] | None = None
    post_approvals: dict[str, Any] | None = None
    queue: dict[str, Any] | None = None
    """{"parallel": N, "policy": "sequence" | "latest"}; no limit when absent."""
    windows: tuple[dict[str, Any], ...] = ()
    freezes: tuple[dict[str, Any], ...] = ()
    rollback_ignores_windows: bool = False
    schedules: tuple[dict[str, Any], ...] = ()
    """A schedule trigger's occurrences: {"cron", "timeZone"} each."""
    pre_gates: dict[str, Any] | None = None
    post_gates: dict[str, Any] | None = None
    """Health signals sampled before the steps / after them (see shared/domain/gates.py)."""


@dataclass(frozen=True)
class Plan:
    stages: tuple[StagePlan, ...]

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    def downstream_of(self, name: str) -> list[StagePlan]:
        return [s for s in self.stages if s.trigger == AFTER_STAGES and name in s.after]

    @classmethod
    def from_dict(cls, definition: dict[str, Any]) -> Plan:
        return cls(tuple(_stage(s) for s in definition.get("stages", [])))


def _stage(data: dict[str, Any]) -> StagePlan:
    trigger = data.get("trigger") or {"type": MANUAL}
    steps = tuple(
        StepPlan(i, s["type"], s.get("name") or s["type"], bool(s.get("continueOnError", False)), s)
        for i, s in enumerate(data.get("steps", []))
    )
    return StagePlan(
        name=data["name"],
        trigger=trigger.get("type", MANUAL),
        after=tuple(trigger.get("stages", [])),
        allow_partial=bool(trigger.get("allowPartialSuccess", False)),
        steps=steps,
        target=data.get("target", {}),
        pre_approvals=data.get("preApprovals") or None,
        post_approvals=data.get("postApprovals") or None,
        queue=data.get("queue") or None,
        windows=tuple(data.get("windows") or ()),
        freezes=tuple(data.get("freezes") or ()),
        rollback_ignores_windows=bool(data.get("rollbackIgnoresWindows", False)),
        schedules=tuple(trigger.get("schedules") or ()),
        pre_gates=data.get("preGates") or None,
        post_gates=data.get("postGates") or None,
    )


def graph_errors(stages: list[dict[str, Any]]) -> list[FieldError]:
    """Unknown, self and cyclic `afterStages` (and `schedule` upstream) references, each named by its field."""
    names = [s.get("name") for s in stages]
    errors: list[FieldError] = []
    edges: dict[str, list[str]] = {}
    for i, stage in enumerate(stages):
        trigger = stage.get("trigger") or {}
        if trigger.get("type") not in (AFTER_STAGES, SCHEDULE):
            continue
        ups = trigger.get("stages") or []
        for j, up in enumerate(ups):
            field = f"stages[{i}].trigger.stages[{j}]"
            if up == stage.get("name"):
                errors.append(FieldError(field, f"stage '{up}' cannot wait for itself"))
            elif up not in names:
                errors.append(FieldError(field, f"unknown stage '{up}'"))
        edges[stage["name"]] = [u for u in ups if u in names and u != stage.get("name")]
    errors.extend(_cycle_errors(names, edges))
    return errors


def _cycle_errors(names: list[Any], edges: dict[str, list[str]]) -> list[FieldError]:
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    for start in edges:
        path: list[str] = []
        cycle = _visit(start, edges, state, path)
        if cycle:
            i = names.index(cycle[0])
            return [FieldError(f"stages[{i}].trigger.stages", "cycle: " + " -> ".join([*cycle, cycle[0]]))]
    return []


def _visit(node: str, edges: dict[str, list[str]], state: dict[str, int], path: list[str]) -> list[str]:
    if state.get(node) == 2:
        return []
    if state.get(node) == 1:
        return path[path.index(node):]
    state[node] = 1
    path.append(node)
    for up in edges.get(node, []):
        cycle = _visit(up, edges, state, path)
        if cycle:
            return cycle
    path.pop()
    state[node] = 2
    return []

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
ENGINE_STEPS = ("arm-deployment", "script", "run-pipeline")
PREVIEWED = ("arm-deployment",)
"""Steps whose changes are worked out (what-if) and shown to approvers before the deployment is approved."""
"""Steps that start a run on another engine, which must be stopped when the release is abandoned."""
# The step types users may write are the plugin registry's (shared/plugins.py: built-ins are entry points
# too); the tuples here only name the built-in kinds the release engine treats specially.
SWAP_TYPES = ("swap", "complete-swap")
"""Steps after which a failing post-swap check swaps back."""
SWAPS = (*SWAP_TYPES, "start-swap")
"""Steps that swap a source slot's build into another slot (a preview's start reads the source too)."""
FEEDERS = ("deploy-package", "deploy-container", "set-app-settings", "restart")
"""Steps that change what a slot runs: the stage's slot, or the one a step names (`slot`)."""
SLOT_WRITERS = (*FEEDERS, *SWAPS, "cancel-swap")
"""Steps that change a slot: their stage deploys one release at a time."""


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

    @property
    def environment(self) -> dict[str, Any]:
        """The slot this stage's release ends up in (see `environment_target`)."""
        return _environment(self.target, [s.config for s in self.steps])

    @property
    def writes_slot(self) -> bool:
        return any(s.type in SLOT_WRITERS for s in self.steps)

    @property
    def limit(self) -> int:
        """How many releases it deploys at once (0: no limit). A stage that changes its slot deploys one
        release at a time whatever its queue says: two builds deployed onto one slot at once leave
        whichever came last (each deployment's check then waits for a build that is gone), and a second
        release would overwrite the slot the first is about to swap, or swap between its swap and its
        checks. Only a stage that just looks (checks, waits) runs releases side by side."""
        return 1 if self.writes_slot else int((self.queue or {}).get("parallel") or 0)


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
    """Unknown, self and cyclic `afterStages` (and `schedule` and `manual` upstream) references, each named by
    its field."""
    names = [s.get("name") for s in stages]
    errors: list[FieldError] = []
    edges: dict[str, list[str]] = {}
    for i, stage in enumerate(stages):
        trigger = stage.get("trigger") or {}
        if trigger.get("type") not in (AFTER_STAGES, SCHEDULE, MANUAL):
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


def swap_warnings(data: dict[str, Any]) -> list[FieldError]:
    """What a definition's swaps are exposed to. A swap stage deploys one release at a time, but the
    stages that feed its source slot do not wait for it: when another stage deploys to the slot a
    stage swaps from, a later release's deployment there can replace the build between this release's
    approval and its swap (the swap then fails: the slot does not run the release). The safe shape:
    the swapping stage deploys to a slot it owns, then swaps it."""
    def app(target: dict[str, Any]) -> tuple[str, str, str]:
        return (str(target.get("subscriptionId", "")).lower(), str(target.get("resourceGroup", "")).lower(),
                str(target.get("site", "")).lower())

    def slot_of(name: Any) -> str:
        return str(name or "production").lower()

    writers: dict[tuple[tuple[str, str, str], str], list[str]] = {}
    for stage in data.get("stages", []):
        target = stage.get("target") or {}
        for step in stage.get("steps", []):
            if step.get("type") in FEEDERS:  # a deployment has no `slot` of its own: the stage's
                names = writers.setdefault((app(target), slot_of(step.get("slot") or target.get("slot"))), [])
                if stage["name"] not in names:
                    names.append(stage["name"])
    warnings = []
    for i, stage in enumerate(data.get("stages", [])):
        target = stage.get("target") or {}
        for j, step in enumerate(stage.get("steps", [])):
            if step.get("type") not in SWAPS:
                continue
            source = slot_of(step.get("slot") or target.get("slot"))
            others = [n for n in writers.get((app(target), source), []) if n != stage["name"]]
            if others:
                warnings.append(FieldError(
                    f"stages[{i}].steps[{j}].slot",
                    f"stage '{stage['name']}' swaps slot '{source}', which {', '.join(repr(n) for n in others)} "
                    f"also deploy{'s' if len(others) == 1 else ''} to: a later release deployed there can replace "
                    f"the build before this stage swaps it. Deploy the release to a slot this stage owns (a "
                    f"deploy-package step to it before the swap); this stage swaps one release at a time"))
        parallel = (stage.get("queue") or {}).get("parallel")
        if parallel and int(parallel) > 1 and any(s.get("type") in SLOT_WRITERS for s in stage.get("steps", [])):
            warnings.append(FieldError(f"stages[{i}].queue.parallel",
                                       f"stage '{stage['name']}' changes its slot, so it deploys one release at "
                                       f"a time: parallel {parallel} does not apply"))
    return warnings


def environment_target(stage: dict[str, Any]) -> dict[str, Any]:
    """Where a stage's release ends up: the slot its last swap swaps into (a stage that deploys to a
    staging slot of its own and swaps it into production is the production environment, and its
    gates watch production), or else the stage's own slot."""
    return _environment(stage.get("target") or {}, stage.get("steps", []))


def _environment(target: dict[str, Any], steps: Any) -> dict[str, Any]:
    out = dict(target)
    swaps = [s for s in steps if s.get("type") in SWAP_TYPES]
    if swaps:
        out.pop("slot", None)
        slot = str(swaps[-1].get("targetSlot") or "production").lower()
        if slot != "production":
            out["slot"] = slot
    return out

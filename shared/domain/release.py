"""A release and the state of each of its stages, deployments and steps.

Plain data, stored as JSON in one table row per release. The rules that change it live in
`shared/domain/transitions/`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from shared.domain.approvals import Approval
from shared.domain.gates import GateRun
from shared.domain.plan import Plan
from shared.domain.vocabulary import STEP_FINISHED, Kind, Phase, Reason, ReleaseStatus, Status, StepStatus


@dataclass
class StepRun:
    """One step of one deployment attempt.

    `run` numbers the messages sent for this step: a message whose run is not the current one
    is stale (a duplicate, or superseded by a retry) and is dropped.
    """

    index: int
    type: str
    name: str
    status: StepStatus = StepStatus.PENDING
    run: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    visible_at: str | None = None
    """When the current message becomes visible; the sweeper redelivers long after this."""
    redeliveries: int = 0
    message: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    """Durable scratch data of the step (a wait's end time, a check's deadline)."""
    claim: str | None = None
    claimed_until: str | None = None
    """The handler that holds this run of a toggling step (a swap), and until when."""


@dataclass
class Deployment:
    """One attempt to put the release on a stage."""

    attempt: int
    status: Status
    reason: Reason
    requested_by: str
    queued_at: str
    started_at: str | None = None
    finished_at: str | None = None
    failure: str | None = None
    steps: list[StepRun] = field(default_factory=list)
    phase: Phase = Phase.STEPS
    """Where an in-progress (or queued) deployment stands."""
    approvals: dict[Kind, Approval] = field(default_factory=dict)
    """The deployment's approvals by kind (pre, post)."""
    break_glass: str | None = None
    """An admin's reason to deploy outside the stage's windows and freezes."""
    opens_at: str | None = None
    """While waiting for a deployment window: when it opens, and why it waits."""
    waits_for: str | None = None
    not_before: str | None = None
    """Whoever asked for the deployment set the earliest time its steps may run."""
    gates: dict[Kind, GateRun] = field(default_factory=dict)
    """The deployment's gates by kind (pre, post), with their samples."""
    variables: dict[str, str] = field(default_factory=dict)
    """The definition's variables as this attempt resolved them when it started (secrets as ***), for
    readers: what a deployment ran with."""
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each infrastructure step (by its index) would change, computed while the deployment waited for
    its pre-deployment approval: {"changes": [lines], "at": time} or {"error": why, "at": time}."""

    def step(self, index: int) -> StepRun | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None


def deferred_until(dep: Deployment) -> str | None:
    """The one deferral of a deployment: the later of its `notBefore` and an approver's defer."""
    pre = dep.approvals.get(Kind.PRE)
    times = [t for t in (dep.not_before, pre.deferred_until if pre else None) if t]
    return max(times, key=datetime.fromisoformat) if times else None


@dataclass
class StageRun:
    name: str
    status: Status = Status.NOT_STARTED
    deployments: list[Deployment] = field(default_factory=list)

    @property
    def current(self) -> Deployment | None:
        return self.deployments[-1] if self.deployments else None


@dataclass
class Release:
    id: int
    definition_id: str
    revision: int
    name: str
    created_at: str
    created_by: str
    reason: str
    description: str
    artifacts: list[dict[str, Any]]
    definition: dict[str, Any]
    """The definition revision this release was created from, as it was then."""
    stages: dict[str, StageRun]
    status: ReleaseStatus = ReleaseStatus.ACTIVE
    debug: bool = False
    """Steps write verbose logs (what each step was given, what it saw)."""
    variables: dict[str, str] = field(default_factory=dict)
    """Values given at creation for the definition's variables that allow it (`allowOverride`)."""
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The variables of the groups the definition links, as they were when the release was created."""
    event_seq: int = 0
    """Sequence number of the last event appended to this release's history."""

    @cached_property
    def plan(self) -> Plan:
        """Read from the definition snapshot once per object: nothing changes the snapshot."""
        return Plan.from_dict(self.definition)

    def __deepcopy__(self, memo: dict[int, Any]) -> Release:
        """A copy to decide on. The definition snapshot (and the plan made from it) is shared, not copied:
        nothing changes it after the release was created, and it is most of a release's size (copying it
        was most of the time a decision took)."""
        copied = copy.copy(self)
        for f in fields(self):
            if f.name != "definition":
                setattr(copied, f.name, copy.deepcopy(getattr(self, f.name), memo))
        return copied

    def compact(self, level: int) -> Release | None:
        """A copy with less detail, for a release too large for one table entity; None when `level`
        leaves nothing more to drop. What goes is in the release's history (its event rows):
        1. earlier attempts lose their gate samples, approval history and step scratch state;
        2. every approval keeps its last 3 history entries, every gate its last 10 samples;
        3. comments and messages are cut to 200 characters;
        4. earlier attempts keep no votes and no step messages."""
        if not 1 <= level <= 4:
            return None
        smaller = Release.from_dict(self.to_dict())
        for run in smaller.stages.values():
            for dep in run.deployments:
                current = dep is run.current
                for approval in dep.approvals.values():
                    if level >= 1 and not current:
                        approval.history = []
                    if level >= 2:
                        approval.history = approval.history[-3:]
                    if level >= 3:
                        for vote in approval.votes:
                            vote.comment = _cut(vote.comment)
                        for entry in approval.history:
                            entry["comment"] = _cut(str(entry.get("comment", "")))
                    if level >= 4 and not current:
                        approval.votes = []
                for gate in dep.gates.values():
                    if level >= 1 and not current:
                        gate.samples = []
                    if level >= 2:
                        gate.samples = gate.samples[-10:]
                for step in dep.steps:
                    if level >= 1 and not current and step.status in STEP_FINISHED | {StepStatus.SKIPPED}:
                        step.state = {}
                    if level >= 3:
                        step.message = _cut(step.message)
                    if level >= 4 and not current:
                        step.message = ""
                if level >= 3 and dep.failure:
                    dep.failure = _cut(dep.failure)
        return smaller

    def find_deployment(self, stage: str, attempt: int) -> Deployment | None:
        """Attempt `attempt` of a stage, or None when the release has no such attempt."""
        run = self.stages.get(stage)
        return run.deployments[attempt - 1] if run and 0 < attempt <= len(run.deployments) else None

    def find_step(self, stage: str, attempt: int, index: int) -> StepRun | None:
        """Step `index` of attempt `attempt` of a stage, or None when the release has no such step."""
        dep = self.find_deployment(stage, attempt)
        return dep.step(index) if dep else None

    def flying(self) -> list[Status]:
        """The statuses of its deployments in flight (in progress, or queued for their stage's lane): the
        sweeper looks after a release that has any, and only at its lanes when all of them are queued."""
        return [s.current.status for s in self.stages.values()
                if s.current is not None and s.current.status in (Status.IN_PROGRESS, Status.QUEUED)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the definition snapshot is the release's own (shared, as everywhere: never changed)."""
        data = asdict(replace(self, definition={}))
        data["definition"] = self.definition
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        stages = {
            name: StageRun(name=s["name"], status=Status(s["status"]),
                           deployments=[_deployment(d) for d in s["deployments"]])
            for name, s in data["stages"].items()
        }
        return cls(**{**data, "stages": stages, "status": ReleaseStatus(data.get("status", ReleaseStatus.ACTIVE))})

    @classmethod
    def new(cls, *, id: int, definition_id: str, revision: int, name: str, created_at: str, created_by: str,
            reason: str, description: str, artifacts: list[dict[str, Any]], definition: dict[str, Any],
            debug: bool = False, variables: dict[str, str] | None = None,
            groups: dict[str, dict[str, Any]] | None = None) -> Release:
        stages = {s["name"]: StageRun(s["name"]) for s in definition.get("stages", [])}
        return cls(id, definition_id, revision, name, created_at, created_by, reason, description,
                   artifacts, definition, stages, debug=debug, variables=dict(variables or {}),
                   groups=dict(groups or {}))


def _deployment(data: dict[str, Any]) -> Deployment:
    """A stored deployment, its words read back as their types (the stored strings are unchanged)."""
    return Deployment(**{
        **data, "status": Status(data["status"]), "reason": Reason(data["reason"]),
        "phase": Phase(data.get("phase", Phase.STEPS)),
        "steps": [StepRun(**{**st, "status": StepStatus(st["status"])}) for st in data["steps"]],
        "approvals": {Kind(k): Approval.from_dict(a) for k, a in data.get("approvals", {}).items()},
        "gates": {Kind(k): GateRun.from_dict(g) for k, g in data.get("gates", {}).items()}})


def _cut(text: str, size: int = 200) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"

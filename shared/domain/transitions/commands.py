"""What can happen to a release: one command each, from a person (HTTP), a queue message or a timer.

Commands that arrive from queues are safe to repeat: a stale or duplicate one decides nothing.
Commands from people that do not fit the current state raise `Conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain import gates
from shared.domain.access import Principal
from shared.domain.vocabulary import Choice, Kind, Reason

# ---- starting and stopping


@dataclass(frozen=True)
class StartRelease:
    """Fire the stages whose trigger is `afterRelease` (right after creation)."""


@dataclass(frozen=True)
class DeployStage:
    """Deploy a stage now, whatever its trigger: a manual deployment, a redeploy, a rollback (an
    earlier release deployed again), or a schedule's occurrence."""

    stage: str
    by: str
    reason: Reason | None = None
    """None: manual for a first deployment, redeploy for a later one."""
    break_glass: str | None = None
    """An admin deploys outside the windows and freezes, with this reason (audited). It holds for this
    deployment only, never for the stages it triggers."""
    admin: bool = False
    not_before: str | None = None
    """Run the steps no earlier than this (approvals are asked now): the same deferral an approver sets."""
    groups: dict[str, dict[str, Any]] | None = field(default=None, hash=False, compare=False)
    """The linked variable groups read again: the release keeps these values from now on."""
    override: str | None = None
    """An admin deploys a manual stage before the release passed the stages it requires, with this reason
    (audited as an event)."""


@dataclass(frozen=True)
class Abandon:
    by: str
    comment: str = ""


# ---- steps


@dataclass(frozen=True)
class StepCallback:
    """A service called by an http-request step posted its result to the step's single-use URL."""

    stage: str
    attempt: int
    step: int
    token_hash: str
    succeeded: bool
    message: str
    outputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RecordPreview:
    """What an infrastructure step would change (ARM what-if), for its approvers; the first one recorded stays."""

    stage: str
    attempt: int
    step: int
    changes: tuple[str, ...]
    error: str = ""


@dataclass(frozen=True)
class Intervene:
    """A person resumes or rejects a manual-intervention step that waits for them."""

    stage: str
    attempt: int
    step: int
    who: Principal
    resume: bool
    comment: str = ""


@dataclass(frozen=True)
class ClaimStep:
    """A step handler takes the run of a step before acting, so that a copy of its message (sent
    twice, or delivered at once to two hosts) finds it taken and does nothing. The same command,
    with the same token, renews the claim (the heartbeat) and records an `intent`: what the step is
    about to do to the world, and how the world looked, before it does it."""

    stage: str
    attempt: int
    step: int
    run: int
    token: str
    lease_seconds: float = 30.0
    intent: dict[str, Any] | None = None


@dataclass(frozen=True)
class CompleteStep:
    stage: str
    attempt: int
    step: int
    run: int
    succeeded: bool
    message: str = ""
    slots: tuple[dict[str, Any], ...] = ()
    """What the step left in which slot: {"slot": resource id, "releaseId", "version", "how"}."""
    state: dict[str, Any] = field(default_factory=dict)
    """The step's scratch data to keep (a swap remembers what the target ran before)."""


@dataclass(frozen=True)
class DeferStep:
    """Run the step again after `delay_seconds` (a check not yet passing, a wait, a throttled call)."""

    stage: str
    attempt: int
    step: int
    run: int
    delay_seconds: float
    message: str = ""
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FailStep:
    """A step's message was poisoned or its run can no longer go on: fail it with the reason."""

    stage: str
    attempt: int
    step: int
    reason: str


@dataclass(frozen=True)
class Sweep:
    """Redeliver step messages that stayed unanswered past their lease; fail them after
    `max_redeliveries`; wake deployments whose timer was lost."""

    lease_seconds: float
    max_redeliveries: int


# ---- approvals


@dataclass(frozen=True)
class CastVote:
    """An approver's (or, with `override`, an admin's) vote on a pending approval."""

    stage: str
    attempt: int
    kind: Kind
    who: Principal
    choice: Choice
    comment: str = ""
    override: bool = False


@dataclass(frozen=True)
class Defer:
    """An approver defers the deployment: it starts no earlier than `until` once approved."""

    stage: str
    attempt: int
    who: Principal
    until: str
    comment: str = ""


@dataclass(frozen=True)
class Reassign:
    stage: str
    attempt: int
    kind: Kind
    who: Principal
    to: str
    comment: str = ""


# ---- gates


@dataclass(frozen=True)
class GateClaim:
    """An evaluation takes sample `seq` of a gate before calling the providers (once per sample)."""

    stage: str
    attempt: int
    kind: Kind
    seq: int
    token: str


@dataclass(frozen=True)
class GateSample:
    """What the providers answered for the sample the evaluation holds."""

    stage: str
    attempt: int
    kind: Kind
    seq: int
    token: str
    readings: tuple[gates.Reading, ...]


@dataclass(frozen=True)
class IgnoreGate:
    """An admin lets the deployment past a running gate, with a comment (audited)."""

    stage: str
    kind: Kind
    who: Principal
    comment: str


# ---- time and lanes


@dataclass(frozen=True)
class Wake:
    """A durable timer fired: an approval or gate may have timed out, a window opened, a deferral ended."""

    stage: str
    attempt: int


@dataclass(frozen=True)
class LaneGrant:
    """The stage's lane has room for this release now: its queued deployment goes ahead."""

    stage: str


@dataclass(frozen=True)
class LaneSkip:
    """A newer release took this queued deployment's place (policy `latest`)."""

    stage: str
    newer: int


Command = (StartRelease | DeployStage | Abandon | Intervene | StepCallback | RecordPreview | ClaimStep | CompleteStep
           | DeferStep | FailStep | Sweep | CastVote | Defer | Reassign | GateClaim | GateSample | IgnoreGate | Wake
           | LaneGrant | LaneSkip)

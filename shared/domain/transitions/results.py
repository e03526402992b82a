"""What a decision returns: the new release, the events to append to its history, and the effects
to carry out once that is stored (messages to send, timers to arm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.lanes import Lane
from shared.domain.release import Release
from shared.domain.vocabulary import EventType, Kind


@dataclass(frozen=True)
class Event:
    type: EventType
    at: str
    stage: str | None = None
    attempt: int | None = None
    step: int | None = None
    message: str = ""
    by: str | None = None


@dataclass(frozen=True)
class EnqueueStep:
    """Send the message that runs one step, visible after `delay_seconds`."""

    stage: str
    attempt: int
    step: int
    run: int
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class StopStep:
    """Stop what an engine runs for a step that was canceled while it ran (its run, execution, deployment)."""

    stage: str
    attempt: int
    step: int


@dataclass(frozen=True)
class PreviewSteps:
    """Work out what the deployment's infrastructure steps would change (ARM what-if), for its approvers."""

    stage: str
    attempt: int


@dataclass(frozen=True)
class EnqueueGate:
    """Send the message that takes sample `seq` of a gate, visible after `delay_seconds`."""

    stage: str
    attempt: int
    kind: Kind
    seq: int
    delay_seconds: float = 0.0
    token: str = ""
    """The claim the change that sends it took on the sample for it (empty: the handler claims it first)."""


@dataclass(frozen=True)
class ArmTimer:
    """Wake the deployment at `due` (an approval's or gate's timeout, a window's opening, a deferral's end)."""

    stage: str
    attempt: int
    due: str


@dataclass(frozen=True)
class LaneMessage:
    """Tell another release of the same definition that the lane granted or skipped its deployment."""

    release_id: int
    stage: str
    grant: bool
    """True: its turn came; False: a newer release took its place (policy `latest`)."""


Effect = EnqueueStep | EnqueueGate | ArmTimer | LaneMessage | StopStep | PreviewSteps


@dataclass
class Decision:
    release: Release
    events: list[Event] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    lanes: dict[str, Lane] = field(default_factory=dict)
    """Lanes this decision changed, to write with it (ETag-guarded)."""
    slots: list[dict[str, Any]] = field(default_factory=list)
    """Slot contents to record (what runs where), from the steps this decision accepted."""
    touched: bool = False
    """A change that tells no one (a gate sample or a step run claimed): still written."""

    @property
    def changed(self) -> bool:
        return bool(self.events or self.effects or self.touched)

"""Every message Slipway puts on a queue: one dataclass each, with the queue it travels on and its
codec. The bodies are the stored JSON shapes of earlier versions (a message in flight during an
upgrade still decodes). Messages carry ids only, never the state they are about: the handler reads
the release and drops a message that is stale.

What reacts to each message is registered in `shared/bootstrap.py` (`REACTIONS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from shared.config import EVENTS_QUEUE, GATES_QUEUE, MAIL_QUEUE, STEPS_QUEUE
from shared.domain.vocabulary import EventType, Kind


class MessageKind(StrEnum):
    """The `kind` field that tells messages sharing a queue apart."""

    STEP = "step"
    """Run one step of a deployment (the steps queue; stored without a kind)."""
    PREVIEW = "preview"
    """Work out what a deployment's infrastructure steps would change, for its approvers (the steps queue)."""
    STOP = "stop"
    """Stop what an engine runs for a step the release no longer wants (the steps queue)."""
    GATE = "gate"
    """Take one sample of a gate (the gates queue)."""
    WAKE = "wake"
    """A durable timer: wake a deployment at its due time (the events queue)."""
    LANE = "lane"
    """Another release granted or skipped our turn in a stage's lane (the events queue)."""
    SCHEDULES = "schedules"
    """Put a definition's schedules in the due index after it changed (the events queue)."""
    ASK = "ask"
    """Mail one approver a personal link to an approval (the mail queue)."""
    INTERVENE = "intervene"
    """Mail one assignee a personal link to a manual intervention (the mail queue)."""
    TELL = "tell"
    """Mail one person that a deployment was rejected or failed (the mail queue)."""


@dataclass(frozen=True)
class RunStep:
    queue: ClassVar[str] = STEPS_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    step: int
    run: int

    def body(self) -> dict[str, Any]:
        return {"definitionId": self.definition_id, "releaseId": self.release_id, "stage": self.stage,
                "attempt": self.attempt, "step": self.step, "run": self.run}

    @classmethod
    def load(cls, d: dict[str, Any]) -> RunStep:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]),
                   int(d["step"]), int(d["run"]))


@dataclass(frozen=True)
class PreviewStage:
    queue: ClassVar[str] = STEPS_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.PREVIEW, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt}

    @classmethod
    def load(cls, d: dict[str, Any]) -> PreviewStage:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]))


@dataclass(frozen=True)
class StopStepRun:
    queue: ClassVar[str] = STEPS_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    step: int

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.STOP, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "step": self.step}

    @classmethod
    def load(cls, d: dict[str, Any]) -> StopStepRun:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]), int(d["step"]))


@dataclass(frozen=True)
class TakeSample:
    queue: ClassVar[str] = GATES_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    gate: Kind
    seq: int
    token: str = ""
    """The claim the sample was taken for when this message was sent (none: the handler claims it)."""

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.GATE, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "gate": self.gate, "seq": self.seq,
                **({"token": self.token} if self.token else {})}

    @classmethod
    def load(cls, d: dict[str, Any]) -> TakeSample:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]),
                   Kind(d["gate"]), int(d["seq"]), str(d.get("token") or ""))


@dataclass(frozen=True)
class WakeUp:
    queue: ClassVar[str] = EVENTS_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    due: str

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.WAKE, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "due": self.due}

    @classmethod
    def load(cls, d: dict[str, Any]) -> WakeUp:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]), str(d["due"]))


@dataclass(frozen=True)
class LaneTurn:
    queue: ClassVar[str] = EVENTS_QUEUE
    definition_id: int
    release_id: int
    stage: str
    grant: bool
    """True: its turn came; False: a newer release took its place."""
    sender: int
    """The release whose change sent it."""

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.LANE, "action": "grant" if self.grant else "skip",
                "definitionId": self.definition_id, "releaseId": self.release_id, "stage": self.stage,
                "from": self.sender}

    @classmethod
    def load(cls, d: dict[str, Any]) -> LaneTurn:
        if d["action"] not in ("grant", "skip"):
            raise ValueError("action")
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), d["action"] == "grant",
                   int(d["from"]))


@dataclass(frozen=True)
class RegisterSchedules:
    queue: ClassVar[str] = EVENTS_QUEUE
    definition_id: int

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.SCHEDULES, "definitionId": self.definition_id}

    @classmethod
    def load(cls, d: dict[str, Any]) -> RegisterSchedules:
        return cls(int(d["definitionId"]))


@dataclass(frozen=True)
class AskApproval:
    """One approver's mail: each has its own message, so one bad address fails alone (and, after the
    queue's last delivery, lands in the poison queue instead of mailing everyone again)."""

    queue: ClassVar[str] = MAIL_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    approval: Kind
    to: str
    key: str = ""
    """This mail's own id (its outbox item's): the mail marks an address mailed under it, so the sweeper
    sending the item again after a crash mails nobody twice."""

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.ASK, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "approval": self.approval, "to": self.to,
                **({"key": self.key} if self.key else {})}

    @classmethod
    def load(cls, d: dict[str, Any]) -> AskApproval:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]),
                   Kind(d["approval"]), str(d["to"]), str(d.get("key", "")))


@dataclass(frozen=True)
class AskIntervention:
    """One assignee's mail about a manual intervention that waits for them."""

    queue: ClassVar[str] = MAIL_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    step: int
    to: str
    key: str = ""
    """As `AskApproval.key`."""

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.INTERVENE, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "step": self.step, "to": self.to,
                **({"key": self.key} if self.key else {})}

    @classmethod
    def load(cls, d: dict[str, Any]) -> AskIntervention:
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]), int(d["step"]),
                   str(d["to"]), str(d.get("key", "")))


@dataclass(frozen=True)
class TellOutcome:
    """One person's mail that a deployment was rejected or failed."""

    queue: ClassVar[str] = MAIL_QUEUE
    definition_id: int
    release_id: int
    stage: str
    attempt: int
    event: EventType
    to: str
    key: str = ""
    """As `AskApproval.key`."""

    def body(self) -> dict[str, Any]:
        return {"kind": MessageKind.TELL, "definitionId": self.definition_id, "releaseId": self.release_id,
                "stage": self.stage, "attempt": self.attempt, "event": self.event, "to": self.to,
                **({"key": self.key} if self.key else {})}

    @classmethod
    def load(cls, d: dict[str, Any]) -> TellOutcome:
        event = EventType(d["event"])
        if event not in (EventType.DEPLOYMENT_REJECTED, EventType.DEPLOYMENT_FAILED):
            raise ValueError("event")
        return cls(int(d["definitionId"]), int(d["releaseId"]), str(d["stage"]), int(d["attempt"]), event,
                   str(d["to"]), str(d.get("key", "")))


Message = (RunStep | StopStepRun | PreviewStage | TakeSample | WakeUp | LaneTurn | RegisterSchedules | AskApproval
           | AskIntervention | TellOutcome)

_BY_KIND: dict[str, dict[MessageKind, type[Message]]] = {
    STEPS_QUEUE: {MessageKind.STEP: RunStep, MessageKind.STOP: StopStepRun, MessageKind.PREVIEW: PreviewStage},
    GATES_QUEUE: {MessageKind.GATE: TakeSample},
    EVENTS_QUEUE: {MessageKind.WAKE: WakeUp, MessageKind.LANE: LaneTurn, MessageKind.SCHEDULES: RegisterSchedules},
    MAIL_QUEUE: {MessageKind.ASK: AskApproval, MessageKind.INTERVENE: AskIntervention, MessageKind.TELL: TellOutcome},
}
_DEFAULT_KIND = {STEPS_QUEUE: MessageKind.STEP, EVENTS_QUEUE: MessageKind.WAKE}
"""Kinds stored without a `kind` field: step messages never had one, early timers neither."""


def encode(message: Message) -> str:
    return json.dumps(message.body(), separators=(",", ":"))


def decode(queue: str, text: str) -> Message | None:
    """The message a body on `queue` holds; None when it is not one of ours (the caller drops it)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            return None
        home = queue.removesuffix("-poison")
        cls = _BY_KIND.get(home, {}).get(MessageKind(str(data.get("kind", _DEFAULT_KIND.get(home)))))
        return cls.load(data) if cls is not None else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None

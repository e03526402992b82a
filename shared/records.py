"""What the services read from and write to durable storage, independent of Table Storage.

One `Changes` is one atomic write to one definition's partition: the definition head and its
new revision, a release, the events it appended, the outbox items to send, an idempotency key.
The store applies it all or nothing, each existing row guarded by the ETag it was read with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple, Protocol

from shared.domain.approvals import Approval
from shared.domain.keys import key_hash
from shared.domain.release import Deployment, Release
from shared.domain.transitions.results import Event


class ConcurrentChange(Exception):
    """Someone else changed a row since we read it (412), or created it first (409). Re-read and retry."""

    def __init__(self, message: str = "", *, existed: bool = True) -> None:
        super().__init__(message)
        self.existed = existed
        """A row the change creates may exist already (a 409, or not known): an idempotency key's row among
        them, so the caller looks for what the other writer did with it. False: only an ETag was stale (412)."""


@dataclass
class Head:
    """The definition's current state: its name, latest revision and release counter."""

    id: int
    name: str
    revision: int
    release_counter: int = 0
    deleted: bool = False
    created_at: str = ""
    updated_at: str = ""
    deleted_by: str = ""
    """Who deleted the definition (its history stays readable)."""
    etag: str | None = None
    """None for a head not stored yet."""


class OutboxKind(StrEnum):
    """What an outbox item does once its change committed."""

    QUEUE = "queue"
    """Send `body` to `queue`, visible after `delay` seconds."""
    INDEX = "index"
    """Write a `Summary` into a list across definitions."""
    NOTIFY = "notify"
    """Left by earlier versions: a mail to send; sent now as the mail queue's messages."""
    SCHEDULE = "schedule"
    """Left by earlier versions: a schedule registration; sent now as its message."""


@dataclass(frozen=True)
class OutboxItem:
    """A message to send (or an index row to write) once the transaction that made it commits."""

    id: str
    release_id: int
    kind: OutboxKind
    body: str
    created_at: str
    queue: str = ""
    delay: float = 0.0
    row: str = ""
    """The store's key of the row that holds it: items of one change share a row. The store sets it
    when it commits or reads the item."""
    row_items: int = 0
    """How many items that row holds: deleting them all deletes the row without reading it."""
    rowless: bool = False
    """Sent after the commit with no row of its own: a message whose loss the release's own state shows the
    sweeper (a step's or a gate sample's nobody took, a lane turn not given), which sends it again from there.
    A row would only cost its deletion after every send."""


ListName = Literal["definitions", "releases", "approvals"]


@dataclass(frozen=True)
class Summary:
    """One entry of a list across definitions (the definitions, the releases, the approvals
    inbox). Written from the outbox once the change that made it committed, so a list may lag its
    partition for a moment; the partition stays the truth."""

    list: ListName
    fields: dict[str, Any]

    @classmethod
    def of_definition(cls, head: Head) -> Summary:
        return cls("definitions", {"id": head.id, "name": head.name, "revision": head.revision,
                                   "deleted": head.deleted, "updatedAt": head.updated_at})

    @classmethod
    def of_release(cls, release: Release) -> Summary:
        return cls("releases", {"id": release.id, "definitionId": int(release.definition_id), "name": release.name,
                                "status": str(release.status), "createdAt": release.created_at,
                                "createdBy": release.created_by})

    @classmethod
    def of_approval(cls, release: Release, stage: str, dep: Deployment, kind: str, approval: Approval) -> Summary:
        return cls("approvals", {"releaseId": release.id, "releaseName": release.name,
                                 "definitionId": int(release.definition_id), "stage": stage, "attempt": dep.attempt,
                                 "kind": str(kind), "status": str(approval.status),
                                 "approvers": list(approval.approvers), "requestedAt": approval.requested_at,
                                 "deadline": approval.deadline, "requestedBy": dep.requested_by})

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes the entry one (a later summary of it replaces it), in the list's order:
        definitions by id, releases and approvals newest release first."""
        f = self.fields
        if self.list == "definitions":
            return (int(f["id"]),)
        if self.list == "releases":
            return self.release_identity(int(f["id"]))
        return (-int(f["releaseId"]), key_hash(str(f["stage"]))[:16], int(f["attempt"]), str(f["kind"]))

    @staticmethod
    def release_identity(release_id: int) -> tuple[Any, ...]:
        return (-release_id,)

    def to_json(self) -> str:
        return json.dumps({"list": self.list, "fields": self.fields}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Summary:
        """Also reads what earlier versions left in an outbox: the index table's row itself."""
        data = json.loads(text)
        if "PartitionKey" in data:
            fields = {k: v for k, v in data.items() if k not in ("PartitionKey", "RowKey")}
            if isinstance(fields.get("approvers"), str):
                fields["approvers"] = fields["approvers"].split("\n")
            return cls(data["PartitionKey"], fields)
        return cls(data["list"], data["fields"])


class InFlight(NamedTuple):
    """A release the sweeper looks after. `queued_only`: every deployment of it in flight waits for its
    stage's lane (nothing of its own can be lost but its turn, which the lane's row tells)."""

    definition_id: int
    release_id: int
    queued_only: bool = False


@dataclass(frozen=True)
class DueSchedule:
    """A schedule's next occurrence in the due index."""

    definition_id: int
    key: str
    at: str

    @property
    def name(self) -> str:
        return f"{self.definition_id:010d}|{self.key}"


@dataclass(frozen=True)
class LogPart:
    """Lines added to a step's log (one step run's, a callback's, a stop's), kept in the release's partition and
    written with the change that records them: the lines and the state they explain land together, and a step
    run costs no write of its own for its log."""

    log: str
    """The step's log: `stage key|attempt|step` (shared/services/step_logs.py)."""
    order: str
    """Where the part goes among the log's parts (they are read in this order)."""
    text: str


@dataclass
class Changes:
    definition_id: int
    head: Head | None = None
    revision: tuple[int, dict[str, Any]] | None = None
    release: Release | None = None
    release_etag: str | None = None
    """ETag the release was read with; None creates it (fails if it exists)."""
    events: list[Event] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    idempotency: tuple[str, str] | None = None
    """(key, result): insert-only, so a second request with the same key fails and reads the first result."""
    slots: list[dict[str, Any]] = field(default_factory=list)
    """What now runs in which slot (the what-runs-where records), written with the change that did it."""
    slot_etags: dict[str, str | None] = field(default_factory=dict)
    """For a slot (its resource id, lower case) named here, its record is replaced only under this ETag
    (None: created only if there is none): a record never goes back to an older reading."""
    lanes: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    """(stage, lane, ETag it was read with or None to create): the stage queues this change moved."""
    log_parts: list[LogPart] = field(default_factory=list)
    """Lines for the logs of `release`'s steps, written with the change."""


class PipelineStore(Protocol):
    """Durable state: one partition per definition, plus an index for cross-definition reads.

    `shared/adapters/table_store.py` implements it on Azure Table Storage.
    """

    # ids and reads in a definition's partition
    def next_id(self, kind: str) -> int: ...
    def head(self, definition_id: int) -> Head | None: ...
    def known_head(self, definition_id: int) -> Head | None:
        """The head as this process last read or wrote it (no read; None if it did neither): a writer's guess
        that its ETag-guarded write confirms, or refuses as stale."""
        ...
    def revision(self, definition_id: int, revision: int) -> dict[str, Any] | None: ...
    def revisions(self, definition_id: int) -> list[dict[str, Any]]: ...
    def release(self, definition_id: int, release_id: int) -> tuple[Release, str] | None: ...
    def releases(self, definition_id: int, *, cursor: dict[str, str] | None, limit: int, since: str | None = None,
                 status: str | None = None) -> tuple[list[Release], dict[str, str] | None]: ...
    def events(self, definition_id: int, release_id: int) -> list[dict[str, Any]]: ...
    def slot_records(self, definition_id: int) -> list[dict[str, Any]]: ...
    def slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]:
        """Each slot's record with its ETag, by the slot's resource id in lower case."""
        ...
    def lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]: ...
    def known_lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        """The lanes as this process last read them all, with what it wrote since (no read; None if it never read
        them): a guess the ETag-guarded write confirms, as `known_head`'s."""
        ...
    def known_slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        """`slot_versions` likewise: as this process last read them all, with what it wrote since."""
        ...
    def idempotent_result(self, definition_id: int, key: str) -> str | None: ...

    # the one write, and the outbox it leaves
    def commit(self, changes: Changes) -> str | None:
        """Write the change in one transaction; the release row's new ETag when it wrote one (the writer's
        next change of the same release needs no read)."""
        ...
    def outbox(self, definition_id: int, release_id: int | None = None) -> list[OutboxItem]: ...
    def add_log_part(self, definition_id: int, release_id: int, part: LogPart) -> None:
        """Write one log part on its own (lines of a run whose result changed nothing, a stop's lines)."""
        ...
    def log_parts(self, definition_id: int, release_id: int, log: str = "") -> list[LogPart]:
        """The parts of one step's log (`log`), or of every step of the release, in order."""
        ...
    def delete_outbox(self, definition_id: int, items: list[OutboxItem]) -> None: ...
    def claim_stale_outbox(self, older_than: datetime, now: datetime, until: datetime,
                           ) -> list[tuple[int, OutboxItem]]:
        """Outbox rows of every definition created before `older_than` that nobody holds at `now`,
        each claimed (ETag-guarded) until `until`: two sweepers never both get a row."""
        ...
    def in_flight(self) -> list[InFlight]:
        """Releases with a deployment in progress or queued for its lane, and which only wait in a lane."""
        ...

    # artifact versions and approval links (insert-only)
    def artifact(self, source: str, version: str) -> dict[str, Any] | None: ...
    def register_artifact(self, source: str, record: dict[str, Any]) -> None: ...
    def latest_artifact(self, source: str) -> dict[str, Any] | None: ...
    def create_link(self, token_hash: str, record: dict[str, Any]) -> None: ...
    def link(self, token_hash: str) -> tuple[dict[str, Any], bool, str] | None: ...
    def use_link(self, token_hash: str, etag: str) -> None: ...

    # small shared documents by kind and key (variable groups), each guarded by its ETag
    def put_document(self, kind: str, key: str, body: dict[str, Any], etag: str | None) -> str:
        """Create (`etag` None: ConcurrentChange when it exists) or replace (ConcurrentChange unless `etag`
        is still its ETag) a document; its new ETag."""
        ...

    def document(self, kind: str, key: str) -> tuple[dict[str, Any], str] | None: ...
    def documents(self, kind: str) -> list[tuple[dict[str, Any], str]]: ...
    def delete_document(self, kind: str, key: str, etag: str) -> None:
        """ConcurrentChange when it changed (or went) meanwhile."""
        ...

    # lists across definitions (derived from the partitions, may lag a moment)
    def put_summary(self, summary: Summary) -> None: ...
    def definitions_page(self, *, cursor: dict[str, str] | None, limit: int, include_deleted: bool = False,
                         ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Definitions not deleted (or every one: retention still expires a deleted one's releases), by id."""
        ...
    def releases_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                      status: str | None = None, since: str | None = None,
                      ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Release summaries, newest first."""
        ...
    def release_definition(self, release_id: int) -> int | None:
        """The definition a release belongs to."""
        ...
    def approvals_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                       status: str | None = None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Approval summaries, newest release first."""
        ...

    # schedules: their state, and the due index of their next occurrences
    def schedule_state(self, definition_id: int, key: str) -> dict[str, Any] | None: ...
    def arm_schedule(self, definition_id: int, key: str, at: datetime, state: dict[str, Any]) -> None:
        """Record the schedule's state with `nextAt` = `at`, and put it in the due index at `at`."""
        ...
    def due_schedules(self, until: datetime) -> list[DueSchedule]:
        """Due entries up to and including `until`'s minute."""
        ...
    def disarm(self, entry: DueSchedule) -> None: ...
    def drop_schedule(self, definition_id: int, key: str) -> None: ...

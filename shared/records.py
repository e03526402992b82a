"""What the services read from and write to durable storage, independent of Table Storage.

One `Changes` is one atomic write to one definition's partition: the definition head and its
new revision, a release, the events it appended, the outbox items to send, an idempotency key.
The store applies it all or nothing, each existing row guarded by the ETag it was read with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.domain.release import Release
from shared.domain.transitions.results import Event


class ConcurrentChange(Exception):
    """Someone else changed a row since we read it (412), or created it first (409). Re-read and retry."""


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
    etag: str | None = None
    """None for a head not stored yet."""


@dataclass(frozen=True)
class OutboxItem:
    """A message to send (or an index row to write) once the transaction that made it commits."""

    id: str
    release_id: int
    kind: str
    """`queue`: send `body` to `queue` after `delay` seconds; `index`: upsert `body` into the index table."""
    body: str
    created_at: str
    queue: str = ""
    delay: float = 0.0
    row: str = ""
    """The store's key of the row that holds it: items of one change share a row. The store sets it
    when it commits or reads the item."""
    row_items: int = 0
    """How many items that row holds: deleting them all deletes the row without reading it."""


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
    lanes: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    """(stage, lane, ETag it was read with or None to create): the stage queues this change moved."""


class PipelineStore(Protocol):
    """Durable state: one partition per definition, plus an index for cross-definition reads.

    `shared/adapters/table_store.py` implements it on Azure Table Storage.
    """

    # ids and reads in a definition's partition
    def next_id(self, kind: str) -> int: ...
    def head(self, definition_id: int) -> Head | None: ...
    def revision(self, definition_id: int, revision: int) -> dict[str, Any] | None: ...
    def revisions(self, definition_id: int) -> list[dict[str, Any]]: ...
    def release(self, definition_id: int, release_id: int) -> tuple[Release, str] | None: ...
    def releases(self, definition_id: int, *, cursor: dict[str, str] | None, limit: int, since: str | None = None,
                 status: str | None = None) -> tuple[list[Release], dict[str, str] | None]: ...
    def events(self, definition_id: int, release_id: int) -> list[dict[str, Any]]: ...
    def slot_records(self, definition_id: int) -> list[dict[str, Any]]: ...
    def lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]: ...
    def idempotent_result(self, definition_id: int, key: str) -> str | None: ...

    # the one write, and the outbox it leaves
    def commit(self, changes: Changes) -> None: ...
    def outbox(self, definition_id: int, release_id: int | None = None) -> list[OutboxItem]: ...
    def delete_outbox(self, definition_id: int, items: list[OutboxItem]) -> None: ...
    def stale_outbox(self, older_than: datetime) -> list[tuple[int, OutboxItem]]: ...
    def in_flight(self) -> list[tuple[int, int]]: ...

    # artifact versions and approval links (insert-only)
    def artifact(self, source: str, version: str) -> dict[str, Any] | None: ...
    def register_artifact(self, source: str, record: dict[str, Any]) -> None: ...
    def latest_artifact(self, source: str) -> dict[str, Any] | None: ...
    def create_link(self, token_hash: str, record: dict[str, Any]) -> None: ...
    def link(self, token_hash: str) -> tuple[dict[str, Any], bool, str] | None: ...
    def use_link(self, token_hash: str, etag: str) -> None: ...

    # the index (derived, may lag a moment)
    def upsert_index(self, row: dict[str, Any]) -> None: ...
    def index_row(self, partition: str, row_key: str) -> dict[str, Any] | None: ...
    def delete_index(self, partition: str, row_key: str) -> None: ...

    # the due index of schedules: one partition per UTC minute, `due|YYYYMMDDHHMM`
    def due(self, until_bucket: str) -> list[dict[str, Any]]: ...
    def index_page(self, partition: str, *, cursor: dict[str, str] | None, limit: int, extra_filter: str = "",
                   params: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, str] | None]: ...

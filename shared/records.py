"""What the services read from and write to durable storage, independent of Table Storage.

One `Changes` is one atomic write to one definition's partition: the definition head and its
new revision, a release, the events it appended, the outbox items to send, an idempotency key.
The store applies it all or nothing, each existing row guarded by the ETag it was read with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.release import Release
from shared.domain.transitions import Event


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


class PipelineStore(Protocol):
    def next_id(self, kind: str) -> int: ...
    def head(self, definition_id: int) -> Head | None: ...
    def revision(self, definition_id: int, revision: int) -> dict[str, Any] | None: ...
    def release(self, definition_id: int, release_id: int) -> tuple[Release, str] | None: ...
    def commit(self, changes: Changes) -> None: ...
    def idempotent_result(self, definition_id: int, key: str) -> str | None: ...
    def outbox(self, definition_id: int, release_id: int | None = None) -> list[OutboxItem]: ...
    def delete_outbox(self, definition_id: int, items: list[OutboxItem]) -> None: ...

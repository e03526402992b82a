"""The pipeline store on Azure Table Storage: one partition per definition.

Row keys in a definition's partition:
  `definition`                       the head (name, latest revision, release counter)
  `revision|0000000003`              a revision's body
  `release|0000000042`               a release with its stages, deployments and steps
  `event|0000000042|00000007`        the events one change appended, from sequence number 7 on
  `outbox|0000000042|<id>`           the messages one change left to send once it committed
  `idem|<sha256 of key>`             idempotency keys (insert-only)
  `deleting|0000000042`              a release retention is deleting (its row is marked too)
  `audit|<time>|<digest>`            audit records of the definition (retention's deletions, keep forever)
The index table holds cross-definition lists and counters; it may lag the partition for a moment.

Table Storage's limits shape the rows: a transaction holds at most 100 operations, so a change's
events share one row and its outbox items another (a release starting 20 approval stages at once
appends some 60 events and 60 items, and still commits in one transaction of a few rows); an
entity holds at most 1 MiB and a string property 64 KiB in UTF-16, so JSON is split over
properties of at most 32,000 UTF-16 code units (never splitting a surrogate pair), and a release
too large for one entity is compacted first (`Release.compact`).
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import asdict, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.core.paging import ItemPaged
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.adapters.storage_clients import StorageClients
from shared.domain.keys import key_hash
from shared.domain.release import Release
from shared.domain.vocabulary import Status
from shared.records import (
    Changes,
    ConcurrentChange,
    DueSchedule,
    Head,
    InFlight,
    LogPart,
    OutboxItem,
    OutboxKind,
    Summary,
)

CHUNK = 32_000
"""UTF-16 code units per property: 64,000 bytes, under the 64 KiB limit."""
MAX_BATCH = 100
SCHEDULES = "schedule"
"""The index partition of schedule states."""
MAX_ENTITY_JSON = 480_000
"""UTF-16 code units of JSON one entity may hold: under 1 MiB with its property overhead, in 16 properties."""


def pk(definition_id: int) -> str:
    return f"{definition_id:010d}"


def release_key(release_id: int) -> str:
    return f"release|{release_id:010d}"


def put_json(entity: dict[str, Any], value: Any) -> dict[str, Any]:
    return put_text(entity, "json", json_text(value))


def put_text(entity: dict[str, Any], name: str, text: str) -> dict[str, Any]:
    """`text` in properties `name0`, `name1`, … of at most CHUNK UTF-16 code units each."""
    for i, part in enumerate(utf16_chunks(text, CHUNK)):
        entity[f"{name}{i}"] = part
    return entity


def get_text(entity: dict[str, Any], name: str) -> str:
    parts, i = [], 0
    while f"{name}{i}" in entity:
        parts.append(str(entity[f"{name}{i}"]))
        i += 1
    return "".join(parts)


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_chunks(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` UTF-16 code units each (a character outside the BMP is two)."""
    if utf16_units(text) == len(text):  # no character outside the BMP: units are characters (the usual case)
        return [text[i:i + limit] for i in range(0, len(text), limit)] or [""]
    chunks, start, units = [], 0, 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > limit:
            chunks.append(text[start:i])
            start, units = i, 0
        units += width
    chunks.append(text[start:])
    return chunks


def get_json(entity: dict[str, Any]) -> Any:
    return json.loads(get_text(entity, "json"))


class _Remembered(dict[Any, Any]):
    """What this process read or wrote, kept for its next reads: at most `size` entries, the oldest forgotten
    first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self.size:
            self.pop(next(iter(self)), None)


class TableStore:
    def __init__(self, clients: StorageClients, table_name: str) -> None:
        self.clients = clients
        self.table_name = table_name
        self._revisions = _Remembered(512)
        """(definition id, revision) -> the body's JSON text: a revision row is inserted once and never rewritten."""
        self._counting = threading.Lock()
        self._counters: dict[str, tuple[int, str]] = {}
        """id kind -> the counter's value and ETag as this process last wrote or read them (see `next_id`)."""
        self._remembering = threading.Lock()
        self._lanes = _Remembered(512)
        """definition id -> its stage lanes with their ETags, as this process last read them all and wrote some since:
        a hint as `_heads` is (see `known_lanes`)."""
        self._slots = _Remembered(512)
        """definition id -> its slot records with their ETags, likewise (see `known_slot_versions`)."""
        self._heads = _Remembered(512)
        """definition id -> its head as this process last read or wrote it: a hint for a writer whose ETag-guarded
        write finds out whether it still holds (see `known_head`)."""
        self._definition_of = _Remembered(4096)
        """release id -> its definition's id: ids are never reused, a release never moves (a deleted one reads as
        missing from its own row)."""

    def _table(self, name: str) -> TableClient:
        client = self.clients.tables.get_table_client(name)
        try:
            client.create_table()
        except ResourceExistsError:
            pass
        return client

    @cached_property
    def table(self) -> TableClient:
        return self._table(self.table_name)

    @cached_property
    def index(self) -> TableClient:
        return self._table(f"{self.table_name}Index")

    # -- ids

    def next_id(self, kind: str) -> int:
        """A new integer id from an ETag-guarded counter row; ids are never reused. The process's own callers take
        turns, each starting from the value and ETag the one before wrote (one write, no read); another instance's
        write meanwhile makes that a 412, and the row is read again."""
        with self._counting:
            known = self._counters.get(kind)
            while True:
                if known is None:
                    try:
                        row = self.index.get_entity("counters", kind)
                        known = (int(row["value"]), str(row.metadata["etag"]))
                    except ResourceNotFoundError:
                        try:
                            answer = self.index.create_entity({"PartitionKey": "counters", "RowKey": kind, "value": 1})
                        except ResourceExistsError:
                            continue
                        self._counters[kind] = (1, str(answer["etag"]))
                        return 1
                value = known[0] + 1
                try:
                    answer = self.index.update_entity({"PartitionKey": "counters", "RowKey": kind, "value": value},
                                                      mode=UpdateMode.REPLACE, etag=known[1],
                                                      match_condition=MatchConditions.IfNotModified)
                except ResourceModifiedError:
                    known = None
                    continue
                self._counters[kind] = (value, str(answer["etag"]))
                return value

    # -- reads

    def head(self, definition_id: int) -> Head | None:
        try:
            row = self.table.get_entity(pk(definition_id), "definition")
        except ResourceNotFoundError:
            return None
        head = Head(id=definition_id, name=row["name"], revision=row["revision"],
                    release_counter=row.get("releaseCounter", 0), deleted=row.get("deleted", False),
                    created_at=row.get("createdAt", ""), updated_at=row.get("updatedAt", ""),
                    deleted_by=row.get("deletedBy", ""), etag=_etag(row))
        self._heads.keep(definition_id, replace(head))
        return head

    def known_head(self, definition_id: int) -> Head | None:
        remembered = self._heads.get(definition_id)
        return replace(remembered) if remembered is not None else None

    def revision(self, definition_id: int, revision: int) -> dict[str, Any] | None:
        text = self._revisions.get((definition_id, revision))
        if text is None:
            try:
                text = get_text(self.table.get_entity(pk(definition_id), f"revision|{revision:010d}"), "json")
            except ResourceNotFoundError:
                return None
            self._revisions.keep((definition_id, revision), text)
        body: dict[str, Any] = json.loads(text)  # a copy of its own for every reader
        return body

    def revisions(self, definition_id: int) -> list[dict[str, Any]]:
        rows = self._range(pk(definition_id), "revision|")
        return [{"revision": int(r["RowKey"].split("|")[1]), "createdAt": r.get("createdAt"),
                 "createdBy": r.get("createdBy")} for r in rows]

    def release(self, definition_id: int, release_id: int) -> tuple[Release, str] | None:
        try:
            row = self.table.get_entity(pk(definition_id), release_key(release_id))
        except ResourceNotFoundError:
            return None
        if row.get("deleting"):
            return None  # retention is deleting it: gone for every reader
        return Release.from_dict(get_json(row)), _etag(row)

    def releases(self, definition_id: int, *, cursor: dict[str, str] | None, limit: int,
                 since: str | None = None, status: str | None = None) -> tuple[list[Release], dict[str, str] | None]:
        """Newest first is not possible within a partition scan; releases come oldest first."""
        flt = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params: dict[str, Any] = {"pk": pk(definition_id), "lo": "release|", "hi": "release}"}
        if since:
            flt += " and createdAt ge @since"
            params["since"] = since
        if status:
            flt += " and status eq @status"
            params["status"] = status
        rows, token = _page(self.table.query_entities(flt, parameters=params, results_per_page=limit), cursor)
        return [Release.from_dict(get_json(r)) for r in rows if not r.get("deleting")], token

    def events(self, definition_id: int, release_id: int) -> list[dict[str, Any]]:
        out = []
        for row in self._range(pk(definition_id), f"event|{release_id:010d}|"):
            first, data = int(row["RowKey"].rsplit("|", 1)[1]), get_json(row)
            for offset, event in enumerate(data if isinstance(data, list) else [data]):
                out.append({"seq": first + offset, **event})
        return out

    def lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]:
        """Each stage lane of the definition, with its ETag."""
        out = {}
        for row in self._range(pk(definition_id), "lane|"):
            data = get_json(row)
            out[data["stage"]] = (data, _etag(row))
        self._lanes.keep(definition_id, copy.deepcopy(out))
        return out

    def known_lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        remembered = self._lanes.get(definition_id)
        return copy.deepcopy(remembered) if remembered is not None else None

    def slot_records(self, definition_id: int) -> list[dict[str, Any]]:
        """What Slipway last put in each slot this definition deploys to."""
        return [get_json(r) for r in self._range(pk(definition_id), "slot|")]

    def slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]:
        found = {}
        for row in self._range(pk(definition_id), "slot|"):
            record = get_json(row)
            found[str(record["slot"]).lower()] = (record, _etag(row))
        self._slots.keep(definition_id, copy.deepcopy(found))
        return found

    def known_slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        remembered = self._slots.get(definition_id)
        return copy.deepcopy(remembered) if remembered is not None else None

    def idempotent_result(self, definition_id: int, key: str) -> str | None:
        try:
            return str(self.table.get_entity(pk(definition_id), f"idem|{key_hash(key)}")["result"])
        except ResourceNotFoundError:
            return None

    def outbox(self, definition_id: int, release_id: int | None = None) -> list[OutboxItem]:
        prefix = "outbox|" if release_id is None else f"outbox|{release_id:010d}|"
        return [item for r in self._range(pk(definition_id), prefix) for item in _outbox_items(r)]

    def claim_stale_outbox(self, older_than: datetime, now: datetime, until: datetime,
                           ) -> list[tuple[int, OutboxItem]]:
        """A scan (the sweeper's job); each row is claimed with a merge under the ETag it was read with."""
        rows = self.table.query_entities("RowKey ge @lo and RowKey lt @hi and createdAt lt @t",
                                         parameters={"lo": "outbox|", "hi": "outbox}", "t": older_than.isoformat()})
        won = []
        for row in rows:
            if str(row.get("claimedUntil", "")) > now.isoformat():
                continue
            try:
                self.table.update_entity({"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"],
                                          "claimedUntil": until.isoformat()}, mode=UpdateMode.MERGE,
                                         etag=_etag(row), match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another sweeper has it, or its handler sent it meanwhile
            won += [(int(row["PartitionKey"]), item) for item in _outbox_items(row)]
        return won

    def in_flight(self) -> list[InFlight]:
        """Releases with a deployment in progress or queued (a scan: the sweeper's job). Rows written before
        `queuedOnly` was recorded count as not only queued (the sweeper reads them, as it did)."""
        rows = self.table.query_entities("RowKey ge @lo and RowKey lt @hi and inFlight eq true",
                                         parameters={"lo": "release|", "hi": "release}"},
                                         select=["PartitionKey", "RowKey", "queuedOnly"])
        return [InFlight(int(r["PartitionKey"]), int(r["RowKey"].split("|")[1]), bool(r.get("queuedOnly")))
                for r in rows]

    def _range(self, partition: str, prefix: str, select: list[str] | None = None) -> list[TableEntity]:
        hi = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return list(self.table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                              parameters={"pk": partition, "lo": prefix, "hi": hi}, select=select))

    # -- the one write

    def commit(self, changes: Changes) -> str | None:
        ops = self._operations(changes)
        if len(ops) > MAX_BATCH:
            raise ValueError(f"one change writes {len(ops)} rows; a transaction holds at most {MAX_BATCH}")
        try:
            if len(ops) == 1:  # a claim or a heartbeat: one row needs no transaction (nor its multipart body)
                etag = self._write_one(ops[0])
                self._remember(changes, ops, [etag])
                return etag if changes.release is not None else None
            try:
                answers = self.table.submit_transaction(ops)
            except TableTransactionError as exc:
                if exc.status_code in (404, 409, 412):  # 404: a row updated under its ETag is gone
                    raise ConcurrentChange(str(exc.message), existed=exc.status_code == 409) from None
                raise
        except ConcurrentChange:
            self._forget(changes.definition_id)
            raise
        self._remember(changes, ops, [a.get("etag") for a in answers])
        if changes.release is None:
            return None
        # The change set's answers follow its operations (OData batch, as azure-data-tables' submit_transaction
        # returns them); the release row follows the head and revision rows. A wrong ETag here would only make
        # the next write a 412 that reads again.
        at = (changes.head is not None) + (changes.revision is not None)
        etag = answers[at].get("etag") if at < len(answers) else None
        return str(etag) if etag else None

    def _write_one(self, op: tuple[Any, ...]) -> str | None:
        """One guarded create or replace, as its transaction would have done it; its new ETag."""
        kind, row = op[0], op[1]
        try:
            if kind == "create":
                answer = self.table.create_entity(row)
            elif kind == "update":
                answer = self.table.update_entity(row, **op[2])
            else:
                answer = self.table.upsert_entity(row, **(op[2] if len(op) > 2 else {}))  # as the batch: MERGE
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentChange(str(exc.message), existed=isinstance(exc, ResourceExistsError)) from None
        etag = answer.get("etag")
        return str(etag) if etag else None

    def _remember(self, changes: Changes, ops: list[Any], etags: list[Any]) -> None:
        """What the change wrote that the process's next writers start from (see `known_head`, `known_lanes`,
        `known_slot_versions`): each row with the ETag its write answered (the answers follow the operations)."""
        did = changes.definition_id
        if changes.revision is not None:  # as a read would find it (the creator of a release reads it next)
            self._revisions.keep((did, changes.revision[0]), json_text(changes.revision[1]))
        with self._remembering:
            self._remember_rows(changes, ops, etags)

    def _remember_rows(self, changes: Changes, ops: list[Any], etags: list[Any]) -> None:
        did = changes.definition_id
        lanes, slots = dict(self._lanes.get(did) or {}), dict(self._slots.get(did) or {})
        for op, etag in zip(ops, etags, strict=False):
            key = str(op[1]["RowKey"])
            if not etag:
                continue
            if key == "definition" and changes.head is not None:
                self._heads.keep(did, replace(changes.head, etag=str(etag)))
            elif key.startswith("lane|"):
                data = get_json(op[1])
                lanes[data["stage"]] = (data, str(etag))
            elif key.startswith("slot|"):
                record = get_json(op[1])
                slots[str(record["slot"]).lower()] = (record, str(etag))
        if changes.lanes and did in self._lanes:  # only a view that began with a read of them all
            self._lanes.keep(did, lanes)
        if changes.slots and did in self._slots:
            self._slots.keep(did, slots)

    def _forget(self, definition_id: int) -> None:
        """A write found a row changed or gone: what this process remembers of the definition's rows may be stale."""
        with self._remembering:
            for remembered in (self._heads, self._lanes, self._slots):
                remembered.pop(definition_id, None)

    def _operations(self, c: Changes) -> list[Any]:
        part = pk(c.definition_id)
        ops: list[Any] = []
        if c.head is not None:
            h = c.head
            row = {"PartitionKey": part, "RowKey": "definition", "name": h.name, "revision": h.revision,
                   "releaseCounter": h.release_counter, "deleted": h.deleted, "createdAt": h.created_at,
                   "updatedAt": h.updated_at, "deletedBy": h.deleted_by}
            ops.append(_guarded(row, h.etag))
        if c.revision is not None:
            rev, body = c.revision
            row = {"PartitionKey": part, "RowKey": f"revision|{rev:010d}", "createdAt": body.get("modifiedOn", ""),
                   "createdBy": body.get("modifiedBy", "")}
            ops.append(("create", put_json(row, body)))
        if c.release is not None:
            r = c.release
            row = {"PartitionKey": part, "RowKey": release_key(r.id), "status": r.status,
                   "createdAt": r.created_at, "inFlight": _in_flight(r), "queuedOnly": _queued_only(r),
                   **{_package_property(a["stored"]): True for a in r.artifacts if a.get("stored")}}
            ops.append(_guarded(put_json(row, _fitting(r)), c.release_etag))
            if c.events:
                first = r.event_seq - len(c.events) + 1
                row = {"PartitionKey": part, "RowKey": f"event|{r.id:010d}|{first:08d}", "count": len(c.events)}
                ops.append(("create", put_json(row, [asdict(e) for e in c.events])))
            # A part written again (the same change retried after its answer was lost) replaces itself.
            ops += [("upsert", _log_row(part, r.id, log_part)) for log_part in c.log_parts]
        by_release: dict[int, list[int]] = {}
        for i, item in enumerate(c.outbox):
            if not item.rowless:
                by_release.setdefault(item.release_id, []).append(i)
        for positions in by_release.values():
            items = [c.outbox[i] for i in positions]
            key = _outbox_key(items[0])
            for i in positions:  # the caller flushes this same list after the commit: name each item's row
                c.outbox[i] = replace(c.outbox[i], row=key, row_items=len(items))
            row = {"PartitionKey": part, "RowKey": key, "count": len(items),
                   "createdAt": min(i.created_at for i in items)}
            ops.append(("create", put_json(row, [_outbox_json(i) for i in items])))
        for stage, lane, etag in c.lanes:
            row = put_json({"PartitionKey": part, "RowKey": "lane|" + key_hash(stage)[:40]}, {**lane, "stage": stage})
            ops.append(_guarded(row, etag))
        latest = {record["slot"]: record for record in c.slots}
        for resource_id, record in latest.items():
            row = put_json({"PartitionKey": part, "RowKey": _slot_key(resource_id)}, record)
            etags = {k.lower(): v for k, v in c.slot_etags.items()}
            key = resource_id.lower()
            ops.append(_guarded(row, etags[key]) if key in etags else ("upsert", row))
        if c.idempotency is not None:
            key, result = c.idempotency
            ops.append(("create", {"PartitionKey": part, "RowKey": f"idem|{key_hash(key)}", "result": result}))
        return ops

    def add_log_part(self, definition_id: int, release_id: int, part: LogPart) -> None:
        self.table.upsert_entity(_log_row(pk(definition_id), release_id, part), mode=UpdateMode.REPLACE)

    def log_parts(self, definition_id: int, release_id: int, log: str = "") -> list[LogPart]:
        prefix = f"log|{release_id:010d}|" + (f"{log}|" if log else "")
        found = []
        for row in self._range(pk(definition_id), prefix):
            key = str(row["RowKey"]).removeprefix(f"log|{release_id:010d}|")
            name, order = key.rsplit("|", 1)
            found.append(LogPart(name, order, get_text(row, "text")))
        return found

    def delete_outbox(self, definition_id: int, items: list[OutboxItem]) -> None:
        """Remove sent items: a row whose items all went is deleted; one with items left (a mail that
        failed) keeps those, rewritten under its ETag (someone else's change wins, and is sent again)."""
        part = pk(definition_id)
        sent: dict[str, set[str]] = {}
        size: dict[str, int] = {}
        for item in items:
            key = item.row or _outbox_key(item)
            sent.setdefault(key, set()).add(item.id)
            size[key] = item.row_items or 1
        for key, ids in sent.items():
            if len(ids) >= size[key]:  # all of the row's items went: delete it unread
                try:
                    self.table.delete_entity(part, key)
                except ResourceNotFoundError:
                    pass
                continue
            try:
                row = self.table.get_entity(part, key)
            except ResourceNotFoundError:
                continue  # someone else sent and deleted it
            left = [i for i in _outbox_items(row) if i.id not in ids]
            try:
                if left:
                    fresh = put_json({"PartitionKey": part, "RowKey": key, "count": len(left),
                                      "createdAt": min(i.created_at for i in left)}, [_outbox_json(i) for i in left])
                    self.table.update_entity(fresh, mode=UpdateMode.REPLACE, etag=_etag(row),
                                             match_condition=MatchConditions.IfNotModified)
                else:
                    self.table.delete_entity(part, key, etag=_etag(row),
                                             match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                continue

    # -- retention: a release deleted as a whole (marked first, its row last)

    def mark_deleting(self, definition_id: int, release_id: int, etag: str) -> None:
        """The mark and a `deleting|` row in one transaction: the rows a crash left are found by a prefix read."""
        part = pk(definition_id)
        mark = {"PartitionKey": part, "RowKey": release_key(release_id), "deleting": True, "inFlight": False}
        try:
            self.table.submit_transaction([
                ("update", mark, {"mode": UpdateMode.MERGE, "etag": etag,
                                  "match_condition": MatchConditions.IfNotModified}),
                ("upsert", {"PartitionKey": part, "RowKey": _deleting_key(release_id)})])
        except TableTransactionError as exc:
            if exc.status_code in (404, 409, 412):
                raise ConcurrentChange(f"release {release_id} changed meanwhile") from None
            raise

    def deleting_releases(self, definition_id: int, limit: int) -> list[Release]:
        marks = self.table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                          parameters={"pk": pk(definition_id), "lo": "deleting|", "hi": "deleting}"},
                                          select=["RowKey"], results_per_page=limit)
        found = []
        for mark in next(marks.by_page(), []):
            try:
                found.append(Release.from_dict(get_json(self.table.get_entity(
                    pk(definition_id), release_key(int(mark["RowKey"].split("|")[1]))))))
            except ResourceNotFoundError:
                self.table.delete_entity(pk(definition_id), mark["RowKey"])  # finished before: only the mark left
        return found

    def package_in_use(self, stored: str, but: tuple[int, int]) -> bool:
        pages = self.table.query_entities(f"{_package_property(stored)} eq true", select=["PartitionKey", "RowKey"],
                                          results_per_page=2).by_page()
        rows = list(next(pages, []))
        others = [r for r in rows if (int(r["PartitionKey"]), r["RowKey"]) != (but[0], release_key(but[1]))]
        # an empty first page with more to come is the service pausing a scan: cannot tell, so in use
        return bool(others) or (not rows and pages.continuation_token is not None)  # type: ignore[attr-defined]

    def purge_release(self, definition_id: int, release_id: int) -> int:
        part = pk(definition_id)
        doomed = [r["RowKey"] for prefix in (f"event|{release_id:010d}|", f"outbox|{release_id:010d}|",
                                             f"log|{release_id:010d}|")
                  for r in self._range(part, prefix, select=["RowKey"])]
        for start in range(0, len(doomed), MAX_BATCH):
            self.table.submit_transaction([("delete", {"PartitionKey": part, "RowKey": key})
                                           for key in doomed[start:start + MAX_BATCH]])
        listed = [("releases", _newest_first(release_id)), ("doc|keep", key_hash(str(release_id)))]
        prefix = f"{_newest_first(release_id)}|"
        listed += [("approvals", r["RowKey"]) for r in self.index.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", select=["RowKey"],
            parameters={"pk": "approvals", "lo": prefix, "hi": prefix[:-1] + "}"})]
        for partition, key in listed:
            self.index.delete_entity(partition, key)  # absent: the SDK treats 404 as done
        try:  # the release row last, with its mark
            self.table.submit_transaction([("delete", {"PartitionKey": part, "RowKey": release_key(release_id)}),
                                           ("delete", {"PartitionKey": part, "RowKey": _deleting_key(release_id)})])
        except TableTransactionError as exc:
            if exc.status_code != 404:
                raise
            for key in (release_key(release_id), _deleting_key(release_id)):  # one of them went already
                self.table.delete_entity(part, key)
        return len(doomed) + len(listed) + 1

    def audit(self, definition_id: int, record: dict[str, Any]) -> None:
        key = f"audit|{record['at']}|{key_hash(json_text(record))[:16]}"
        self.table.upsert_entity(put_json({"PartitionKey": pk(definition_id), "RowKey": key}, record))

    def audits(self, definition_id: int) -> list[dict[str, Any]]:
        return [get_json(r) for r in self._range(pk(definition_id), "audit|")]

    # -- artifact versions (insert-only: a version's digest never changes)

    def artifact(self, source: str, version: str) -> dict[str, Any] | None:
        row = self._index_row(_artifact_pk(source), key_hash(version))
        return None if row is None else get_json(row)

    def register_artifact(self, source: str, record: dict[str, Any]) -> None:
        # The version's row and the source's `latest`, in one transaction: a version registered already fails
        # the whole of it, and `latest` only ever names a registered version.
        row = put_json({"PartitionKey": _artifact_pk(source), "RowKey": key_hash(record["version"])}, record)
        latest = put_json({"PartitionKey": _artifact_pk(source), "RowKey": "latest"}, record)
        try:
            self.index.submit_transaction([("create", row), ("upsert", latest, {"mode": UpdateMode.REPLACE})])
        except TableTransactionError as exc:
            if exc.status_code == 409:
                raise ConcurrentChange(f"{source} {record['version']} is already registered", existed=True) from None
            raise

    def latest_artifact(self, source: str) -> dict[str, Any] | None:
        row = self._index_row(_artifact_pk(source), "latest")
        return None if row is None else get_json(row)

    # -- approval links (only their hash is stored)

    def create_link(self, token_hash: str, record: dict[str, Any]) -> None:
        self.index.create_entity(put_json({"PartitionKey": "links", "RowKey": token_hash, "used": False}, record))

    def link(self, token_hash: str) -> tuple[dict[str, Any], bool, str] | None:
        """(record, used, etag) of a link, or None."""
        try:
            row = self.index.get_entity("links", token_hash)
        except ResourceNotFoundError:
            return None
        return get_json(row), bool(row.get("used")), _etag(row)

    def use_link(self, token_hash: str, etag: str) -> None:
        """Mark a link used, once: a second use (or a race) raises ConcurrentChange."""
        try:
            self.index.update_entity({"PartitionKey": "links", "RowKey": token_hash, "used": True},
                                     mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentChange("the link was used meanwhile") from None

    # -- small shared documents (variable groups): partition `doc|{kind}`, row key the hashed key

    def put_document(self, kind: str, key: str, body: dict[str, Any], etag: str | None) -> str:
        row = put_json({"PartitionKey": f"doc|{kind}", "RowKey": key_hash(key.casefold())}, body)
        try:
            if etag is None:
                return str(self.index.create_entity(row)["etag"])
            answer = self.index.update_entity(row, mode=UpdateMode.REPLACE, etag=etag,
                                              match_condition=MatchConditions.IfNotModified)
            return str(answer["etag"])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentChange(f"{kind} '{key}' changed meanwhile") from None

    def document(self, kind: str, key: str) -> tuple[dict[str, Any], str] | None:
        try:
            row = self.index.get_entity(f"doc|{kind}", key_hash(key.casefold()))
        except ResourceNotFoundError:
            return None
        return get_json(row), _etag(row)

    def documents(self, kind: str) -> list[tuple[dict[str, Any], str]]:
        rows = self.index.query_entities("PartitionKey eq @pk", parameters={"pk": f"doc|{kind}"})
        return [(get_json(row), _etag(row)) for row in rows]

    def delete_document(self, kind: str, key: str, etag: str) -> None:
        try:
            self.index.delete_entity(f"doc|{kind}", key_hash(key.casefold()), etag=etag,
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentChange(f"{kind} '{key}' changed meanwhile") from None

    # -- lists across definitions (derived data: upserts are fine here)
    # Index table rows: `definitions` by id; `releases` and `approvals` newest release first
    # (RowKeys count down from 10^10); `schedule` states and `due|YYYYMMDDHHMM` minute partitions.

    def put_summary(self, summary: Summary) -> None:
        row = {**summary.fields, "PartitionKey": summary.list, "RowKey": _summary_key(summary)}
        if summary.list == "approvals":
            row["approvers"] = "\n".join(summary.fields["approvers"])
        self.index.upsert_entity(row, mode=UpdateMode.REPLACE)
        if summary.list == "releases":
            self._definition_of.keep(int(summary.fields["id"]), int(summary.fields["definitionId"]))

    def definitions_page(self, *, cursor: dict[str, str] | None, limit: int, include_deleted: bool = False,
                         ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        return self._list("definitions", cursor, limit, deleted=None if include_deleted else False)

    def releases_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                      status: str | None = None, since: str | None = None,
                      ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        return self._list("releases", cursor, limit, definitionId=definition_id, status=status, createdAt=since)

    def release_definition(self, release_id: int) -> int | None:
        known = self._definition_of.get(release_id)
        if known is not None:
            return int(known)
        row = self._index_row("releases", _newest_first(release_id))
        if row is None:
            return None
        self._definition_of.keep(release_id, int(row["definitionId"]))
        return int(row["definitionId"])

    def approvals_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                       status: str | None = None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        rows, token = self._list("approvals", cursor, limit, definitionId=definition_id, status=status)
        return [{**r, "approvers": str(r["approvers"]).split("\n")} for r in rows], token

    def _list(self, partition: str, cursor: dict[str, str] | None, limit: int,
              **equal: Any) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """A page of an index partition whose rows match every given value (`createdAt`: from then on)."""
        clauses, params = ["PartitionKey eq @pk"], {"pk": partition}
        for name, value in equal.items():
            if value is not None:
                clauses.append(f"{name} {'ge' if name == 'createdAt' else 'eq'} @{name}")
                params[name] = value
        rows, token = _page(self.index.query_entities(" and ".join(clauses), parameters=params,
                                                      results_per_page=limit), cursor)
        return [dict(r) for r in rows], token

    def _index_row(self, partition: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(self.index.get_entity(partition, row_key))
        except ResourceNotFoundError:
            return None

    def schedule_state(self, definition_id: int, key: str) -> dict[str, Any] | None:
        return self._index_row(SCHEDULES, _schedule_key(definition_id, key))

    def arm_schedule(self, definition_id: int, key: str, at: datetime, state: dict[str, Any]) -> None:
        row_key = _schedule_key(definition_id, key)
        self.index.upsert_entity({"PartitionKey": _minute(at), "RowKey": row_key, "definitionId": definition_id,
                                  "at": at.isoformat()}, mode=UpdateMode.REPLACE)
        self.index.upsert_entity({**state, "PartitionKey": SCHEDULES, "RowKey": row_key,
                                  "definitionId": definition_id, "nextAt": at.isoformat()}, mode=UpdateMode.REPLACE)

    def due_schedules(self, until: datetime) -> list[DueSchedule]:
        """One range query over the minute partitions, whatever the number of definitions."""
        rows = self.index.query_entities("PartitionKey ge @lo and PartitionKey le @hi",
                                         parameters={"lo": "due|", "hi": _minute(until)})
        return [DueSchedule(int(r["definitionId"]), r["RowKey"].split("|", 1)[1], r["at"]) for r in rows]

    def disarm(self, entry: DueSchedule) -> None:
        self.index.delete_entity(_minute(datetime.fromisoformat(entry.at)), _schedule_key(entry.definition_id,
                                                                                          entry.key))

    def drop_schedule(self, definition_id: int, key: str) -> None:
        self.index.delete_entity(SCHEDULES, _schedule_key(definition_id, key))  # absent: the SDK treats 404 as done


def _etag(row: TableEntity) -> str:
    return str(row.metadata["etag"])


def _page(query: ItemPaged[TableEntity], cursor: dict[str, str] | None,
          ) -> tuple[list[TableEntity], dict[str, str] | None]:
    """One page of a query and the token of the next. The Tables client's tokens are dicts of the
    service's next-partition and next-row keys, though its type hints say str."""
    pages = query.by_page(continuation_token=cursor)  # type: ignore[arg-type]
    rows = list(next(pages, []))
    return rows, pages.continuation_token  # type: ignore[attr-defined]


def _newest_first(release_id: int) -> str:
    return f"{10**10 - release_id:010d}"


def _summary_key(summary: Summary) -> str:
    f = summary.fields
    if summary.list == "definitions":
        return f"{int(f['id']):010d}"
    if summary.list == "releases":
        return _newest_first(int(f["id"]))
    return f"{_newest_first(int(f['releaseId']))}|{key_hash(str(f['stage']))[:16]}|{f['attempt']}|{f['kind']}"


def _schedule_key(definition_id: int, key: str) -> str:
    return f"{definition_id:010d}|{key}"


def _minute(at: datetime) -> str:
    return "due|" + at.strftime("%Y%m%d%H%M")


def _slot_key(resource_id: str) -> str:
    return "slot|" + key_hash(resource_id.lower())[:40]


def _deleting_key(release_id: int) -> str:
    return f"deleting|{release_id:010d}"


def _package_property(stored: str) -> str:
    """The release-row property that says the release uses this stored package (filterable, unlike its JSON)."""
    return "pkg" + key_hash(stored)[:32]


def _artifact_pk(source: str) -> str:
    return "artifact|" + key_hash(source)[:40]


def _guarded(row: dict[str, Any], etag: str | None) -> tuple[Any, ...]:
    if etag is None:
        return ("create", row)
    return ("update", row, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})


def _in_flight(release: Release) -> bool:
    """A deployment runs or waits for its lane: the sweeper looks at it (a lost lane turn is its to give)."""
    return bool(release.flying())


def _queued_only(release: Release) -> bool:
    """In flight, and every deployment in flight waits for its lane."""
    flying = release.flying()
    return bool(flying) and all(status == Status.QUEUED for status in flying)


def _outbox_key(item: OutboxItem) -> str:
    return f"outbox|{item.release_id:010d}|{item.id}"


def _outbox_json(item: OutboxItem) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "queue": item.queue, "body": item.body, "delay": float(item.delay),
            "createdAt": item.created_at}


def _outbox_items(row: dict[str, Any]) -> list[OutboxItem]:
    """The items a row holds: a change's list, or one item in an older row of its own."""
    _, release, ident = row["RowKey"].split("|")
    if "json0" in row:
        listed = get_json(row)
        return [OutboxItem(id=i["id"], release_id=int(release), kind=OutboxKind(i["kind"]), body=i["body"],
                           created_at=i["createdAt"], queue=i.get("queue", ""), delay=float(i.get("delay", 0.0)),
                           row=row["RowKey"], row_items=len(listed)) for i in listed]
    return [OutboxItem(id=ident, release_id=int(release), kind=OutboxKind(row["kind"]), body=row["body"],
                       created_at=row["createdAt"], queue=row.get("queue", ""), delay=float(row.get("delay", 0.0)),
                       row=row["RowKey"], row_items=1)]


def _log_row(partition: str, release_id: int, part: LogPart) -> dict[str, Any]:
    """A log part's row: its text as is (no JSON escaping to grow it)."""
    return put_text({"PartitionKey": partition, "RowKey": f"log|{release_id:010d}|{part.log}|{part.order}"},
                    "text", part.text)


def _fitting(release: Release) -> dict[str, Any]:
    """The release as stored: compacted step by step until its JSON fits one entity (the history,
    in its own rows, keeps everything compaction leaves out)."""
    data = release.to_dict()
    level = 0
    while utf16_units(json_text(data)) > MAX_ENTITY_JSON:
        level += 1
        compacted = Release.from_dict(data).compact(level)
        if compacted is None:
            raise ValueError(f"release {release.id} is too large to store even compacted "
                             f"({utf16_units(json_text(data))} UTF-16 code units)")
        data = compacted.to_dict()
    return data

"""The pipeline store in memory: the port's fake for service tests (no Azurite).

It keeps what the Table Storage adapter keeps and refuses what it refuses: a change applies all or
nothing, a row read with an ETag is replaced only under that ETag, rows that must be new must not
exist, an idempotency key is taken once, a link is used once. `tests/integration/test_store_contract.py`
runs the same assertions against it and against Azurite, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from shared.domain.release import Release
from shared.records import (
    Changes,
    ConcurrentChange,
    DueSchedule,
    Head,
    InFlight,
    LogPart,
    OutboxItem,
    PipelineStore,
    Summary,
)


class MemoryStore(PipelineStore):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._etags = itertools.count(1)
        self.counters: dict[str, int] = {}
        self.heads: dict[int, tuple[Head, str]] = {}
        self.revision_bodies: dict[tuple[int, int], dict[str, Any]] = {}
        self.release_rows: dict[tuple[int, int], tuple[dict[str, Any], str]] = {}
        self.event_rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.log_rows: dict[tuple[int, int, str, str], str] = {}
        self.outbox_rows: dict[tuple[int, str], list[OutboxItem]] = {}
        self.outbox_claims: dict[tuple[int, str], str] = {}
        self.lane_rows: dict[tuple[int, str], tuple[dict[str, Any], str]] = {}
        self.slots: dict[tuple[int, str], tuple[dict[str, Any], str]] = {}
        self.idempotency: dict[tuple[int, str], str] = {}
        self.artifacts: dict[tuple[str, str], dict[str, Any]] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.links: dict[str, tuple[dict[str, Any], bool, str]] = {}
        self.docs: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self.summaries: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
        self.schedule_states: dict[tuple[int, str], dict[str, Any]] = {}
        self.due_entries: dict[tuple[str, int, str], DueSchedule] = {}
        self.deleting: set[tuple[int, int]] = set()
        self.audit_rows: dict[int, list[dict[str, Any]]] = {}

    def _etag(self) -> str:
        return f'W/"{next(self._etags)}"'

    # -- ids

    def next_id(self, kind: str) -> int:
        with self._lock:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            return self.counters[kind]

    # -- a definition's partition

    def head(self, definition_id: int) -> Head | None:
        found = self.heads.get(definition_id)
        return replace(found[0], etag=found[1]) if found else None

    def known_head(self, definition_id: int) -> Head | None:
        return self.head(definition_id)  # one process: what it wrote last is what there is

    def known_lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        return self.lanes(definition_id)

    def known_slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]] | None:
        return self.slot_versions(definition_id)

    def revision(self, definition_id: int, revision: int) -> dict[str, Any] | None:
        body = self.revision_bodies.get((definition_id, revision))
        return copy.deepcopy(body) if body is not None else None

    def revisions(self, definition_id: int) -> list[dict[str, Any]]:
        return [{"revision": rev, "createdAt": body.get("modifiedOn", ""), "createdBy": body.get("modifiedBy", "")}
                for (did, rev), body in sorted(self.revision_bodies.items()) if did == definition_id]

    def release(self, definition_id: int, release_id: int) -> tuple[Release, str] | None:
        found = self.release_rows.get((definition_id, release_id))
        if found is None or (definition_id, release_id) in self.deleting:
            return None
        return Release.from_dict(copy.deepcopy(found[0])), found[1]

    def releases(self, definition_id: int, *, cursor: dict[str, str] | None, limit: int, since: str | None = None,
                 status: str | None = None) -> tuple[list[Release], dict[str, str] | None]:
        rows = [data for (did, _), (data, _) in sorted(self.release_rows.items()) if did == definition_id
                and (since is None or data["created_at"] >= since) and (status is None or data["status"] == status)]
        page, nxt = _page(rows, cursor, limit)
        return [Release.from_dict(copy.deepcopy(r)) for r in page
                if (definition_id, int(r["id"])) not in self.deleting], nxt

    def events(self, definition_id: int, release_id: int) -> list[dict[str, Any]]:
        return copy.deepcopy(self.event_rows.get((definition_id, release_id), []))

    def lanes(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]:
        return {stage: (copy.deepcopy(data), etag) for (did, stage), (data, etag) in self.lane_rows.items()
                if did == definition_id}

    def slot_records(self, definition_id: int) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for (did, _), (r, _) in self.slots.items() if did == definition_id]

    def slot_versions(self, definition_id: int) -> dict[str, tuple[dict[str, Any], str]]:
        return {slot: (copy.deepcopy(r), etag) for (did, slot), (r, etag) in self.slots.items()
                if did == definition_id}

    def idempotent_result(self, definition_id: int, key: str) -> str | None:
        return self.idempotency.get((definition_id, key))

    def outbox(self, definition_id: int, release_id: int | None = None) -> list[OutboxItem]:
        return [i for (did, _), items in sorted(self.outbox_rows.items()) if did == definition_id
                for i in items if release_id is None or i.release_id == release_id]

    def claim_stale_outbox(self, older_than: datetime, now: datetime, until: datetime,
                           ) -> list[tuple[int, OutboxItem]]:
        won = []
        with self._lock:
            for key, items in sorted(self.outbox_rows.items()):
                if min(x.created_at for x in items) >= older_than.isoformat() or \
                        self.outbox_claims.get(key, "") > now.isoformat():
                    continue
                self.outbox_claims[key] = until.isoformat()
                won += [(key[0], i) for i in items]
        return won

    def in_flight(self) -> list[InFlight]:
        found = []
        for key, (data, _) in sorted(self.release_rows.items()):
            flying = Release.from_dict(copy.deepcopy(data)).flying()
            if flying:
                found.append(InFlight(*key, all(status == "queued" for status in flying)))
        return found

    # -- the one write

    def commit(self, changes: Changes) -> str | None:
        c, did = changes, changes.definition_id
        with self._lock:
            if c.head is not None:
                self._check(self.heads.get(did), c.head.etag, "definition")
            if c.revision is not None and (did, c.revision[0]) in self.revision_bodies:
                raise ConcurrentChange(f"revision {c.revision[0]} exists")
            if c.release is not None:
                self._check(self.release_rows.get((did, c.release.id)), c.release_etag, "release")
            for stage, _, etag in c.lanes:
                self._check(self.lane_rows.get((did, stage)), etag, "lane")
            for slot, etag in c.slot_etags.items():
                if any(r["slot"].lower() == slot.lower() for r in c.slots):
                    self._check(self.slots.get((did, slot.lower())), etag, "slot record")
            if c.idempotency is not None and (did, c.idempotency[0]) in self.idempotency:
                raise ConcurrentChange(f"'{c.idempotency[0]}' is taken")
            if c.head is not None:
                self.heads[did] = (replace(c.head, etag=None), self._etag())
            if c.revision is not None:
                self.revision_bodies[(did, c.revision[0])] = copy.deepcopy(c.revision[1])
            if c.release is not None:
                r = c.release
                self.release_rows[(did, r.id)] = (copy.deepcopy(r.to_dict()), self._etag())
                first = r.event_seq - len(c.events) + 1
                self.event_rows.setdefault((did, r.id), []).extend(
                    {"seq": first + n, **asdict(e)} for n, e in enumerate(c.events))
                for part in c.log_parts:
                    self.log_rows[(did, r.id, part.log, part.order)] = part.text
            by_release: dict[int, list[int]] = {}
            for n, item in enumerate(c.outbox):
                if not item.rowless:
                    by_release.setdefault(item.release_id, []).append(n)
            for positions in by_release.values():
                key = f"outbox|{c.outbox[positions[0]].release_id:010d}|{c.outbox[positions[0]].id}"
                for n in positions:
                    c.outbox[n] = replace(c.outbox[n], row=key, row_items=len(positions))
                self.outbox_rows[(did, key)] = [c.outbox[n] for n in positions]
            for stage, lane, _ in c.lanes:
                self.lane_rows[(did, stage)] = ({**copy.deepcopy(lane), "stage": stage}, self._etag())
            for record in c.slots:
                self.slots[(did, record["slot"].lower())] = (copy.deepcopy(record), self._etag())
            if c.idempotency is not None:
                self.idempotency[(did, c.idempotency[0])] = c.idempotency[1]
            return self.release_rows[(did, c.release.id)][1] if c.release is not None else None

    @staticmethod
    def _check(found: tuple[Any, str] | None, etag: str | None, what: str) -> None:
        if etag is None and found is not None:
            raise ConcurrentChange(f"the {what} exists")
        if etag is not None and (found is None or found[1] != etag):
            raise ConcurrentChange(f"the {what} changed", existed=False)

    def add_log_part(self, definition_id: int, release_id: int, part: LogPart) -> None:
        with self._lock:
            self.log_rows[(definition_id, release_id, part.log, part.order)] = part.text

    def log_parts(self, definition_id: int, release_id: int, log: str = "") -> list[LogPart]:
        with self._lock:
            return [LogPart(k[2], k[3], text) for k, text in sorted(self.log_rows.items())
                    if k[:2] == (definition_id, release_id) and (not log or k[2] == log)]

    def delete_outbox(self, definition_id: int, items: list[OutboxItem]) -> None:
        with self._lock:
            for item in items:
                key = (definition_id, item.row or f"outbox|{item.release_id:010d}|{item.id}")
                left = [i for i in self.outbox_rows.get(key, []) if i.id != item.id]
                if left:
                    self.outbox_rows[key] = left
                else:
                    self.outbox_rows.pop(key, None)
                    self.outbox_claims.pop(key, None)

    # -- retention

    def mark_deleting(self, definition_id: int, release_id: int, etag: str) -> None:
        with self._lock:
            found = self.release_rows.get((definition_id, release_id))
            if found is None or found[1] != etag:
                raise ConcurrentChange(f"release {release_id} changed meanwhile")
            self.release_rows[(definition_id, release_id)] = (found[0], self._etag())
            self.deleting.add((definition_id, release_id))

    def deleting_releases(self, definition_id: int, limit: int) -> list[Release]:
        return [Release.from_dict(copy.deepcopy(self.release_rows[key][0])) for key in sorted(self.deleting)
                if key[0] == definition_id and key in self.release_rows][:limit]

    def package_in_use(self, stored: str, but: tuple[int, int]) -> bool:
        return any(key != but and any(a.get("stored") == stored for a in data["artifacts"])
                   for key, (data, _) in self.release_rows.items())

    def purge_release(self, definition_id: int, release_id: int) -> int:
        with self._lock:
            gone = len(self.event_rows.pop((definition_id, release_id), []))
            for key in [k for k in self.log_rows if k[:2] == (definition_id, release_id)]:
                del self.log_rows[key]
                gone += 1
            for key in [k for k, items in self.outbox_rows.items()
                        if k[0] == definition_id and items[0].release_id == release_id]:
                del self.outbox_rows[key]
                self.outbox_claims.pop(key, None)
                gone += 1
            listed = [k for k, f in self.summaries.items() if (k[0] == "releases" and f["id"] == release_id)
                      or (k[0] == "approvals" and f["releaseId"] == release_id)]
            for key in listed:
                del self.summaries[key]
            gone += len(listed) + (self.docs.pop(("keep", str(release_id)), None) is not None)
            gone += self.release_rows.pop((definition_id, release_id), None) is not None
            self.deleting.discard((definition_id, release_id))
            return gone

    def audit(self, definition_id: int, record: dict[str, Any]) -> None:
        with self._lock:
            self.audit_rows.setdefault(definition_id, []).append(copy.deepcopy(record))

    def audits(self, definition_id: int) -> list[dict[str, Any]]:
        return sorted(copy.deepcopy(self.audit_rows.get(definition_id, [])), key=lambda r: str(r["at"]))

    # -- artifact versions

    def artifact(self, source: str, version: str) -> dict[str, Any] | None:
        found = self.artifacts.get((source, version))
        return copy.deepcopy(found) if found else None

    def register_artifact(self, source: str, record: dict[str, Any]) -> None:
        with self._lock:
            if (source, record["version"]) in self.artifacts:
                raise ConcurrentChange(f"{source} {record['version']} is already registered")
            self.artifacts[(source, record["version"])] = copy.deepcopy(record)
            self.latest[source] = copy.deepcopy(record)

    def latest_artifact(self, source: str) -> dict[str, Any] | None:
        found = self.latest.get(source)
        return copy.deepcopy(found) if found else None

    # -- approval links

    def create_link(self, token_hash: str, record: dict[str, Any]) -> None:
        with self._lock:
            if token_hash in self.links:
                raise ConcurrentChange("the link exists")
            self.links[token_hash] = (copy.deepcopy(record), False, self._etag())

    def link(self, token_hash: str) -> tuple[dict[str, Any], bool, str] | None:
        found = self.links.get(token_hash)
        return (copy.deepcopy(found[0]), found[1], found[2]) if found else None

    def put_document(self, kind: str, key: str, body: dict[str, Any], etag: str | None) -> str:
        with self._lock:
            found = self.docs.get((kind, key.casefold()))
            if (found is None) != (etag is None) or (found is not None and found[1] != etag):
                raise ConcurrentChange(f"{kind} '{key}' changed meanwhile")
            new = self._etag()
            self.docs[(kind, key.casefold())] = (copy.deepcopy(body), new)
            return new

    def document(self, kind: str, key: str) -> tuple[dict[str, Any], str] | None:
        found = self.docs.get((kind, key.casefold()))
        return (copy.deepcopy(found[0]), found[1]) if found else None

    def documents(self, kind: str) -> list[tuple[dict[str, Any], str]]:
        return [(copy.deepcopy(b), e) for (k, _), (b, e) in sorted(self.docs.items()) if k == kind]

    def delete_document(self, kind: str, key: str, etag: str) -> None:
        with self._lock:
            found = self.docs.get((kind, key.casefold()))
            if found is None or found[1] != etag:
                raise ConcurrentChange(f"{kind} '{key}' changed meanwhile")
            del self.docs[(kind, key.casefold())]

    def use_link(self, token_hash: str, etag: str) -> None:
        with self._lock:
            found = self.links.get(token_hash)
            if found is None or found[2] != etag:
                raise ConcurrentChange("the link was used meanwhile")
            self.links[token_hash] = (found[0], True, self._etag())

    # -- lists across definitions

    def put_summary(self, summary: Summary) -> None:
        with self._lock:
            self.summaries[(summary.list, summary.identity)] = copy.deepcopy(summary.fields)

    def _list(self, name: str) -> list[dict[str, Any]]:
        listed = sorted((identity, f) for (n, identity), f in self.summaries.items() if n == name)
        return [copy.deepcopy(f) for _, f in listed]

    def definitions_page(self, *, cursor: dict[str, str] | None, limit: int, include_deleted: bool = False,
                         ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        return _page([r for r in self._list("definitions") if include_deleted or not r.get("deleted")], cursor,
                     limit)

    def releases_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                      status: str | None = None, since: str | None = None,
                      ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        rows = [r for r in self._list("releases") if (definition_id is None or r["definitionId"] == definition_id)
                and (status is None or r["status"] == status) and (since is None or r["createdAt"] >= since)]
        return _page(rows, cursor, limit)

    def release_definition(self, release_id: int) -> int | None:
        found = self.summaries.get(("releases", Summary.release_identity(release_id)))
        return int(found["definitionId"]) if found else None

    def approvals_page(self, *, cursor: dict[str, str] | None, limit: int, definition_id: int | None = None,
                       status: str | None = None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        rows = [r for r in self._list("approvals") if (definition_id is None or r["definitionId"] == definition_id)
                and (status is None or r["status"] == status)]
        return _page(rows, cursor, limit)

    # -- schedules

    def schedule_state(self, definition_id: int, key: str) -> dict[str, Any] | None:
        found = self.schedule_states.get((definition_id, key))
        return copy.deepcopy(found) if found else None

    def arm_schedule(self, definition_id: int, key: str, at: datetime, state: dict[str, Any]) -> None:
        with self._lock:
            entry = DueSchedule(definition_id, key, at.isoformat())
            self.due_entries[(at.strftime("%Y%m%d%H%M"), definition_id, key)] = entry
            self.schedule_states[(definition_id, key)] = {**copy.deepcopy(state), "definitionId": definition_id,
                                                          "nextAt": at.isoformat()}

    def due_schedules(self, until: datetime) -> list[DueSchedule]:
        bound = until.strftime("%Y%m%d%H%M")
        return [e for (minute, _, _), e in sorted(self.due_entries.items()) if minute <= bound]

    def disarm(self, entry: DueSchedule) -> None:
        with self._lock:
            minute = datetime.fromisoformat(entry.at).strftime("%Y%m%d%H%M")
            self.due_entries.pop((minute, entry.definition_id, entry.key), None)

    def drop_schedule(self, definition_id: int, key: str) -> None:
        with self._lock:
            self.schedule_states.pop((definition_id, key), None)


def _page(rows: list[Any], cursor: dict[str, str] | None, limit: int) -> tuple[list[Any], dict[str, str] | None]:
    start = int((cursor or {}).get("offset", "0"))
    end = start + limit
    return rows[start:end], ({"offset": str(end)} if end < len(rows) else None)

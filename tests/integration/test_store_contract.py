"""The store port's contract, run against Table Storage (Azurite) and against the in-memory fake the
service tests use: what one does, the other must do, or the fake would let a service test pass that
production fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.azurite import Azurite
from local.storage_policies import TableLimitsPolicy
from shared.adapters.storage_clients import StorageClients
from shared.adapters.table_store import TableStore
from shared.config import Settings
from shared.domain.approvals import Approval
from shared.domain.release import Release
from shared.domain.transitions import StartRelease, decide
from shared.domain.vocabulary import ApprovalStatus, Kind, Status
from shared.records import Changes, ConcurrentChange, DueSchedule, Head, OutboxItem, OutboxKind, PipelineStore, Summary
from tests.memory_store import MemoryStore

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest, unique: str) -> Iterator[PipelineStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    settings = Settings(storage_connection=azurite.connection_string)
    yield TableStore(StorageClients(settings, [TableLimitsPolicy()]), f"C{unique}")


def release(rid: int, *, created: datetime = NOW, by: str = "amita") -> Release:
    stages = [{"name": "Dev", "target": {**TARGET, "slot": "dev"}, "trigger": {"type": "afterRelease"},
               "steps": [{"type": "wait", "seconds": 0}]}]
    return Release.new(id=rid, definition_id="1", revision=1, name=f"Release-{rid}", created_at=created.isoformat(),
                       created_by=by, reason="manual", description="", artifacts=[],
                       definition={"name": "Tailspin", "stages": stages})


def item(rid: int, n: int, created: datetime = NOW) -> OutboxItem:
    return OutboxItem(id=f"i{rid}x{n}", release_id=rid, kind=OutboxKind.QUEUE, queue="q", body=f'{{"n":{n}}}',
                      created_at=created.isoformat())


def test_a_release_is_created_once_and_replaced_only_under_the_etag_it_was_read_with(store: PipelineStore) -> None:
    store.commit(Changes(1, release=release(5)))
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, release=release(5)))  # exists
    loaded, etag = store.release(1, 5) or (None, "")
    assert loaded is not None and loaded.name == "Release-5" and store.release(1, 6) is None
    started = decide(loaded, StartRelease(), NOW, {}).release
    started.event_seq = 1
    store.commit(Changes(1, release=started, release_etag=etag))
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, release=started, release_etag=etag))  # stale
    again = store.release(1, 5)
    assert again is not None and again[1] != etag and again[0].stages["Dev"].status == started.stages["Dev"].status


def test_a_change_applies_all_or_nothing(store: PipelineStore) -> None:
    store.commit(Changes(1, release=release(5), lanes=[("Dev", {"active": []}, None)]))
    loaded, etag = store.release(1, 5) or (None, "")
    assert loaded is not None
    loaded.description = "changed"
    stale_lane = [("Dev", {"active": [5]}, 'W/"stale"')]
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, release=loaded, release_etag=etag, lanes=stale_lane, outbox=[item(5, 1)]))
    after = store.release(1, 5)
    assert after is not None and after[1] == etag and after[0].description == ""
    assert store.outbox(1, 5) == [] and store.lanes(1)["Dev"][0]["active"] == []


def test_an_idempotency_key_is_taken_once(store: PipelineStore) -> None:
    store.commit(Changes(1, release=release(5), idempotency=("build|web|1.0", "5")))
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, release=release(6), idempotency=("build|web|1.0", "6")))
    assert store.idempotent_result(1, "build|web|1.0") == "5" and store.release(1, 6) is None
    assert store.idempotent_result(1, "other") is None


def test_the_head_and_revisions(store: PipelineStore) -> None:
    head = Head(id=3, name="Tailspin", revision=1, created_at=NOW.isoformat(), updated_at=NOW.isoformat())
    body = {"name": "Tailspin", "modifiedBy": "amita", "modifiedOn": NOW.isoformat()}
    store.commit(Changes(3, head=head, revision=(1, body)))
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(3, head=head, revision=(1, body)))
    stored = store.head(3)
    assert stored is not None and stored.name == "Tailspin" and stored.etag and store.head(4) is None
    stored.revision = 2
    store.commit(Changes(3, head=stored, revision=(2, {**body, "name": "Renamed"})))
    assert store.revision(3, 2) == {**body, "name": "Renamed"} and store.revision(3, 9) is None
    assert [r["revision"] for r in store.revisions(3)] == [1, 2]
    known = store.known_head(3)  # as the process last wrote it: its ETag is the row's, no read needed
    assert known is not None and (known.revision, known.etag) == (2, (store.head(3) or known).etag)
    known.release_counter += 1
    store.commit(Changes(3, head=known))
    assert (store.head(3) or known).release_counter == 1 and store.known_head(4) is None


def test_outbox_items_go_with_their_change_and_leave_one_by_one(store: PipelineStore) -> None:
    items = [item(5, 1), item(5, 2), item(5, 3)]
    store.commit(Changes(1, release=release(5), outbox=items))
    listed = store.outbox(1, 5)
    assert sorted(i.id for i in listed) == ["i5x1", "i5x2", "i5x3"] and store.outbox(1, 6) == []
    assert store.claim_stale_outbox(NOW, NOW, NOW) == []  # not older than the lease yet
    later = NOW + timedelta(minutes=2)
    claimed = store.claim_stale_outbox(NOW + timedelta(seconds=1), later, later + timedelta(minutes=1))
    assert sorted(i.id for _, i in claimed) == sorted(i.id for i in listed)
    assert store.claim_stale_outbox(NOW + timedelta(seconds=1), later, later + timedelta(minutes=1)) == []  # held
    expired = later + timedelta(minutes=2)
    assert len(store.claim_stale_outbox(NOW + timedelta(seconds=1), expired, expired)) == 3  # the claim lapsed
    store.delete_outbox(1, [i for i in listed if i.id == "i5x2"])
    assert sorted(i.id for i in store.outbox(1)) == ["i5x1", "i5x3"]
    store.delete_outbox(1, store.outbox(1))
    assert store.outbox(1) == []


def test_in_flight_names_releases_with_a_deployment_in_progress(store: PipelineStore) -> None:
    store.commit(Changes(1, release=release(5)))
    started = decide(release(6), StartRelease(), NOW, {}).release
    store.commit(Changes(1, release=started))
    assert store.in_flight() == [(1, 6, False)]
    # a release whose deployments in flight all wait for their lanes says so (the sweeper reads its lanes instead)
    queued = decide(release(7), StartRelease(), NOW, {}).release
    for run in queued.stages.values():
        if run.current is not None:
            run.current.status = run.status = Status.QUEUED
    store.commit(Changes(1, release=queued))
    assert store.in_flight() == [(1, 6, False), (1, 7, True)]


def test_links_are_used_once(store: PipelineStore) -> None:
    store.create_link("h1", {"releaseId": 5, "approver": "tim@contoso.com"})
    record, used, etag = store.link("h1") or ({}, True, "")
    assert record["approver"] == "tim@contoso.com" and not used and store.link("h2") is None
    store.use_link("h1", etag)
    with pytest.raises(ConcurrentChange):
        store.use_link("h1", etag)
    assert (store.link("h1") or ({}, False, ""))[1] is True


def test_artifact_versions_are_registered_once(store: PipelineStore) -> None:
    store.register_artifact("web", {"version": "1.0", "sha256": "a"})
    with pytest.raises(ConcurrentChange):
        store.register_artifact("web", {"version": "1.0", "sha256": "b"})
    store.register_artifact("web", {"version": "1.1", "sha256": "c"})
    assert (store.artifact("web", "1.0") or {})["sha256"] == "a" and store.artifact("web", "2.0") is None
    assert (store.latest_artifact("web") or {})["version"] == "1.1" and store.latest_artifact("api") is None


def test_ids_are_never_reused_under_concurrency(store: PipelineStore) -> None:
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(store.next_id("release"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))


def every_page(read: Any, limit: int) -> list[dict[str, Any]]:
    rows, cursor = read(cursor=None, limit=limit)
    while cursor:
        more, cursor = read(cursor=cursor, limit=limit)
        rows += more
    return list(rows)


def test_lists_of_definitions_and_releases(store: PipelineStore) -> None:
    for did in (2, 1, 3):
        store.put_summary(Summary.of_definition(Head(id=did, name=f"D{did}", revision=1, deleted=did == 3)))
    store.put_summary(Summary.of_definition(Head(id=1, name="Renamed", revision=2)))
    assert [(r["id"], r["name"]) for r in every_page(store.definitions_page, 1)] == [(1, "Renamed"), (2, "D2")]
    for rid, did in ((1, 1), (2, 2), (3, 1)):
        rel = release(rid, created=NOW + timedelta(hours=rid))
        rel.definition_id = str(did)
        store.put_summary(Summary.of_release(rel))
    assert [r["id"] for r in every_page(store.releases_page, 2)] == [3, 2, 1]
    assert [r["id"] for r in every_page(lambda **kw: store.releases_page(definition_id=1, **kw), 1)] == [3, 1]
    since = (NOW + timedelta(hours=2)).isoformat()
    assert [r["id"] for r in store.releases_page(cursor=None, limit=10, since=since)[0]] == [3, 2]
    assert store.releases_page(cursor=None, limit=10, status="abandoned")[0] == []
    assert store.release_definition(2) == 2 and store.release_definition(9) is None


def test_the_approvals_inbox(store: PipelineStore) -> None:
    for rid in (1, 2):
        rel = decide(release(rid), StartRelease(), NOW, {}).release
        dep = rel.stages["Dev"].deployments[0]
        pending = Approval(Kind.PRE, ApprovalStatus.PENDING, ["tim@contoso.com", "management"], "all", 2, False,
                           NOW.isoformat(), NOW.isoformat())
        store.put_summary(Summary.of_approval(rel, "Dev", dep, "pre", pending))
    rows = store.approvals_page(cursor=None, limit=10)[0]
    assert [r["releaseId"] for r in rows] == [2, 1] and rows[0]["approvers"] == ["tim@contoso.com", "management"]
    assert store.approvals_page(cursor=None, limit=10, status="approved")[0] == []
    assert [r["releaseId"] for r in store.approvals_page(cursor=None, limit=10, definition_id=1)[0]] == [2, 1]


def test_schedules_come_due_by_the_minute(store: PipelineStore) -> None:
    at = NOW + timedelta(minutes=5)
    store.arm_schedule(1, "stage|abc|0", at, {"cron": "0 3 * * *", "timeZone": "UTC", "lastResult": "x"})
    assert store.due_schedules(at - timedelta(minutes=1)) == []
    [entry] = store.due_schedules(at + timedelta(seconds=59))
    assert entry == DueSchedule(1, "stage|abc|0", at.isoformat()) and entry.name == "0000000001|stage|abc|0"
    state = store.schedule_state(1, "stage|abc|0") or {}
    assert state["nextAt"] == at.isoformat() and state["lastResult"] == "x" and state["cron"] == "0 3 * * *"
    later = at + timedelta(days=1)
    store.arm_schedule(1, "stage|abc|0", later, {"cron": "0 3 * * *", "timeZone": "UTC"})
    assert [e.at for e in store.due_schedules(later)] == [at.isoformat(), later.isoformat()]  # the old one is stale
    store.disarm(entry)
    assert [e.at for e in store.due_schedules(later)] == [later.isoformat()]
    store.drop_schedule(1, "stage|abc|0")
    store.drop_schedule(1, "stage|abc|0")  # twice is fine
    assert store.schedule_state(1, "stage|abc|0") is None


def test_a_slot_record_is_replaced_only_under_its_etag(store: PipelineStore) -> None:
    slot = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app/slots/dev"
    first = {"slot": slot, "releaseId": 1, "seenAt": NOW.isoformat()}
    store.commit(Changes(1, slots=[first], slot_etags={slot: None}))
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, slots=[first], slot_etags={slot: None}))  # someone recorded it first
    [(record, etag)] = store.slot_versions(1).values()
    assert record["releaseId"] == 1
    store.commit(Changes(1, slots=[{**first, "releaseId": 2}], slot_etags={slot: etag}))
    [(record, written)] = (store.known_slot_versions(1) or {}).values()  # as written, with the ETag it answered
    assert record["releaseId"] == 2 and written == store.slot_versions(1)[slot.lower()][1]
    with pytest.raises(ConcurrentChange):
        store.commit(Changes(1, slots=[{**first, "releaseId": 3}], slot_etags={slot: etag}))  # stale
    assert [r["releaseId"] for r in store.slot_records(1)] == [2]
    store.commit(Changes(1, slots=[{**first, "releaseId": 4}]))  # no ETag named: last writer wins
    assert [r["releaseId"] for r in store.slot_records(1)] == [4]


def test_documents_are_created_once_and_changed_or_deleted_only_under_their_etag(store: PipelineStore) -> None:
    first = store.put_document("vargroup", "Shared-SQL", {"name": "Shared-SQL", "variables": {"a": "1"}}, None)
    with pytest.raises(ConcurrentChange):
        store.put_document("vargroup", "shared-sql", {"name": "shared-sql"}, None)  # names are case-insensitive
    second = store.put_document("vargroup", "Shared-SQL", {"name": "Shared-SQL", "variables": {"a": "2"}}, first)
    with pytest.raises(ConcurrentChange):
        store.put_document("vargroup", "Shared-SQL", {"name": "Shared-SQL"}, first)  # a stale ETag
    assert store.document("vargroup", "SHARED-sql") == ({"name": "Shared-SQL", "variables": {"a": "2"}}, second)
    assert [b["name"] for b, _ in store.documents("vargroup")] == ["Shared-SQL"]
    with pytest.raises(ConcurrentChange):
        store.delete_document("vargroup", "Shared-SQL", first)
    store.delete_document("vargroup", "Shared-SQL", second)
    assert store.document("vargroup", "Shared-SQL") is None and store.documents("vargroup") == []

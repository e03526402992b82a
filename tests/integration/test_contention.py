"""Many creators at once on one definition (a CI system building several branches): every one gets
its release, numbered without gaps."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from shared.adapters.table_store import TableStore
from shared.services import releases
from shared.services.definitions import current_body
from shared.services.serial import Serial
from tests.integration.conftest import World, stage

pytestmark = pytest.mark.azurite  # contention on Table Storage's ETags, as in Azure


def test_thirty_two_concurrent_creators_all_get_a_release_numbered_without_gaps(world: World) -> None:
    did = int(world.define([stage("Dev", {"type": "manual"})])["id"])
    made: list[object] = []
    failed: list[BaseException] = []

    def create(n: int) -> None:
        try:
            made.append(world.release(did, f"2.0.{n}"))
        except BaseException as exc:  # noqa: BLE001  (collected: the assertion names them)
            failed.append(exc)

    creators = [threading.Thread(target=create, args=(n,)) for n in range(32)]
    for t in creators:
        t.start()
    for t in creators:
        t.join()
    assert failed == []
    assert sorted(r.name for r in made) == sorted(f"Release-{n}" for n in range(1, 33))  # type: ignore[attr-defined]
    assert len({r.id for r in made}) == 32  # type: ignore[attr-defined]


def test_this_processs_concurrent_creators_take_turns_and_lose_no_write(world: World) -> None:
    """Azure runs an instance's invocations on threads of one process: its creators of one definition write the
    head in turns (each starting from the head the one before wrote), so none loses its transaction to another."""
    did = int(world.define([stage("Dev", {"type": "manual"})])["id"])
    world.release(did, "1.0.0")
    world.counter.reset()
    world.release(did, "1.0.1")
    one = dict(world.counter.counts)
    world.counter.reset()
    creators = [threading.Thread(target=world.release, args=(did, f"3.0.{n}")) for n in range(16)]
    for t in creators:
        t.start()
    for t in creators:
        t.join()
    # Each as if alone: no transaction lost and done again, no head read again, no id counter read or written again.
    assert dict(world.counter.counts) == {kind: 16 * n for kind, n in one.items()}
    assert sorted(r.name for r in releases.newest(world.deps, did, limit=20))[:3] == [
        "Release-1", "Release-10", "Release-11"]


def test_a_creator_that_lost_the_race_to_another_instance_reads_only_the_head_again(world: World) -> None:
    """A head another instance wrote meanwhile costs the head again and the failed write: the revision's body never
    changes, and only a row that existed (409) can be another request's key."""
    did = int(world.define([stage("Dev", {"type": "manual"})])["id"])
    made = [world.release(did, "1.0.0")]
    world.counter.reset()
    made.append(world.release(did, "1.1.0", idempotency_key="build|1.1.0", current=current_body(world.deps, did)))
    first_try = world.counter.total
    store = world.deps.store
    assert isinstance(store, TableStore)
    other = World(replace(world.deps, store=TableStore(store.clients, store.table_name), serial=Serial()),
                  world.counter, world.crash, world.bus)
    made.append(other.release(did, "1.2.0"))  # numbered meanwhile by another instance: this one's head is behind
    world.counter.reset()
    late = world.release(did, "1.3.0", idempotency_key="build|1.3.0", current=current_body(world.deps, did))
    assert world.counter.total == first_try + 2  # the head again, and the write that failed
    assert late.name not in [r.name for r in made] and late.name.endswith("4")
    again = world.release(did, "1.3.0", idempotency_key="build|1.3.0")
    assert again.id == late.id  # the key still finds the release it made


def test_ids_stay_unique_when_another_instance_takes_some_meanwhile(world: World) -> None:
    """Each instance remembers the counter it wrote last; one the other moved on since costs a read, never an id."""
    mine = world.deps.store
    assert isinstance(mine, TableStore)
    theirs = TableStore(mine.clients, mine.table_name)
    assert [mine.next_id("thing"), theirs.next_id("thing"), mine.next_id("thing"), mine.next_id("thing"),
            theirs.next_id("thing")] == [1, 2, 3, 4, 5]


def test_lanes_this_process_knows_need_no_read_and_another_instances_write_costs_one(world: World) -> None:
    """A release entering a stage that deploys one at a time looks at its lane: as this process last read and wrote
    the lanes, no query (in one instance every writer of them is one of its threads). Another instance's write
    since makes the first try's write a 412: the lanes are read again, and nothing is lost."""
    did = int(world.define([{**stage("Dev"), "queue": {"parallel": 1}}])["id"])
    first = world.release(did, "1.0.0")
    lanes_read = r"^GET .*\$filter=.*lane"
    world.crash.arm(None, match=lanes_read)
    world.counter.reset()
    second = world.release(did, "1.1.0")  # the lane is busy with the first: the second waits in it
    writes = world.counter.counts["table POST"]
    assert world.crash.seen == 0 and world.get(second.id).stages["Dev"].status == "queued"
    store = world.deps.store
    assert isinstance(store, TableStore)
    other = World(replace(world.deps, store=TableStore(store.clients, store.table_name), serial=Serial()),
                  world.counter, world.crash, world.bus)
    third = other.release(did, "1.2.0")  # another instance queues a third: the lane moved on without this one
    world.crash.arm(None, match=lanes_read)
    world.counter.reset()
    fourth = world.release(did, "1.3.0")
    assert world.crash.seen == 1 and world.counter.counts["table POST"] == writes + 1  # and the write that failed
    world.crash.arm(None)
    assert store.lanes(did)["Dev"][0] == {"stage": "Dev", "active": [first.id],
                                          "queued": [second.id, third.id, fourth.id]}

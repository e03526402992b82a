"""Many creators at once on one definition (a CI system building several branches): every one gets
its release, numbered without gaps."""

from __future__ import annotations

import threading

import pytest

from shared.services.definitions import current_body
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


def test_a_creator_that_lost_the_race_reads_only_the_definitions_head_again(world: World) -> None:
    """A collision on the head (another release numbered meanwhile) costs the head, the lanes and the failed write:
    the revision's body never changes, and only a row that existed (409) can be another request's key."""
    did = int(world.define([stage("Dev", {"type": "manual"})])["id"])
    made = [world.release(did, "1.0.0")]
    fresh = current_body(world.deps, did)
    world.counter.reset()
    made.append(world.release(did, "1.1.0", idempotency_key="build|1.1.0", current=fresh))
    first_try = world.counter.total
    stale = current_body(world.deps, did)
    made.append(world.release(did, "1.2.0"))  # numbered meanwhile: `stale` is behind by one
    world.counter.reset()
    late = world.release(did, "1.3.0", idempotency_key="build|1.3.0", current=stale)
    assert world.counter.total == first_try + 3  # the head and the stage's lanes again, and the write that failed
    assert late.name not in [r.name for r in made] and late.name.endswith("4")
    again = world.release(did, "1.3.0", idempotency_key="build|1.3.0", current=stale)
    assert again.id == late.id  # the key still finds the release it made

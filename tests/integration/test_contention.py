"""Many creators at once on one definition (a CI system building several branches): every one gets
its release, numbered without gaps."""

from __future__ import annotations

import threading

import pytest

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

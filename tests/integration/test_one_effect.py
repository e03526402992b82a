"""One effect per change: the handler that commits a change sends its outbox; a command that changes
nothing sends nothing; the sweeper sends only what a dead handler left, claimed so that one sweeper
sends it once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from shared import bootstrap
from shared.config import EVENTS_QUEUE, STEPS_QUEUE
from shared.domain.target import Target
from shared.domain.transitions.commands import CompleteStep
from shared.messages import RunStep, WakeUp, encode
from shared.records import Changes
from shared.services import outbox, releases, sweeper
from shared.services.apply import apply
from shared.services.steps.context import RELEASE_MARK, VERSION_MARK, slot_record
from shared.services.what_runs_where import what_runs_where
from tests.integration.conftest import World, stage


def left_by_a_handler_about_to_send(world: World) -> tuple[int, int]:
    """A release, and one outbox item another handler committed for it and has not sent yet."""
    did = int(world.define([stage("Dev")])["id"])
    rel = world.release(did)
    world.pump()
    due = world.clock.now().isoformat()
    item = outbox.message_item(world.deps, rel.id, WakeUp(did, rel.id, "Dev", 1, due))
    world.deps.store.commit(Changes(did, outbox=[item]))
    return did, rel.id


def events(world: World) -> list[Any]:
    return world.receive(EVENTS_QUEUE)


def test_a_stale_message_or_a_no_op_command_sends_nothing_that_is_not_its_own(world: World) -> None:
    did, rid = left_by_a_handler_about_to_send(world)
    stale = encode(RunStep(did, rid, "Dev", 1, 0, 1))  # the first step's message, delivered again
    assert bootstrap.react(world.deps, STEPS_QUEUE, stale, "again") == "stale"
    wake = encode(WakeUp(did, rid, "Dev", 1, world.clock.now().isoformat()))
    assert bootstrap.react(world.deps, EVENTS_QUEUE, wake, "w") == "nothing due"  # a no-op through apply
    assert events(world) == [] and len(world.deps.store.outbox(did, rid)) == 1


def test_the_sweeper_sends_what_a_dead_handler_left_once_however_many_sweep(world: World) -> None:
    did, rid = left_by_a_handler_about_to_send(world)
    assert sweeper.sweep(world.deps)["outbox"] == 0  # younger than the lease: its handler may still send it
    world.clock.advance(61)
    sweeps = [threading.Thread(target=sweeper.sweep, args=(world.deps,)) for _ in range(4)]
    for t in sweeps:
        t.start()
    for t in sweeps:
        t.join()
    assert len(events(world)) == 1 and world.deps.store.outbox(did, rid) == []


def test_what_runs_where_keeps_the_order_the_slot_was_seen_in_not_the_order_changes_commit(world: World) -> None:
    dev = stage("Dev", steps=[{"type": "wait", "seconds": 0}], slot="dev")
    did = int(world.define([dev])["id"])
    older, newer = world.release(did, "1.0.0"), world.release(did, "2.0.0")
    target = Target.from_dict(dev["target"])
    now = world.clock.now()

    def seen(release: Any, version: str, after: int) -> dict[str, Any]:
        settings = {RELEASE_MARK: str(release.id), VERSION_MARK: version}
        return slot_record(target, settings, "deployment", now + timedelta(milliseconds=after))

    # the newer write was read last, but its change commits first
    apply(world.deps, did, newer.id, CompleteStep("Dev", 1, 0, 1, True, "ok", (seen(newer, "2.0.0", 157),)))
    apply(world.deps, did, older.id, CompleteStep("Dev", 1, 0, 1, True, "ok", (seen(older, "1.0.0", 0),)))
    [where] = what_runs_where(world.deps, did)["stages"]
    assert where["recorded"]["releaseId"] == newer.id and where["recorded"]["version"] == "2.0.0"
    assert [e["type"] for e in releases.events(world.deps, older.id)].count("slotChanged") == 1  # history keeps it

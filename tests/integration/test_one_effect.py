"""One effect per change: the handler that commits a change sends its outbox; a command that changes
nothing sends nothing; the sweeper sends only what a dead handler left, claimed so that one sweeper
sends it once."""

from __future__ import annotations

import threading
from typing import Any

from shared import bootstrap
from shared.config import EVENTS_QUEUE, STEPS_QUEUE
from shared.messages import RunStep, WakeUp, encode
from shared.records import Changes
from shared.services import outbox, sweeper
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

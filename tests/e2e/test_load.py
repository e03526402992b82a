"""Thirty releases at once, through Tailspin's four stages, with no queue policy and eight concurrent
creators: every creation succeeds, every step run acts once on the engine, every swap is recorded,
and what Slipway says runs where is what the slots run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.e2e import reliability

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # thirty releases one stage at a time, under load
RELEASES = 30


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as running:
        assert running.emulator is not None
        running.emulator.restart_seconds = running.emulator.deploy_seconds = 0.1
        yield running


def test_thirty_releases_at_once_act_once_each_and_are_recorded_as_the_slots_run(stack: LocalStack) -> None:
    run = reliability.create_releases(stack, reliability.define(stack), RELEASES, creators=8)
    assert not run.refused, run.refused  # no 409 from contention on the definition
    assert len(run.ids) == RELEASES and len(set(run.ids)) == RELEASES
    released = reliability.wait_settled(stack, run, timeout=900)  # correctness, not speed: bench/load.py times it
    figures = reliability.check(stack, run, released)
    names = sorted(int(r["name"].rsplit("-", 1)[1]) for r in released.values())
    assert names == list(range(names[0], names[0] + RELEASES))  # gapless release names
    assert figures["swaps"] == RELEASES and figures["deployments"] == 4 * RELEASES
    print(f"\nload test: {figures}; created in {run.created_seconds:.1f} s")

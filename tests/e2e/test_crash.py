"""The Functions host killed by pid (SIGKILL) right after each swap App Service makes for it, and at
random moments, then started again on the same Azurite: no swap done twice, every swap recorded,
each deployment step acts at most once per run it was sent, and every release settles soon after the
last restart.

The host runs in a process of its own (`local/host_process.py`); the emulators and Azurite stay up,
as Azure does. The step lease is 6 s and the sweep every 2 s here (30 s and 15 s in Azure), so the
bound this test holds, lease + sweep + polling, is about 10 s per crash instead of about a minute.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.stack import LocalStack
from tests.e2e import reliability

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
RELEASES = 6
LEASE, SWEEP = 6, 2


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    settings = {"SLIPWAY_STEP_LEASE_SECONDS": str(LEASE), "SLIPWAY_SWEEP_SCHEDULE": f"*/{SWEEP} * * * * *"}
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1, host_process=True,
                    extra_settings=settings) as running:
        assert running.emulator is not None
        running.emulator.restart_seconds = running.emulator.deploy_seconds = 0.1
        yield running


class Killer:
    """Kills the host the moment App Service completes a swap for it (inside the emulator's answer, so
    the host never hears that its swap happened), and at random moments; starts it again each time."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.lock = threading.Lock()
        self.kills: list[tuple[str, float]] = []
        self.last_restart = time.monotonic()
        self.stopped = threading.Event()
        self.restarts: list[threading.Thread] = []

    def kill_and_restart(self, why: str) -> None:
        with self.lock:
            host = self.stack.host
            assert host is not None and hasattr(host, "kill")
            host.kill()
            self.kills.append((why, time.monotonic()))
            restart = threading.Thread(target=self._restart, daemon=True)
            self.restarts.append(restart)
            restart.start()

    def settle(self) -> None:
        """Stop killing, and wait until the host is up again."""
        self.stopped.set()
        for restart in list(self.restarts):
            restart.join()

    def _restart(self) -> None:
        with self.lock:
            host = self.stack.host
            assert host is not None and hasattr(host, "start")
            host.start()
            self.last_restart = time.monotonic()

    def after_swap(self, swap: dict[str, Any]) -> None:
        self.kill_and_restart(f"after the swap that put release {swap['runs'].get('production')} in production")

    def at_random(self, times: int, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(times):
            if self.stopped.wait(rng.uniform(2.0, 6.0)):
                return
            self.kill_and_restart("at random")


def test_a_host_killed_after_every_swap_and_at_random_swaps_once_and_records_every_swap(stack: LocalStack) -> None:
    assert stack.emulator is not None
    killer = Killer(stack)
    did = reliability.define(stack)
    run = reliability.create_releases(stack, did, RELEASES, creators=3)
    stack.emulator.on_swap = killer.after_swap
    randomly = threading.Thread(target=killer.at_random, args=(3, 15), daemon=True)
    randomly.start()
    try:
        released = reliability.wait_settled(stack, run, timeout=600)
    finally:
        stack.emulator.on_swap = None
        killer.settle()
        randomly.join()
        killer.settle()
    assert not run.refused, run.refused
    swaps = [why for why, _ in killer.kills if why.startswith("after the swap")]
    assert len(swaps) == RELEASES and len(killer.kills) >= RELEASES + 1, killer.kills
    assert run.settled_at - killer.last_restart < 120, "every release settles within two minutes of the last restart"
    figures = reliability.check(stack, run, released, allow_redelivered=True)
    assert figures["swaps"] == RELEASES and figures["redelivered"] >= RELEASES
    print(f"\ncrash test: {figures}; {len(killer.kills)} kills; settled {run.settled_at - killer.last_restart:.1f} s "
          f"after the last restart")

"""Benchmark: many releases at once through Tailspin's four stages, and the invariants they keep.

`--releases` builds (200 by default) are published by `--creators` threads at once (8), each a
release of `examples/tailspin-pipeline.json` (Dev, Test, Preprod deploy to their slots, Production
deploys to its staging slot and swaps it in; no queue policy). Prints (never asserts) the figures
and whether each invariant of the load test holds (`tests/e2e/reliability.py`: every creation
succeeds, each deployment step run deploys once, one swap per release, every swap recorded, records
equal to the slots, nothing poisoned), next to the floor measured in the same run: a stage that
changes its slot deploys one release at a time, so all releases cannot settle before the fastest
Production deployment times the number of releases, plus the first release's way to Production.

Run: `python -m bench.load --releases 200` (about 15 minutes on a 2-core machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime

from local.stack import LocalStack
from tests.e2e import reliability


def _duration(deployment: dict[str, object]) -> float:
    start, end = deployment.get("startedOn"), deployment.get("finishedOn")
    if not isinstance(start, str) or not isinstance(end, str):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--creators", type=int, default=8)
    args = parser.parse_args()
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as stack:
        assert stack.emulator is not None
        stack.emulator.restart_seconds = stack.emulator.deploy_seconds = 0.1
        definition_id = reliability.define(stack)
        started = time.monotonic()
        run = reliability.create_releases(stack, definition_id, args.releases, creators=args.creators)
        print(f"created {len(run.ids)} releases in {run.created_seconds:.1f} s from {args.creators} creators; "
              f"refused: {len(run.refused)} {run.refused[:3]}")
        released = reliability.wait_settled(stack, run, timeout=args.releases * 30)
        settled = run.settled_at - started
        stage_times: dict[str, list[float]] = {}
        for release in released.values():
            for stage in release["stages"]:
                stage_times.setdefault(stage["name"], []).extend(_duration(d) for d in stage["deployments"][-1:])
        first = min(released.values(), key=lambda r: r["id"])
        way_in = sum(_duration(s["deployments"][-1]) for s in first["stages"] if s["name"] != "Production")
        floor = min(stage_times["Production"]) * len(run.ids) + way_in
        print(f"all settled {settled:.1f} s after the first creation; floor, same run: {floor:.1f} s "
              f"(fastest Production deployment {min(stage_times['Production']):.2f} s x {len(run.ids)} "
              f"+ the first release's way to Production {way_in:.1f} s)")
        for name, times in stage_times.items():
            print(f"  {name}: deployment median {statistics.median(times):.2f} s, max {max(times):.2f} s")
        try:
            figures = reliability.check(stack, run, released)
            print(f"invariants hold: {figures}")
        except AssertionError as exc:
            print(f"INVARIANT BROKEN: {exc}")


if __name__ == "__main__":
    main()

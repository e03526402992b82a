"""Benchmark: one scheduler tick with one due schedule, among 10, 1,000 and 10,000 definitions'
schedules.

The due index keeps each schedule's next occurrence in the partition of its UTC minute, so a tick
reads the minutes up to now in one range query and touches only what is due. This prints (never
asserts) the storage operations and the time of that tick at each size; they should not grow with
the number of definitions.

Run: `python -m bench.scheduler_tick` (Azurite from `npm install`).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from local.app_service_emulator import AppServiceEmulator
from local.azurite import Azurite
from local.storage_policies import CountingPolicy
from shared import bootstrap
from shared.adapters.table_store import SCHEDULES
from shared.config import EVENTS_QUEUE, Settings
from shared.messages import RegisterSchedules, encode
from shared.schemas.release import ReleaseIn
from shared.services import definitions, releases, scheduler

START = datetime(2026, 11, 24, 2, 59, 30, tzinfo=UTC)
TARGET = {"subscriptionId": "00000000-0000-0000-0000-00000000be00", "resourceGroup": "rg-bench", "site": "bench"}


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def pipeline(name: str) -> dict[str, Any]:
    stage = {"name": "Test", "target": {**TARGET, "slot": "test"}, "steps": [{"type": "wait", "seconds": 0}],
             "trigger": {"type": "schedule", "schedules": [{"cron": "0 3 * * *", "timeZone": "Europe/London"}]}}
    return {"name": name, "artifacts": [{"alias": "app", "source": "bench-app"}], "stages": [stage]}


def filler(connection: str, index_table: str, count: int) -> None:
    """`count` other schedules, due at later minutes of the coming week (as registered schedules are)."""
    table = TableServiceClient.from_connection_string(connection).get_table_client(index_table)
    by_bucket: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for i in range(count):
        at = START + timedelta(minutes=5 + i % (7 * 24 * 60))
        key = f"{1_000_000 + i:010d}|stage|filler|0"
        bucket = "due|" + at.strftime("%Y%m%d%H%M")
        by_bucket.setdefault(bucket, []).append(("upsert", {"PartitionKey": bucket, "RowKey": key,
                                                            "definitionId": 1_000_000 + i, "at": at.isoformat()}))
        by_bucket.setdefault(SCHEDULES, []).append(("upsert", {
            "PartitionKey": SCHEDULES, "RowKey": key, "definitionId": 1_000_000 + i, "kind": "stage",
            "stage": "Test", "cron": "0 3 * * *", "timeZone": "Europe/London", "nextAt": at.isoformat()}))
    for ops in by_bucket.values():
        for start in range(0, len(ops), 100):
            table.submit_transaction(ops[start:start + 100])


def one(size: int, azurite: Azurite, arm: AppServiceEmulator) -> dict[str, Any]:
    suffix = f"b{size}x{int(time.time() * 1000) % 10**8}"
    settings = Settings(storage_connection=azurite.connection_string, table_name=f"Bench{suffix}",
                        packages_container=f"p{suffix}", logs_container=f"l{suffix}", arm_endpoint=arm.url,
                        arm_auth="local-emulator", slot_url_scheme="http")
    counter = CountingPolicy({f"127.0.0.1:{p}": n for n, p in azurite.ports.items()})
    clock = Clock()
    deps = bootstrap.build(settings, storage_policies=[counter], clock=clock)
    bootstrap.use(deps)
    try:
        deps.store.clients.queue("slipway-steps").create_queue()
    except ResourceExistsError:
        pass
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        f"p{suffix}")
    blobs.create_container()
    blobs.upload_blob("bench-app/1.0.zip", b"bench")
    did = definitions.create(deps, pipeline("due one"), by="bench")["id"]
    bootstrap.react(deps, EVENTS_QUEUE, encode(RegisterSchedules(did)))  # what the events queue's trigger does
    digest = hashlib.sha256(b"bench").hexdigest()
    art = {"alias": "app", "version": "1.0", "package": "bench-app/1.0.zip", "sha256": digest}
    releases.create(deps, ReleaseIn(definitionId=did, artifacts=[art]), by="bench")
    filler(azurite.connection_string, f"Bench{suffix}Index", size - 1)
    clock.at = START + timedelta(seconds=40)  # 03:00:10 London (UTC in November)
    counter.reset()
    began = time.perf_counter()
    done = scheduler.tick(deps)
    elapsed = time.perf_counter() - began
    assert [d["result"] for d in done] == ["deployed release 1"], done
    return {"definitions": size, "ops": counter.total, "by": dict(counter.counts), "ms": elapsed * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,10000")
    args = parser.parse_args()
    arm = AppServiceEmulator()
    arm.start()
    arm.add_site(TARGET["subscriptionId"], TARGET["resourceGroup"], TARGET["site"], slots=["test"])
    try:
        with Azurite() as azurite:
            rows = [one(int(size), azurite, arm) for size in args.sizes.split(",")]
    finally:
        arm.stop()
    print(f"{'definitions':>12} {'storage ops':>12} {'tick ms':>9}  operations")
    for row in rows:
        by = ", ".join(f"{k} {v}" for k, v in sorted(row["by"].items()))
        print(f"{row['definitions']:>12} {row['ops']:>12} {row['ms']:>9.1f}  {by}")


if __name__ == "__main__":
    main()

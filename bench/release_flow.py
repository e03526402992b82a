"""Benchmark: releases through three automatic stages on the local stack.

Prints (never asserts) the figures design decision 10 budgets:
- storage operations of Slipway's own clients, per release created and per stage entered,
  counted by an azure-core request hook on every storage client;
- event to action: a stage's deployment finished -> the next stage's first step starts running
  (p50 and p95 over the releases), with the host polling queues every 100 ms at most;
- the import time of `function_app` in a fresh interpreter (median of 5).

Run: `make bench` (or `python -m bench.release_flow --releases 60`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from local.azurite import REPO
from local.stack import LocalStack
from local.storage_policies import CountingPolicy
from shared.adapters.storage_clients import StorageClients
from shared.adapters.table_store import TableStore
from shared.config import Settings

SUB, RG, SITE = "00000000-0000-0000-0000-00000000be00", "rg-bench", "bench-app"
SLOTS = ["dev", "test", "preprod"]


def definition() -> dict[str, Any]:
    stages = []
    for i, slot in enumerate(SLOTS):
        trigger = {"type": "afterRelease"} if i == 0 else {"type": "afterStages", "stages": [SLOTS[i - 1]]}
        stages.append({"name": slot, "target": {"subscriptionId": SUB, "resourceGroup": RG, "site": SITE, "slot": slot},
                       "trigger": trigger,
                       "steps": [{"type": "deploy-package"},
                                 {"type": "http-check", "path": "/health", "intervalSeconds": 1}]})
    return {"name": "Bench", "artifacts": [{"alias": "app", "source": "bench-app"}], "stages": stages}


def import_time() -> list[float]:
    code = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"
    return [float(subprocess.check_output([sys.executable, "-c", code], cwd=REPO, text=True)) for _ in range(5)]


def upload_package(stack: LocalStack) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "examples"))
    from azure.storage.blob import BlobServiceClient
    from build import build_package  # type: ignore[import-not-found]

    data = build_package("1.0.0")
    assert stack.azurite is not None
    container = BlobServiceClient.from_connection_string(stack.azurite.connection_string).get_container_client(
        "packages")
    if not container.exists():
        container.create_container()
    container.upload_blob("bench-app/1.0.0.zip", data, overwrite=True)
    return {"alias": "app", "version": "1.0.0", "package": "bench-app/1.0.0.zip",
            "sha256": hashlib.sha256(data).hexdigest()}


def latencies(stack: LocalStack, release: dict[str, Any]) -> list[float]:
    """For each stage after the first: its first step's start minus the previous stage's finish."""
    out = []
    stages = release["stages"]
    for prev, nxt in zip(stages, stages[1:], strict=False):
        finished = datetime.fromisoformat(prev["deployments"][0]["finishedOn"])
        log = httpx.get(f"{stack.api}/releases/{release['id']}/stages/{nxt['name']}/deployments/1/steps/0/log").text
        started = datetime.fromisoformat(log.split(" started ", 1)[1].split(" ---", 1)[0])
        out.append((started - finished).total_seconds() * 1000)
    return out


def count_per_message(stack: LocalStack, counter: CountingPolicy, did: int,
                      artifact: dict[str, str]) -> list[tuple[str, int]]:
    """Stop the host, create a release, and handle its step messages one by one, counting each."""
    from shared import bootstrap
    from shared.config import STEPS_QUEUE
    from shared.schemas.release import ReleaseIn
    from shared.services import releases, steps

    assert stack.host is not None and stack.azurite is not None
    stack.host.stop()
    deps = bootstrap.deps()
    counter.reset()
    release, _ = releases.create(deps, ReleaseIn(definitionId=did, artifacts=[artifact]), by="bench")  # type: ignore[list-item]
    out = [("create the release (service call)", counter.total)]
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, STEPS_QUEUE,
                                               message_decode_policy=TextBase64DecodePolicy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rel = deps.store.release(did, release.id)[0]
        if all(s.status == "succeeded" for s in rel.stages.values()):
            break
        msg = next(iter(queue.receive_messages(max_messages=1, visibility_timeout=30)), None)
        if msg is None:
            time.sleep(0.05)
            continue
        body = json.loads(msg.content)
        counter.reset()
        outcome = steps.handle(deps, msg.content)
        ops = counter.total
        queue.delete_message(msg)
        after = deps.store.release(did, release.id)[0]
        note = ""
        if after.stages[body["stage"]].status == "succeeded" and outcome == "succeeded":
            note = " (finishes the stage and starts the next)"
        out.append((f"{body['stage']} step {body['step']} run {body['run']}: {outcome}{note}", ops))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    imports = import_time()
    counter = CountingPolicy()
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as stack:
        from shared import bootstrap

        assert stack.emulator is not None and stack.azurite is not None
        stack.emulator.add_site(SUB, RG, SITE, slots=SLOTS)
        counter.hosts = {f"127.0.0.1:{p}": n for n, p in stack.azurite.ports.items()}
        bootstrap.use(bootstrap.build(storage_policies=[counter]))
        did = httpx.post(f"{stack.api}/definitions", json=definition(), timeout=30).json()["id"]
        artifact = upload_package(stack)

        def create() -> int:
            body = {"definitionId": did, "artifacts": [artifact]}
            return int(httpx.post(f"{stack.api}/releases", json=body, timeout=30).json()["id"])

        def finished(release_id: int) -> dict[str, Any]:
            return stack.wait_for(release_id, lambda r: r["stages"][-1]["status"] not in ("notStarted", "inProgress"),
                                  120)

        finished(create())  # warm up: tables, queues and containers exist from here on
        # Storage operations of one release alone, watched from an uncounted client.
        watcher = TableStore(StorageClients(Settings.from_env()), Settings.from_env().table_name)
        counter.reset()
        release_id = create()
        ops = {"create": counter.total}
        counter.reset()
        while (got := watcher.release(did, release_id)) and got[0].stages[SLOTS[-1]].status in ("notStarted",
                                                                                                 "inProgress"):
            time.sleep(0.05)
        ops["run"] = run_ops = counter.total
        single = finished(release_id)
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda _: finished(create()), range(args.releases)))
        lat = sorted(x for r in results for x in latencies(stack, r))
        failed = [r["id"] for r in results if any(s["status"] != "succeeded" for s in r["stages"])]
        per_message = count_per_message(stack, counter, did, artifact)
    print(f"import function_app: median {statistics.median(imports) * 1000:.0f} ms, max {max(imports) * 1000:.0f} ms")
    print(f"storage ops: create release {ops['create']}; run through 3 stages ~{run_ops} "
          f"(~{run_ops / 3:.1f} per stage of 2 steps, ~{run_ops / 6:.1f} per step) -- counted by the request hook")
    print(f"event to action over {len(results)} releases ({len(lat)} transitions, {args.parallel} in parallel): "
          f"p50 {statistics.median(lat):.0f} ms, p95 {lat[int(len(lat) * 0.95) - 1]:.0f} ms, max {lat[-1]:.0f} ms")
    print("storage ops per step message (host stopped, messages handled one by one):")
    for what, ops_count in per_message:
        print(f"  {ops_count:>3}  {what}")
    print(f"releases not fully succeeded: {failed or 'none'}; single release stages: "
          f"{[s['status'] for s in single['stages']]}")


if __name__ == "__main__":
    main()

"""What the load and crash tests (and `bench/load.py`) hold Slipway to, counted on the engine's side:
the App Service emulator's own journal of deployments, settings writes and swaps, the slots as they
are, and the queues, never Slipway's own records alone.

Tailspin's pipeline (`examples/tailspin-pipeline.json`): Dev, Test and Preprod deploy to their slots,
Production deploys to its staging slot and swaps it into production, with no queue policy.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.storage.queue import QueueServiceClient

from local.azurite import REPO
from local.stack import LocalStack

TAILSPIN = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())
TARGET = TAILSPIN["stages"][0]["target"]
DEPLOYED_SLOTS = {"Dev": "dev", "Test": "test", "Preprod": "preprod", "Production": "staging"}
"""Where each stage's deploy-package step writes."""
DEPLOY_STEP = {stage["name"]: next(i for i, s in enumerate(stage["steps"]) if s["type"] == "deploy-package")
               for stage in TAILSPIN["stages"]}


def settled(release: dict[str, Any]) -> bool:
    return all(s["status"] not in ("notStarted", "inProgress", "queued") for s in release["stages"])


@dataclass
class Run:
    """Releases created at once by concurrent creators, and how their creation went."""

    definition_id: int
    ids: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    created_seconds: float = 0.0
    settled_at: float = 0.0


def define(stack: LocalStack) -> int:
    created = httpx.post(f"{stack.api}/definitions", json=TAILSPIN, timeout=30)
    created.raise_for_status()
    assert "warnings" not in created.json(), created.json()["warnings"]
    return int(created.json()["id"])


def create_releases(stack: LocalStack, definition_id: int, count: int, creators: int = 8,
                    version: Callable[[int], str] = lambda i: f"2.0.{i}") -> Run:
    """`count` builds published by `creators` threads at once, each a release (as CI systems building
    several branches do)."""
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    connection = stack.azurite.connection_string
    run = Run(definition_id)

    def publish(i: int) -> httpx.Response:
        return sample_build.publish(version=version(i), source="tailspin-web", api=stack.api,  # type: ignore[no-any-return]
                                    storage_connection=connection)

    started = time.monotonic()
    with ThreadPoolExecutor(creators) as pool:
        for response in pool.map(publish, range(count)):
            if response.status_code == 201 and response.json()["releases"]:
                run.ids.append(int(response.json()["releases"][0]["id"]))
            else:
                run.refused.append(f"{response.status_code} {response.text[:200]}")
    run.created_seconds = time.monotonic() - started
    return run


def wait_settled(stack: LocalStack, run: Run, timeout: float) -> dict[int, dict[str, Any]]:
    """Wait until every release settled, reading one unsettled release a second (oldest first: the
    stages deploy them in that order), so that watching costs the host next to nothing."""
    deadline = time.monotonic() + timeout
    found: dict[int, dict[str, Any]] = {}
    with httpx.Client(timeout=30) as client:
        for rid in sorted(run.ids):
            while True:
                try:
                    found[rid] = client.get(f"{stack.api}/releases/{rid}").json()
                    if settled(found[rid]):
                        break
                except httpx.TransportError:  # the host is down (a crash test killed it): ask again
                    pass
                if time.monotonic() > deadline:
                    _stuck(client, stack, run, found)
                time.sleep(1.0)
    run.settled_at = time.monotonic()
    return found


def _stuck(client: httpx.Client, stack: LocalStack, run: Run, found: dict[int, dict[str, Any]]) -> None:
    for rid in run.ids:
        found[rid] = client.get(f"{stack.api}/releases/{rid}").json()
    stuck = {rid: [(s["name"], s["status"], s.get("waitingFor")) for s in r["stages"]]
             for rid, r in found.items() if not settled(r)}
    history = {rid: [(e["at"][11:23], e["type"], e.get("stage"), e.get("step"), (e.get("message") or "")[:90])
                     for e in client.get(f"{stack.api}/releases/{rid}/events",
                                         params={"top": "1000"}).json()["value"]]
               for rid in list(stuck)[:2]}
    raise AssertionError(f"{len(stuck)} releases not settled: {json.dumps(stuck)[:2000]}\n"
                         f"{json.dumps(history, indent=0)[:12000]}")


def redeliveries(stack: LocalStack, release_id: int) -> Counter[tuple[str, int]]:
    """Step runs the sweeper sent again for a release, by (stage, step): each may have acted once more."""
    events = httpx.get(f"{stack.api}/releases/{release_id}/events", params={"top": "1000"}, timeout=30).json()
    return Counter((e["stage"], e["step"]) for e in events["value"] if e["type"] == "stepRedelivered")


def check(stack: LocalStack, run: Run, releases: dict[int, dict[str, Any]], *,
          allow_redelivered: bool = False) -> dict[str, Any]:
    """Assert the invariants; return the figures. With `allow_redelivered`, a deployment step run the
    sweeper sent again (its host was killed) may have written its slot once more, never more."""
    assert stack.emulator is not None
    site = stack.emulator.sites[(TARGET["subscriptionId"].lower(), TARGET["resourceGroup"].lower(),
                                 TARGET["site"].lower())]
    ids = set(run.ids)
    failed = {rid: [(s["name"], s["status"]) for s in r["stages"]] for rid, r in releases.items()
              if any(s["status"] != "succeeded" for s in r["stages"])}
    assert not failed, f"releases that did not succeed everywhere: {failed}"
    extra = {rid: redeliveries(stack, rid) for rid in ids} if allow_redelivered else {rid: Counter() for rid in ids}
    digest_of = {rid: releases[rid]["artifacts"][0]["sha256"] for rid in ids}
    release_of = {d: rid for rid, d in digest_of.items()}

    # One deployment per step run: the slots' deployment endpoints, by package.
    for stage, slot in DEPLOYED_SLOTS.items():
        kudu = site.slots[slot].kudu
        assert kudu is not None
        by_package = Counter(hashlib.sha256(d.data).hexdigest() for d in kudu.deployments)
        for digest, n in by_package.items():
            if digest in release_of:
                rid = release_of[digest]
                allowed = 1 + extra[rid][(stage, DEPLOY_STEP[stage])]
                assert n <= allowed, f"release {rid} deployed {n} times to {slot} (allowed {allowed})"
        missing = [rid for rid in ids if by_package[digest_of[rid]] == 0]
        assert not missing, f"releases never deployed to {slot}: {missing}"

    # One marking settings write per deployment: what a second run of a step would write again.
    marks = Counter(entry for entry in stack.emulator.settings_log if entry[1] is not None and int(entry[1]) in ids)
    for stage, slot in DEPLOYED_SLOTS.items():
        resource = next(r for r, _ in marks if r.endswith(f"/slots/{slot}"))
        for rid in ids:
            n = marks[(resource, str(rid))]
            allowed = 1 + extra[rid][(stage, DEPLOY_STEP[stage])]
            assert 1 <= n <= allowed, f"release {rid}: {n} settings writes marking {slot} (allowed {allowed})"

    # Every release swapped into production exactly once, and every swap recorded by the release.
    swaps = [s for s in stack.emulator.swap_log if s["site"] == TARGET["site"].lower()]
    into_production = Counter(int(s["runs"]["production"]) for s in swaps)
    assert set(into_production) == ids and set(into_production.values()) == {1}, into_production
    for rid in ids:
        events = httpx.get(f"{stack.api}/releases/{rid}/events", params={"top": "1000"}, timeout=30).json()["value"]
        assert any(e["type"] == "slotChanged" and e["stage"] == "Production"
                   and f"{TARGET['site']} now runs release {rid} " in e["message"] for e in events), \
            f"release {rid}'s swap into production is not recorded"

    # What Slipway records runs where is what the slots run.
    where = httpx.get(f"{stack.api}/definitions/{run.definition_id}/environments", params={"verify": "true"},
                      timeout=30).json()
    drift = {s["stage"]: (s["recorded"], s["actual"]) for s in where["stages"] if s["drift"] is not False}
    assert not drift, f"recorded is not what runs: {drift}"
    for name, slot in site.slots.items():
        recorded = next((r for r in where["slots"] if r["slot"].lower().endswith(
            f"/sites/{TARGET['site']}" if name == "production" else f"/slots/{name}")), None)
        running = slot.settings.get("SLIPWAY_RELEASE_ID")
        assert (recorded or {}).get("releaseId") == (int(running) if running else None), (name, recorded, running)

    # Nothing poisoned.
    assert stack.azurite is not None
    queues = QueueServiceClient.from_connection_string(stack.azurite.connection_string)
    poisoned = {q.name: len(queues.get_queue_client(q.name).peek_messages(max_messages=32))
                for q in queues.list_queues() if q.name.endswith("-poison")}
    assert not any(poisoned.values()), poisoned
    return {"releases": len(ids), "swaps": len(swaps), "deployments": sum(
        len(site.slots[s].kudu.deployments) for s in DEPLOYED_SLOTS.values()),  # type: ignore[union-attr]
        "redelivered": sum(sum(c.values()) for c in extra.values())}

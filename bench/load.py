"""Benchmark: many releases at once through four stages with an approval and a gate, and the invariants they keep.

`--releases` builds (200 by default) are published by `--creators` threads at once (8), each a release
of Tailspin's pipeline (`examples/tailspin-pipeline.json`: Dev, Test, Preprod deploy to their slots,
Production deploys to its staging slot and swaps it in), whose last stage here also has a
pre-deployment approval (given by this benchmark through the API as the approver, acting as them in
development mode, when the approval mail arrives) and a post-deployment gate of three samples (a REST
probe of the production slot's `/health`, one second apart, steady for 1.5 s). Prints (never asserts),
each next to its floor measured in the same run:

- throughput: releases settled per minute; floor: a stage that changes its slot deploys one release at
  a time, so all cannot settle before the fastest Production deployment times the releases, plus the
  first release's way to Production;
- event to action under load, p50/p95/p99: the event a stage's first step waited for (its previous
  stage finished, the release ahead of it left the stage's lane, or its approval was given) -> that
  step's handler running (its log's first line); floor: Azurite's time per operation (idle, and
  probed during the load) x the operations on a transition's path (counted on one release alone
  before the load, as `bench/release_flow.py` does) + half the host's polling interval;
- storage operations per release (Slipway's own clients, counted by an azure-core request hook; the
  benchmark's own watching reads storage through an uncounted client), next to one release alone
  and the budget of 80;
- the invariants: one successful attempt per stage, no step run handled twice (its log), every
  gate passed (and how many samples each took), nothing poisoned, the slots end on the newest
  release (the last created), and `tests/e2e/reliability.py`'s checks on the App Service
  emulator's journal.

Run: `python -m bench.load --releases 200` (`make bench-load`).
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from bench.release_flow import POLLING, TimedCounter, azurite_op_ms
from local.azurite import REPO
from local.stack import LocalStack
from local.storage_policies import TableLimitsPolicy
from shared.adapters.storage_clients import StorageClients
from shared.adapters.table_store import TableStore
from shared.config import Settings
from tests.e2e import reliability

APPROVER = "approver@contoso.com"
ACTING_AS = {"X-Slipway-Acting-As": APPROVER}  # development mode: anyone may act as anyone, visibly
BUDGET = 80
"""Storage operations a 4-stage release with an approval and a gate may cost (issue 21)."""
GATE_SAMPLES = 3
IDLE_SECONDS = 10.0
"""How long the benchmark counts the storage operations of an idle stack (its timers) before the load."""
UNSETTLED = ("notStarted", "inProgress", "queued")


def definition(stack: LocalStack) -> dict[str, Any]:
    """Tailspin, its Production with an approval before and a gate of three samples after."""
    assert stack.emulator is not None
    pipeline: dict[str, Any] = copy.deepcopy(reliability.TAILSPIN)
    pipeline["name"] = "Tailspin under load"
    production = pipeline["stages"][-1]
    target = production["target"]
    url = stack.emulator.slot_urls(target["subscriptionId"], target["resourceGroup"], target["site"])["production"]
    production["preApprovals"] = {"approvers": [APPROVER], "policy": "anyOne"}
    interval = 1 / 60  # the local stack's shortest sampling interval (SLIPWAY_GATE_MIN_INTERVAL_SECONDS=1)
    production["postGates"] = {
        "signals": [{"name": "health", "type": "rest", "url": f"{url}/health", "expectStatus": 200}],
        "delayMinutes": 0, "intervalMinutes": interval, "timeoutMinutes": 2,
        # Steady for two intervals: passes on the third sample (on the second only if it came a whole
        # interval late, as it may under load; the benchmark prints how many each gate took).
        "minimumSuccessMinutes": interval * (GATE_SAMPLES - 1)}
    return pipeline


class Approver(threading.Thread):
    """Reads the approval mails the mail sink catches and approves each release through the API."""

    def __init__(self, stack: LocalStack, release_of: dict[str, int]) -> None:
        super().__init__(daemon=True, name="approver")
        self.stack, self.release_of = stack, release_of
        """Release id by its artifact's version (the mail names the version)."""
        self.stopped = threading.Event()
        self.approved: set[int] = set()
        self.problems: list[str] = []

    def run(self) -> None:
        assert self.stack.mail is not None
        seen = 0
        with httpx.Client(timeout=30, headers=ACTING_AS) as client:
            while not self.stopped.wait(0.02):
                mails = self.stack.mail.messages[seen:]
                seen += len(mails)
                for mail in mails:
                    found = re.search(r"\(web ([^,)]+)\) waits for your pre-deployment approval", mail["text"])
                    if APPROVER in mail["to"] and found:
                        self._approve(client, found[1])

    def _approve(self, client: httpx.Client, version: str) -> None:
        for _ in range(50):  # creation may not have recorded the version yet; an ETag may be stale
            rid = self.release_of.get(version)
            if rid is None:
                time.sleep(0.05)
                continue
            url = f"{self.stack.api}/releases/{rid}"
            tag = client.get(url).headers.get("ETag", "")
            answer = client.post(f"{url}/stages/Production/approvals/pre", json={"decision": "approve"},
                                 headers={"If-Match": tag})
            if answer.status_code == 200:
                self.approved.add(rid)
                return
            if answer.status_code != 412:
                self.problems.append(f"release {rid}: {answer.status_code} {answer.text[:200]}")
                return
        self.problems.append(f"version {version}: never approved")


class Prober(threading.Thread):
    """Azurite's time per table read while the load runs (its own client, uncounted)."""

    def __init__(self, connection: str) -> None:
        super().__init__(daemon=True, name="prober")
        from azure.data.tables import TableClient

        self.table = TableClient.from_connection_string(connection, "benchprobe")
        self.table.create_table()
        self.table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "body": "x" * 2000})
        self.stopped = threading.Event()
        self.times: list[float] = []

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            t = time.perf_counter()
            self.table.get_entity("p", "r")
            self.times.append((time.perf_counter() - t) * 1000)


def publish(stack: LocalStack, versions: list[str], creators: int, release_of: dict[str, int]) -> list[str]:
    """Publish a build of each version from `creators` threads at once; return the refusals."""
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    connection = stack.azurite.connection_string

    def one(version: str) -> str | None:
        response = sample_build.publish(version=version, source="tailspin-web", api=stack.api,
                                        storage_connection=connection)
        if response.status_code == 201 and response.json()["releases"]:
            release_of[version] = int(response.json()["releases"][0]["id"])
            return None
        return f"{response.status_code} {response.text[:200]}"

    with ThreadPoolExecutor(creators) as pool:
        return [refused for refused in pool.map(one, versions) if refused]


def wait_settled(watcher: TableStore, did: int, ids: list[int], timeout: float) -> None:
    """Until every release settled, reading the oldest unsettled one every half second through an
    uncounted client (the stages deploy the releases about in that order)."""
    deadline = time.monotonic() + timeout
    for rid in sorted(ids):
        while (got := watcher.release(did, rid)) is None or any(
                str(s.status) in UNSETTLED for s in got[0].stages.values()):
            if time.monotonic() > deadline:
                stages = {name: (str(s.status), s.current.phase if s.current else None)
                          for name, s in got[0].stages.items()} if got else None
                raise TimeoutError(f"release {rid} did not settle within {timeout:.0f} s: {stages}")
            time.sleep(0.5)


def logs(stack: LocalStack, releases: dict[int, dict[str, Any]]) -> dict[tuple[int, str, int], str]:
    """Every step log of every release's last deployment of each stage."""
    wanted = [(r["id"], s["name"], len(s["deployments"]), i) for r in releases.values() for s in r["stages"]
              for i in range(len(s["deployments"][-1]["steps"]))]
    with httpx.Client(timeout=30) as client:
        def get(key: tuple[int, str, int, int]) -> str:
            rid, stage, attempt, step = key
            return client.get(f"{stack.api}/releases/{rid}/stages/{stage}/deployments/{attempt}/steps/{step}/log").text

        with ThreadPoolExecutor(4) as pool:
            texts = list(pool.map(get, wanted))
    return {(rid, stage, step): text for (rid, stage, _, step), text in zip(wanted, texts, strict=True)}


def first_start(log: str) -> datetime | None:
    found = re.search(r"--- run \d+ started (\S+) ---", log)
    return datetime.fromisoformat(found[1]) if found else None


def _starts(step_logs: dict[tuple[int, str, int], str]) -> dict[tuple[int, str], datetime | None]:
    """When each release's first step of each stage began running, by (release, stage)."""
    return {(rid, stage): first_start(text) for (rid, stage, step), text in step_logs.items() if step == 0}


def event_to_action(releases: dict[int, dict[str, Any]],
                    step_logs: dict[tuple[int, str, int], str]) -> dict[str, list[float]]:
    """Milliseconds from the event each stage's first step waited for last to its handler running, by
    the event: the previous stage finished, the release ahead left the lane, the approval was given."""
    out: dict[str, list[float]] = {}
    names = [s["name"] for s in next(iter(releases.values()))["stages"]]
    starts = {key: at for key, at in _starts(step_logs).items() if key[0] in releases}
    for i, name in enumerate(names):
        order = sorted((at, rid) for (rid, n), at in starts.items() if n == name and at is not None)
        for (_, ahead), (started, rid) in zip([(None, None), *order], order, strict=False):
            events: list[tuple[datetime, str]] = []
            if i > 0:
                before = releases[rid]["stages"][i - 1]["deployments"][-1]
                events.append((datetime.fromisoformat(before["finishedOn"]), "stage finished"))
            if ahead is not None:
                gone = next(s for s in releases[ahead]["stages"] if s["name"] == name)["deployments"][-1]
                events.append((datetime.fromisoformat(gone["finishedOn"]), "lane freed"))
            dep = releases[rid]["stages"][i]["deployments"][-1]
            votes = ((dep.get("approvals") or {}).get("pre") or {}).get("votes") or []
            events += [(datetime.fromisoformat(v["at"]), "approval given") for v in votes]
            if not events:
                continue  # the first release's first stage: waited for its creation only
            at, kind = max(events)
            out.setdefault(kind, []).append((started - at).total_seconds() * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(len(ordered) * p)) - 1))]


def check(stack: LocalStack, run: reliability.Run, releases: dict[int, dict[str, Any]],
          step_logs: dict[tuple[int, str, int], str]) -> list[str]:
    """Every invariant broken, in words (none: all hold)."""
    broken = []
    for rid, release in releases.items():
        for stage in release["stages"]:
            outcomes = [d["status"] for d in stage["deployments"]]
            if outcomes != ["succeeded"]:
                broken.append(f"release {rid} {stage['name']}: attempts {outcomes}, not one that succeeded")
        gate = release["stages"][-1]["deployments"][-1].get("gates", {}).get("post") or {}
        if gate.get("status") != "succeeded":
            broken.append(f"release {rid}: gate {gate.get('status')} after {gate.get('sampleCount')} samples")
    for (rid, stage, step), text in step_logs.items():
        runs = Counter(re.findall(r"--- run (\d+) started", text))
        if not runs or any(n > 1 for n in runs.values()):
            broken.append(f"release {rid} {stage} step {step}: runs handled {dict(runs)}")
    assert stack.emulator is not None
    target = reliability.TARGET
    site = stack.emulator.sites[(target["subscriptionId"].lower(), target["resourceGroup"].lower(),
                                 target["site"].lower())]
    # The newest is the release created last: its name's number counts creations as they committed (an id is
    # taken before a creation that lost a race on the definition commits again, so ids may come out of order).
    newest = max(run.ids, key=lambda rid: int(releases[rid]["name"].rsplit("-", 1)[1]))
    for slot, stage in (("dev", "Dev"), ("test", "Test"), ("preprod", "Preprod"), ("production", "Production")):
        running = site.slots[slot].settings.get("SLIPWAY_RELEASE_ID")
        if running != str(newest):
            order = sorted((at, rid) for (rid, name), at in _starts(step_logs).items() if name == stage and at)
            named = [f"{rid}: {releases[rid]['name']}" for _, rid in order]
            broken.append(f"slot {slot} runs release {running}, not the newest ({newest}); {stage} deployed the "
                          f"releases in this order (id: name): {named}")
    try:
        reliability.check(stack, run, releases)  # engine's journal, records = slots, nothing poisoned
    except AssertionError as exc:
        broken.append(f"reliability: {str(exc)[:1000]}")
    return broken


def by_row(calls: list[tuple[datetime, float, str]]) -> Counter[str]:
    """Storage calls by what they touch: a queue, a container, a transaction, a query of a table, or a
    table's row by the first part of its key (`release`, `lane`, `outbox`, an index's partition)."""
    out: Counter[str] = Counter()
    for _, _, what in calls:
        service, method, path = (what.split(" ", 2) + ["", ""])[:3]
        parts = path.split("/")
        if service in ("queue", "blob"):
            out[f"{service} {method} {parts[2] if len(parts) > 2 else path}"] += 1
            continue
        if "$batch" in path:
            out["table transaction"] += 1
            continue
        found = re.search(r"/(\w+)\((.*)\)?$", path)
        if found is None:
            out[f"{service} {method} {parts[-1]} (insert)"] += 1
            continue
        table, keys = found[1], found[2] or ""
        pk = re.search(r"PartitionKey='([^'|]*)", keys)
        rk = re.search(r"RowKey='([^'|]*)", keys)
        if not keys.strip(")"):
            out[f"table {method} {table} (query)"] += 1
        else:
            where = pk[1] if pk and not pk[1].isdigit() else (rk[1] if rk else "?")
            out[f"table {method} {table} {where}"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--creators", type=int, default=8)
    args = parser.parse_args()
    counter = TimedCounter()
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=POLLING) as stack:
        from shared import bootstrap

        assert stack.emulator is not None and stack.azurite is not None
        stack.emulator.restart_seconds = stack.emulator.deploy_seconds = 0.1
        op_ms = azurite_op_ms(stack.azurite.connection_string)
        counter.hosts = {f"127.0.0.1:{p}": n for n, p in stack.azurite.ports.items()}
        bootstrap.use(bootstrap.build(storage_policies=[TableLimitsPolicy(), counter]))
        settings = Settings.from_env()
        watcher = TableStore(StorageClients(settings), settings.table_name)
        created = httpx.post(f"{stack.api}/definitions", json=definition(stack), timeout=30)
        created.raise_for_status()
        did = int(created.json()["id"])
        release_of: dict[str, int] = {}
        approver = Approver(stack, release_of)
        approver.start()

        # One release alone first: its storage operations, and those on a transition's path.
        counter.reset()
        assert not publish(stack, ["1.0.0"], 1, release_of)
        alone_id = release_of["1.0.0"]
        wait_settled(watcher, did, [alone_id], 120)
        alone_ops, alone_kinds, alone_rows = counter.total, dict(counter.counts), by_row(counter.calls)
        alone_timers = counter.by_timers
        alone = httpx.get(f"{stack.api}/releases/{alone_id}", timeout=30).json()
        alone_logs = logs(stack, {alone_id: alone})
        path_ops, hops = [], []
        for prev, nxt in zip(alone["stages"][:-2], alone["stages"][1:-1], strict=True):  # no approval between
            finished = datetime.fromisoformat(prev["deployments"][0]["finishedOn"])
            started = first_start(alone_logs[(alone_id, nxt["name"], 0)])
            assert started is not None
            path_ops.append(counter.between(finished, started))
            hops.append(counter.queued_between(finished, started))

        # What the host's timers cost with nothing in flight, to tell them from the releases' own.
        counter.reset()
        time.sleep(IDLE_SECONDS)
        idle_rate = counter.total / IDLE_SECONDS

        # The load.
        prober = Prober(stack.azurite.connection_string)
        prober.start()
        counter.reset()
        started_at = time.monotonic()
        refused = publish(stack, [f"2.0.{i}" for i in range(args.releases)], args.creators, release_of)
        created_seconds = time.monotonic() - started_at
        ids = [rid for version, rid in release_of.items() if version != "1.0.0"]
        print(f"created {len(ids)} releases in {created_seconds:.1f} s from {args.creators} creators; "
              f"refused: {len(refused)} {refused[:3]}")
        wait_settled(watcher, did, ids, args.releases * 30)
        settled_seconds = time.monotonic() - started_at
        load_ops, by_kind, load_rows = counter.total, dict(counter.counts), by_row(counter.calls)
        load_timers = counter.by_timers
        prober.stopped.set()
        approver.stopped.set()

        with httpx.Client(timeout=30) as client:
            releases = {rid: client.get(f"{stack.api}/releases/{rid}").json() for rid in [alone_id, *ids]}
        step_logs = logs(stack, releases)
        lat = event_to_action({rid: releases[rid] for rid in ids}, step_logs)
        run = reliability.Run(did, ids=[alone_id, *ids])
        broken = check(stack, run, releases, step_logs)

    durations = {name: [(datetime.fromisoformat(s["deployments"][-1]["finishedOn"])
                         - datetime.fromisoformat(s["deployments"][-1]["startedOn"])).total_seconds()
                        for r in releases.values() if r["id"] in ids for s in r["stages"] if s["name"] == name]
                 for name in ("Dev", "Test", "Preprod", "Production")}
    first = releases[min(ids)]
    way_in = sum((datetime.fromisoformat(s["deployments"][-1]["finishedOn"])
                  - datetime.fromisoformat(s["deployments"][-1]["startedOn"])).total_seconds()
                 for s in first["stages"][:-1])
    floor_seconds = min(durations["Production"]) * len(ids) + way_in
    print(f"throughput: {len(ids)} releases settled {settled_seconds:.1f} s after the first creation: "
          f"{len(ids) / settled_seconds * 60:.1f} releases/min; floor, same run: {floor_seconds:.1f} s "
          f"({len(ids) / floor_seconds * 60:.1f}/min: fastest Production deployment "
          f"{min(durations['Production']):.2f} s x {len(ids)} + the first release's way to Production {way_in:.1f} s)")
    for name, times in durations.items():
        print(f"  {name}: deployment (lane granted -> finished) median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s")
    per_op = statistics.mean(op_ms.values())
    loaded_op = statistics.median(prober.times) if prober.times else per_op
    # The fewest: a window counts whatever else ran in it too (a timer), never fewer than the path's own.
    # A stage's first step handed over by the handler that finished the stage before it has no queue hop: its
    # floor is the operations on its path. A step started by a message (the lane's turn, an approval) adds the
    # host's receive and half the polling interval.
    on_path = min(path_ops)
    handed_over = not any(hops)

    def floor(op: float, queued: bool = True) -> float:
        return op * (on_path + (1 if queued else 0)) + (POLLING * 1000 / 2 if queued else 0)

    def floor_of(kind: str, op: float) -> float:
        if kind == "lane freed" and handed_over:  # the leaving release's handler reads the next one, lets it in
            return op * (on_path + 2)             # with one write, and runs its first step itself
        return floor(op, queued=not (kind == "stage finished" and handed_over))

    every = [x for values in lat.values() for x in values]
    show: Callable[[list[float]], str] = lambda v: (  # noqa: E731
        f"p50 {pct(v, 0.5):.0f} ms, p95 {pct(v, 0.95):.0f} ms, p99 {pct(v, 0.99):.0f} ms")
    print(f"event to action under load ({len(every)} first steps): {show(every)}; floor, same run: "
          f"{floor(per_op):.0f} ms idle ({per_op:.2f} ms per Azurite operation x {on_path:g} operations + "
          f"{POLLING * 1000 / 2:.0f} ms half polling), {floor(loaded_op):.0f} ms under this load "
          f"({loaded_op:.2f} ms per table read, probed every 0.5 s); p95 / floor under load "
          f"{pct(every, 0.95) / floor(loaded_op):.1f}x (goal 1.5x)")
    for kind, values in sorted(lat.items()):
        own = floor_of(kind, loaded_op)
        print(f"  after {kind} ({len(values)}): {show(values)}; floor under this load {own:.0f} ms"
              f"{' (handed over, no queue hop)' if own < floor(loaded_op) else ''}; p95 / floor "
              f"{pct(values, 0.95) / own:.1f}x")
    print("azurite per operation, idle (median): " + ", ".join(f"{k} {v:.2f} ms" for k, v in op_ms.items()))
    print(f"storage operations per release under load: {load_ops / len(ids):.1f} ({load_ops} over {len(ids)}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
          + f"); without the idle stack's timers ({idle_rate:.1f} operations/s over {IDLE_SECONDS:g} s idle "
          f"x {settled_seconds:.0f} s): "
          f"{(load_ops - idle_rate * settled_seconds) / len(ids):.1f}; by the releases' own handlers (the timers' "
          f"{load_timers} left out, the sweeper's reads of releases in flight among them): "
          f"{(load_ops - load_timers) / len(ids):.1f}; one release alone: {alone_ops - alone_timers} by its own "
          f"handlers (+ {alone_timers} by the host's timers meanwhile); "
          f"on a transition's path: {path_ops}{' (handed over)' if handed_over else ' + 1 host receive'}; "
          f"budget {BUDGET}")
    print("  one release alone, by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(alone_kinds.items())))
    print("  what they read and wrote, per release (one alone / under load):")
    for what in sorted(set(alone_rows) | set(load_rows), key=lambda k: -load_rows.get(k, 0)):
        print(f"    {alone_rows.get(what, 0):>4} / {load_rows.get(what, 0) / len(ids):6.1f}  {what}")
    samples = Counter(r["stages"][-1]["deployments"][-1].get("gates", {}).get("post", {}).get("sampleCount")
                      for r in releases.values())
    print(f"gates: samples each took to pass (samples: gates): {dict(sorted(samples.items(), key=str))}")
    print(f"approvals given by {APPROVER}: {len(approver.approved)}; problems: {approver.problems[:3] or 'none'}")
    if broken:
        print(f"INVARIANTS BROKEN ({len(broken)}):")
        for line in broken[:20]:
            print(f"  {line}")
    else:
        print("invariants hold: one successful attempt per stage, each step run handled once, every gate passed "
              "(samples above), nothing poisoned, the slots end on the newest release, "
              "the engine's journal and records agree (tests/e2e/reliability.py)")


if __name__ == "__main__":
    main()

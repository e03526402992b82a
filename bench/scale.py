"""Benchmark: what each dashboard page and API list costs as one definition's history grows.

100 definitions on Azurite; one of them ("Tailspin 000") gets up to 10,000 releases of history, the
others two each (a recent one, and a quiet one older than all that history: what a pipeline that
has not released for a while looks like next to a busy one). The history is copied from a release
that really ran (Dev, Test, then Production after Tim's approval), timestamps shifted an hour apart,
and written through the table store's own row shapes in 100-row transactions (the partition's
release and event rows, the index's release and approval summaries), so seeding 10,000 takes
seconds rather than the minutes real releases would.

At each size (`--sizes`, 10,1000,10000 by default; the history grows between sizes, newest release
ids stay the same) the metrics rollup's timer runs a round when there is one (as in steady state),
then every route is called in-process as the host calls it, and the benchmark prints its fastest
time of `--repeat` calls and its storage operations (counted by a request hook on every storage
client), then the ratio of the largest size to the smallest (goal: at most 1.2x), next to the floor
measured in the same run: Azurite's median time of one table point read. Prints, never asserts.

Run: `make bench-scale` (or `python -m bench.scale --sizes 10,1000`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode

import function_app  # noqa: F401  (registers the blueprints)
from functions import approvals_api as appr
from functions import dashboard as dash
from functions import definitions_api as defs
from functions import releases_api as rels
from functions.http import page as paged_answer
from functions.identity import encode_principal
from local.azurite import Azurite
from local.storage_policies import CountingPolicy, CrashPolicy
from shared import bootstrap
from shared.adapters import table_store
from shared.adapters.table_store import TableStore
from shared.config import QUEUES, STEPS_POISON_QUEUE, Settings
from shared.domain.release import Release
from shared.domain.transitions.results import Event
from shared.records import Changes, Summary
from shared.services import definitions, releases
from tests.fakes import (
    FakeAppService,
    FakeClock,
    FakeFunctionKeys,
    FakeMailer,
    FakePackages,
    FakeProbe,
    FakeSignals,
)
from tests.integration.conftest import TimeWarpBus, World, stage

DEFINITIONS = 100
TIM = {"X-MS-CLIENT-PRINCIPAL": encode_principal("tim@contoso.com")}
"""A reader, and the Production approver: the inbox shows him what waits for him."""
ROWS_PER_BATCH = 100
"""Table Storage's limit of operations in one transaction."""
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


# -- the world: Slipway's services on Azurite, fakes at the App Service, probe and package ports

def world_on(azurite: Azurite) -> tuple[World, CountingPolicy]:
    suffix = hashlib.sha256(str(time.time()).encode()).hexdigest()[:10]
    settings = Settings(storage_connection=azurite.connection_string, table_name=f"Scale{suffix}",
                        packages_container=f"p{suffix}", logs_container=f"l{suffix}", auth_mode="development",
                        package_store_container=f"s{suffix}", website_auth_enabled="true")
    counter = CountingPolicy({f"127.0.0.1:{port}": name for name, port in azurite.ports.items()})
    deps = bootstrap.build(settings, storage_policies=[counter], clock=FakeClock(), app_service=FakeAppService(),
                           packages=FakePackages(), probe=FakeProbe(), mailer=FakeMailer(), signals=FakeSignals(),
                           function_keys=FakeFunctionKeys())
    clients = deps.store.clients  # type: ignore[attr-defined]
    deps.bus = bus = TimeWarpBus(clients)
    for name in (*QUEUES, STEPS_POISON_QUEUE):
        try:
            clients.queue(name).create_queue()
        except ResourceExistsError:
            pass
    bootstrap.use(deps)
    return World(deps, counter, CrashPolicy(), bus), counter


def pipeline_stages() -> list[dict[str, Any]]:
    production = {**stage("Production", {"type": "afterStages", "stages": ["Test"]}, slot="production"),
                  "preApprovals": {"approvers": ["tim@contoso.com"]}}
    return [stage("Dev"), stage("Test", {"type": "afterStages", "stages": ["Dev"]}), production]


def decide(release_id: int) -> None:
    """Tim approves Production of `release_id` through the API, as he would."""
    etag = releases.read(bootstrap.deps(), release_id)[1]
    status, answer = call(appr.decide_approval, {"If-Match": etag}, {"decision": "approve"}, method="POST",
                          releaseId=release_id, stage="Production", kind="pre")
    assert status == 200, answer


# -- calling the functions as the host does

def call(fn: Callable[[func.HttpRequest], func.HttpResponse], headers: dict[str, str] | None = None,
         body: Any = None, *, method: str = "GET", params: dict[str, str] | None = None,
         **route: Any) -> tuple[int, Any]:
    data = b"" if body is None else json.dumps(body).encode()
    req = func.HttpRequest(method, "http://localhost/api/x", body=data, headers={**TIM, **(headers or {})},
                           params=params or {}, route_params={k: str(v) for k, v in route.items()})
    resp = fn(req)
    text = resp.get_body().decode()
    return resp.status_code, json.loads(text) if resp.mimetype.endswith("json") and text else text


def visit(path: str, params: dict[str, str] | None = None) -> tuple[int, str]:
    req = func.HttpRequest("GET", f"http://localhost/{path}", body=b"", headers=TIM, params=params or {},
                           route_params={"path": path})
    resp = dash.dashboard(req)
    return resp.status_code, resp.get_body().decode()


# -- seeding history through the store's own row shapes

def shifted(value: Any, delta: timedelta) -> Any:
    """`value` with every ISO timestamp in it moved by `delta`."""
    if isinstance(value, dict):
        return {k: shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, delta) for v in value]
    if isinstance(value, str) and ISO.match(value):
        try:
            return (datetime.fromisoformat(value) + delta).isoformat()
        except ValueError:
            return value
    return value


@dataclass
class Template:
    """A release that really ran, and its history: what every seeded release is a copy of."""

    release: dict[str, Any]
    events: list[dict[str, Any]]

    def copy(self, release_id: int, definition_id: int, definition: dict[str, Any], created: datetime,
             ) -> tuple[Release, list[Event]]:
        delta = created - datetime.fromisoformat(self.release["created_at"])
        data = shifted({**self.release, "id": release_id, "definition_id": str(definition_id),
                        "name": f"Release-{release_id}", "definition": definition}, delta)
        data["definition"] = definition  # its own timestamps (modifiedOn) stay as they are
        events = [Event(**{k: v for k, v in e.items() if k != "seq"}) for e in shifted(self.events, delta)]
        release = Release.from_dict(data)
        release.event_seq = len(events)
        return release, events


class Seeder:
    """Writes releases as the store writes them, a hundred rows a transaction."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    def write(self, seeded: list[tuple[Release, list[Event]]]) -> None:
        by_partition: dict[int, list[Any]] = {}
        summaries: dict[str, list[dict[str, Any]]] = {}
        for release, events in seeded:
            changes = Changes(int(release.definition_id), release=release, events=events)
            by_partition.setdefault(changes.definition_id, []).extend(self.store._operations(changes))
            for summary in self.summaries(release):
                summaries.setdefault(summary.list, []).append(index_row(summary))
        for ops in by_partition.values():
            for start in range(0, len(ops), ROWS_PER_BATCH):
                self.store.table.submit_transaction(ops[start:start + ROWS_PER_BATCH])
        for rows in summaries.values():
            for start in range(0, len(rows), ROWS_PER_BATCH):
                self.store.index.submit_transaction([("upsert", r, {"mode": UpdateMode.REPLACE})
                                                     for r in rows[start:start + ROWS_PER_BATCH]])

    @staticmethod
    def summaries(release: Release) -> Iterator[Summary]:
        yield Summary.of_release(release)
        for name, run in release.stages.items():
            for dep in run.deployments:
                for kind, approval in dep.approvals.items():
                    yield Summary.of_approval(release, name, dep, kind, approval)


def index_row(summary: Summary) -> dict[str, Any]:
    """The row `TableStore.put_summary` writes for `summary`."""
    row = {**summary.fields, "PartitionKey": summary.list, "RowKey": table_store._summary_key(summary)}
    if summary.list == "approvals":
        row["approvers"] = "\n".join(summary.fields["approvers"])
    return row


# -- the scenario

@dataclass
class Scene:
    world: World
    counter: CountingPolicy
    store: TableStore
    template: Template
    busy: int
    """The definition whose history grows."""
    quiet: int
    """A definition whose only releases are one recent and one older than all of busy's history."""
    pending: int
    """Busy's newest release: waiting for Tim's approval of Production."""
    history_top: int
    """Busy's newest history release id; history release `i` (0 the newest) has id `history_top - i`."""
    history_base: datetime
    seeded: int = 0

    @property
    def definition(self) -> dict[str, Any]:
        return definitions.current_body(self.world.deps, self.busy)[1]

    def grow(self, size: int, chunk: int = 1000) -> float:
        """Seed busy's history up to `size` releases, older ones below the newest; seconds taken."""
        started = time.perf_counter()
        body, seeder = self.definition, Seeder(self.store)
        while self.seeded < size:
            batch = range(self.seeded, min(size, self.seeded + chunk))
            seeder.write([self.template.copy(self.history_top - i, self.busy, body,
                                             self.history_base - timedelta(hours=i + 1)) for i in batch])
            self.seeded = batch.stop
        return time.perf_counter() - started


def set_up(world: World, counter: CountingPolicy, largest: int) -> Scene:
    """100 definitions, a release of the busy one run for real to copy from, and two releases of
    every other definition (one before any of the busy one's history could be, one recent)."""
    deps, store = world.deps, world.deps.store
    assert isinstance(store, TableStore)
    quiet_ids = DEFINITIONS - 1
    history_top = quiet_ids + largest
    # Reserve ids: the quiet releases first, then the history; real releases come after them.
    store.index.upsert_entity({"PartitionKey": "counters", "RowKey": "release", "value": history_top},
                              mode=UpdateMode.REPLACE)
    ids = [world.define(pipeline_stages(), name=f"Tailspin {n:03d}")["id"] for n in range(DEFINITIONS)]
    busy = ids[0]
    ran = world.release(busy, "1.0.0")
    world.pump()
    decide(ran.id)
    world.pump()
    done = releases.get(deps, ran.id)
    assert done.status == "active" and all(s.status == "succeeded" for s in done.stages.values()), done.stages
    template = Template(done.to_dict(), store.events(busy, done.id))
    pending = world.release(busy, "1.0.1")
    world.pump()
    history_base = datetime.fromisoformat(done.created_at) - timedelta(hours=1)
    oldest = history_base - timedelta(hours=largest + 1)
    seeded = []
    for n, did in enumerate(ids[1:]):
        body = definitions.current_body(deps, did)[1]
        seeded.append(template.copy(n + 1, did, body, oldest - timedelta(hours=n)))
        seeded.append(template.copy(store.next_id("release"), did, body, world.clock.now() - timedelta(minutes=n)))
    Seeder(store).write(seeded)
    return Scene(world, counter, store, template, busy, ids[-1], pending.id, history_top, history_base)


def fold_metrics(deps: Any, limit: int = 5000) -> tuple[int, float] | None:
    """Run the metrics rollup's timer (shared/services/metrics_rollup.py, when there is one) until every
    definition has had a whole pass since the history grew, as the timer would in steady state: (ticks,
    seconds); None without a rollup."""
    try:
        from shared.services import metrics_rollup
    except ImportError:
        return None
    started, passes = time.perf_counter(), 0
    for ticks in range(1, limit + 1):
        passes += getattr(metrics_rollup.tick(deps), "passes", 1)
        if passes > DEFINITIONS:  # the pass under way when the history grew began before it
            return ticks, time.perf_counter() - started
    raise RuntimeError(f"the metrics rollup did not finish a round in {limit} ticks")


def routes(scene: Scene) -> list[tuple[str, Callable[[], tuple[int, Any]]]]:
    busy, quiet, rid = scene.busy, scene.quiet, scene.pending
    deps = scene.world.deps
    older = paged_answer([], releases.newest_page(deps, busy, limit=30, cursor=None)[1])["continuationToken"]
    return [
        ("page  /  (pipelines)", lambda: visit("")),
        (f"page  /pipelines/{busy}  (busy)", lambda: visit(f"pipelines/{busy}")),
        (f"page  /pipelines/{busy}?continuationToken  (page 2, if any)",
         lambda: visit(f"pipelines/{busy}", {"continuationToken": older} if older else {})),
        (f"page  /pipelines/{quiet}  (quiet)", lambda: visit(f"pipelines/{quiet}")),
        (f"page  /releases/{rid}", lambda: visit(f"releases/{rid}")),
        ("page  /approvals  (Tim's)", lambda: visit("approvals")),
        ("page  /approvals?all=1", lambda: visit("approvals", {"all": "1"})),
        (f"page  /pipelines/{busy}/environments", lambda: visit(f"pipelines/{busy}/environments")),
        ("page  /metrics", lambda: visit("metrics")),
        ("GET /api/definitions", lambda: call(defs.definitions_collection)),
        (f"GET /api/releases?definitionId={busy}",
         lambda: call(rels.releases_collection, params={"definitionId": str(busy)})),
        (f"GET /api/releases?definitionId={quiet}",
         lambda: call(rels.releases_collection, params={"definitionId": str(quiet)})),
        ("GET /api/releases", lambda: call(rels.releases_collection)),
        (f"GET /api/releases/{rid}", lambda: call(rels.release_item, releaseId=rid)),
        (f"GET /api/definitions/{busy}/metrics", lambda: call(defs.definition_metrics, definitionId=busy)),
        (f"GET /api/definitions/{busy}/environments",
         lambda: call(defs.definition_environments, definitionId=busy)),
        ("GET /api/approvals?mine=true", lambda: call(appr.list_approvals, params={"mine": "true"})),
        # Not a route: Azurite's own cost of one row-key range query in the busy partition (its slot
        # records), to tell Azurite's scans from Slipway's reads where a route's ops stay the same.
        (f"azurite: one range query in partition {busy}", lambda: (200, scene.store.slot_records(busy))),
    ]


def measure(fn: Callable[[], tuple[int, Any]], counter: CountingPolicy, repeat: int) -> tuple[float, int]:
    """The fastest of `repeat` calls after one warm-up, in milliseconds (other work on a shared machine
    only ever adds time: the minimum is the route's own cost), and the storage operations of one call."""
    status, answer = fn()
    if status != 200:
        raise RuntimeError(f"answered {status}: {str(answer)[:300]}")
    counter.reset()
    fn()
    ops = counter.total
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000, ops


def floor_ms(store: TableStore, definition_id: int, count: int = 200) -> float:
    """Azurite's median time of one table point read (the definition's head), over the store's own client."""
    times = []
    for _ in range(count):
        t = time.perf_counter()
        store.table.get_entity(table_store.pk(definition_id), "definition")
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def report(sizes: list[int], results: dict[str, dict[int, tuple[float, int]]], floors: list[float],
           goal: float) -> None:
    """A row per route: its fastest ms and its ops at each size, then largest vs smallest (the goal) and, with three
    sizes or more, largest vs the one before it (past a page's worth of releases: history alone)."""
    first, last = sizes[0], sizes[-1]
    pairs = [(last, first)] + ([(last, sizes[-2])] if len(sizes) > 2 else [])
    width = max(len(n) for n in results) + 2
    print(f"\n{'route':<{width}}" + "".join(f"{f'{s:,} releases':>20}" for s in sizes)
          + "".join(f"{f'{a:,} vs {b:,}':>20}" for a, b in pairs))
    print(f"{'':<{width}}" + f"{'ms':>12}{'ops':>8}" * len(sizes) + f"{'ms':>12}{'ops':>8}" * len(pairs))
    grew = []
    for name, by_size in results.items():
        cells = "".join(f"{by_size[s][0]:>12.1f}{by_size[s][1]:>8}" for s in sizes)
        ratios = [(by_size[a][0] / by_size[b][0], by_size[a][1] / max(by_size[b][1], 1)) for a, b in pairs]
        flag = "" if max(ratios[0]) <= goal else "  <- over the goal"
        if flag:
            grew.append(name.split("  (")[0])
        print(f"{name:<{width}}{cells}" + "".join(f"{ms:>11.2f}x{ops:>7.2f}x" for ms, ops in ratios) + flag)
    print(f"\nfloor, same run: one Azurite table point read, median {statistics.median(floors):.2f} ms "
          f"(at each size: {', '.join(f'{f:.2f}' for f in floors)} ms); a route's storage share is about ops x floor")
    print(f"goal: every route at {last:,} releases within {goal}x of its time at {first:,}: "
          f"{len(results) - len(grew)} of {len(results)} are" + (f"; over: {', '.join(grew)}" if grew else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000",
                        help="comma-separated history sizes of the busy definition, ascending")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per route and size (the fastest counts)")
    parser.add_argument("--goal", type=float, default=1.2)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    results: dict[str, dict[int, tuple[float, int]]] = {}
    floors = []
    with Azurite() as azurite:
        world, counter = world_on(azurite)
        started = time.perf_counter()
        scene = set_up(world, counter, sizes[-1])
        print(f"{DEFINITIONS} definitions, a release run for real and {2 * (DEFINITIONS - 1)} copies set up in "
              f"{time.perf_counter() - started:.1f} s")
        for size in sizes:
            seconds = scene.grow(size)
            folded = fold_metrics(world.deps)
            floors.append(floor_ms(scene.store, scene.busy))
            named = routes(scene)
            print(f"history of {size:,} releases seeded ({seconds:.1f} s)"
                  + (f", metrics rollup ran {folded[0]} ticks ({folded[1]:.1f} s)" if folded else "")
                  + f"; measuring {len(named)} routes", flush=True)
            for name, fn in named:
                ms, ops = results.setdefault(name, {})[size] = measure(fn, counter, args.repeat)
                print(f"  {name}: {ms:.1f} ms, {ops} ops", flush=True)
        bootstrap.use(None)
    report(sizes, results, floors, args.goal)


if __name__ == "__main__":
    main()

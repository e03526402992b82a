"""Benchmark: releases through three automatic stages on the local stack.

Prints (never asserts) the figures design decision 10 budgets, each next to its floor measured in
the same run:
- a small GET (`/api/health`) to a keep-alive `httpx` client, next to `curl` fetching the same URL
  over one kept-alive connection;
- storage operations of Slipway's own clients, per release created and per stage entered,
  counted by an azure-core request hook on every storage client, and those on the path of one
  transition (a stage finished -> the next stage's first step runs);
- event to action: that transition's p50 and p95 over the releases, next to its floor's p50 and p95:
  the operations on the path (its queries, if any, and one transaction of as many rows) alone, back to
  back, through the same official client in the same process; a step sent through the queue would
  add the host's receive and half the polling interval (the host polls as host.json says: no queue
  is on the path);
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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

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
POLLING = 0.1
"""The host's longest wait between two polls of an empty queue, in seconds (`bench/load.py`, whose releases wait
for approvals and lanes through queues)."""
WATCH_SECONDS = 0.25


class TimedCounter(CountingPolicy):
    """Counts requests, and keeps when each was sent and how long it took, to count (and trace) those inside a
    window."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[datetime] = []
        self.calls: list[tuple[datetime, float, str]] = []
        """(sent, milliseconds to its answer, "service METHOD path") of every request."""
        self.batch_rows: list[tuple[datetime, int]] = []
        """(sent, rows written) of every entity-group transaction."""
        self.by_timers = 0
        """Requests the host's timer functions made (the sweeper, the scheduler, retention): the local host runs
        each timer in a thread named after it."""

    def on_request(self, request: Any) -> None:
        super().on_request(request)
        if threading.current_thread().name.startswith("timer:"):
            with self._lock:
                self.by_timers += 1
        now = datetime.now(UTC)
        self.sent.append(now)
        request.context["bench_sent"] = (now, time.perf_counter())
        body = request.http_request.body
        if isinstance(body, bytes) and b"multipart/mixed" in body:
            with self._lock:  # the rows a transaction writes: one sub-request each
                self.batch_rows.append((now, body.count(b" HTTP/1.1\r\n")))

    def on_answer(self, response: Any) -> None:
        sent = response.context.get("bench_sent")
        if sent is None:
            return
        http = response.http_request
        host = http.url.split("/")[2]
        path = "/" + http.url.split("/", 3)[3].split("?", 1)[0] if http.url.count("/") >= 3 else ""
        what = f"{self.hosts.get(host, host)} {http.method} {unquote(path)[:90]}"
        with self._lock:
            self.calls.append((sent[0], (time.perf_counter() - sent[1]) * 1000, what))

    def reset(self) -> None:
        super().reset()
        self.sent = []
        self.calls = []
        self.batch_rows = []
        self.by_timers = 0

    def between(self, start: datetime, end: datetime) -> int:
        return sum(1 for at in self.sent if start <= at <= end)

    def queued_between(self, start: datetime, end: datetime) -> bool:
        """Was a step message sent in the window (a queue hop), or did the handler hand the step over itself?"""
        return any(start <= at <= end and "queue POST" in what and "slipway-steps" in what
                   for at, _, what in self.calls)

    def trace(self, start: datetime, end: datetime) -> list[str]:
        """Each storage call from `start` (a stage finished) to `end` (the next stage's first step started): when it
        was sent after `start`, how long it took, what it was; and the gaps between them (queue hops, polling)."""
        lines, last = [], start
        for at, took, what in sorted(c for c in self.calls if start - timedelta(milliseconds=50) <= c[0] <= end):
            gap = (at - last).total_seconds() * 1000
            if gap > 5:
                lines.append(f"    {'':>8}   (waiting {gap:.0f} ms: a queue hop or the host's polling)")
            lines.append(f"    +{(at - start).total_seconds() * 1000:7.1f} ms  {took:6.1f} ms  {what}")
            last = at + timedelta(milliseconds=took)
        lines.append(f"    +{(end - start).total_seconds() * 1000:7.1f} ms  the next stage's first step started")
        return lines


def httpx_get_ms(url: str, count: int = 200) -> float:
    """Median milliseconds of a GET of `url` to one keep-alive httpx client."""
    with httpx.Client() as client:
        client.get(url)
        times = []
        for _ in range(count):
            t = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def fixed_answer_server() -> tuple[str, Callable[[], None]]:
    """A socket server answering every request on a connection with the same few bytes: what an
    httpx client costs by itself, with no server work at all."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                while (data := conn.recv(65536)) != b"":
                    if data.endswith(b"\r\n\r\n"):
                        conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/", listener.close


def small_get(url: str, count: int = 200) -> tuple[float, float, float]:
    """Median milliseconds of a GET of `url`: to one keep-alive httpx client; of the same client to a
    server that does nothing (the client's own share); and to curl fetching `url` `count` times over
    one connection (its own `time_total` per transfer, process start excluded)."""
    ours = httpx_get_ms(url, count)
    floor_url, stop = fixed_answer_server()
    client_only = httpx_get_ms(floor_url, count)
    stop()
    each = [arg for _ in range(count + 1) for arg in ("-o", "/dev/null", url)]
    out = subprocess.run(["curl", "-s", "-w", "%{time_total}\\n", *each],
                         capture_output=True, text=True, check=True).stdout.split()
    return ours, client_only, statistics.median(float(x) for x in out[1:]) * 1000


def azurite_op_ms(connection: str, count: int = 100) -> dict[str, float]:
    """Azurite's median time per operation, each over one kept-alive client: a point read, a write, a queue
    send and receive."""
    from azure.data.tables import TableClient, UpdateMode
    from azure.storage.queue import QueueClient as Queue

    table = TableClient.from_connection_string(connection, "benchfloor")
    table.create_table()
    queue = Queue.from_connection_string(connection, "benchfloor")
    queue.create_queue()
    entity = {"PartitionKey": "p", "RowKey": "r", "body": "x" * 2000}
    table.upsert_entity(entity)
    ops = {"table read": lambda: table.get_entity("p", "r"),
           "table write": lambda: table.update_entity(entity, mode=UpdateMode.REPLACE),
           "queue send": lambda: queue.send_message("x" * 200),
           "queue receive": lambda: queue.receive_messages(max_messages=1, visibility_timeout=1).__next__()}
    out = {name: _median_ms(op, count) for name, op in ops.items()}
    table.delete_table()
    queue.delete_queue()
    return out


def path_floor_ms(connection: str, rows: list[dict[str, Any]], reads: int, count: int = 200,
                  ) -> tuple[float, float, str]:
    """The floor of a transition's path: its operations alone, back to back, through the same official client in
    the same process, `count` times: `reads` range queries like the one that reads a stage's lanes (none when the
    path reads nothing: its writer knows the lanes), then the entity-group transaction that writes the release
    with its step's log (`rows`: the rows such a write holds, as the benchmark's release wrote them). Returns its
    p50, its p95 (the path's own operations vary too: the issue puts its floor as a p50 and a p95) and what each
    operation took."""
    from azure.data.tables import TableClient

    table = TableClient.from_connection_string(connection, "benchpath")
    table.create_table()
    table.upsert_entity({"PartitionKey": "p", "RowKey": "lane|a", "body": "x" * 300})
    batch = [("upsert", {**row, "PartitionKey": "p", "RowKey": f"row{i}"}) for i, row in enumerate(rows)]
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    queries, writes, both = [], [], []
    for _ in range(count):
        t = time.perf_counter()
        for _ in range(reads):
            list(table.query_entities(query, parameters={"pk": "p", "lo": "lane|", "hi": "lane}"}))
        m = time.perf_counter()
        table.submit_transaction(batch)
        e = time.perf_counter()
        queries.append((m - t) * 1000)
        writes.append((e - m) * 1000)
        both.append((e - t) * 1000)
    table.delete_table()
    both.sort()
    how = (f"{reads} quer{'y' if reads == 1 else 'ies'} like the lanes' {statistics.median(queries):.2f} ms + "
           if reads else "") + f"a transaction of {len(batch)} rows {statistics.median(writes):.2f} ms (medians)"
    return statistics.median(both), both[int(len(both) * 0.95) - 1], how


def _median_ms(op: Callable[[], Any], count: int) -> float:
    times = []
    for _ in range(count):
        t = time.perf_counter()
        op()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def host_polling_seconds() -> float:
    """The app's own `maxPollingInterval` (host.json). No queue is on the measured path (a stage's next step runs
    in the handler that finished the one before), so polling every 100 ms, as the benchmark once did, only
    loaded the measured process with work the Functions host does in its own process in Azure."""
    from local.host_settings import load_host_json, parse_timespan

    return parse_timespan(load_host_json(REPO)["extensions"]["queues"].get("maxPollingInterval"), 60.0)


def rows_like_the_path(definition_id: int, release_id: int, count: int) -> list[dict[str, Any]]:
    """`count` rows as a transition writes them: the release, its last events, a step's log, the lanes."""
    from azure.data.tables import TableClient

    from shared.adapters.table_store import pk

    settings = Settings.from_env()
    table = TableClient.from_connection_string(settings.storage_connection, settings.table_name)
    rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": pk(definition_id)}))
    key = f"|{release_id:010d}"

    def kind(prefix: str) -> list[dict[str, Any]]:
        return sorted((r for r in rows if str(r["RowKey"]).startswith(prefix)), key=lambda r: str(r["RowKey"]))

    ordered = [*kind(f"release{key}"), *kind(f"event{key}|")[-1:], *kind(f"log{key}|")[-1:], *kind("lane|")]
    return [{k: v for k, v in r.items() if k not in ("PartitionKey", "RowKey")} for r in ordered[:count]]


def definition() -> dict[str, Any]:
    stages = []
    for i, slot in enumerate(SLOTS):
        trigger = {"type": "afterRelease"} if i == 0 else {"type": "afterStages", "stages": [SLOTS[i - 1]]}
        stages.append({"name": slot, "target": {"subscriptionId": SUB, "resourceGroup": RG, "site": SITE, "slot": slot},
                       "trigger": trigger,
                       "steps": [{"type": "deploy-package", "verifyPath": "/health"},
                                 {"type": "http-check", "path": "/health", "intervalSeconds": 1}]})
    return {"name": "Bench", "artifacts": [{"alias": "app", "source": "bench-app"}], "stages": stages}


def import_time(module: str = "function_app") -> list[float]:
    """Seconds to import `module` in a fresh interpreter, five times (`azure.functions` alone is the floor: the
    worker imports it whatever the app)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
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


def transitions(stack: LocalStack, release: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    """For each stage after the first: the previous stage's finish and its first step's start."""
    out = []
    stages = release["stages"]
    for prev, nxt in zip(stages, stages[1:], strict=False):
        finished = datetime.fromisoformat(prev["deployments"][0]["finishedOn"])
        log = httpx.get(f"{stack.api}/releases/{release['id']}/stages/{nxt['name']}/deployments/1/steps/0/log").text
        started = datetime.fromisoformat(log.split(" started ", 1)[1].split(" ---", 1)[0])
        out.append((finished, started))
    return out


def latencies(stack: LocalStack, release: dict[str, Any]) -> list[float]:
    return [(started - finished).total_seconds() * 1000 for finished, started in transitions(stack, release)]


def count_per_message(stack: LocalStack, counter: CountingPolicy, did: int,
                      artifact: dict[str, str]) -> list[tuple[str, int]]:
    """Stop the host, create a release, and handle its step messages one by one, counting each."""
    from shared import bootstrap
    from shared.config import STEPS_QUEUE
    from shared.schemas.release import ReleaseIn
    from shared.services import releases

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
        outcome = bootstrap.react(deps, STEPS_QUEUE, msg.content)
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
    parser.add_argument("--parallel", type=int, default=1,
                        help="releases at once; a stage that deploys runs one release at a time, so above 1 the "
                             "figure includes waiting for the stage")
    args = parser.parse_args()
    imports = import_time()
    counter = TimedCounter()
    polling = host_polling_seconds()  # the host reads it from host.json itself: no override
    with LocalStack(persistent=False, fixed_ports=False, seed=False) as stack:
        from shared import bootstrap

        assert stack.emulator is not None and stack.azurite is not None
        stack.emulator.add_site(SUB, RG, SITE, slots=SLOTS)
        # Slipway's own time is measured, not the emulator's model of App Service's delays.
        stack.emulator.deploy_seconds = stack.emulator.restart_seconds = 0
        httpx_ms, client_ms, curl_ms = small_get(f"{stack.api}/health")
        op_ms = azurite_op_ms(stack.azurite.connection_string)
        counter.hosts = {f"127.0.0.1:{p}": n for n, p in stack.azurite.ports.items()}
        bootstrap.use(bootstrap.build(storage_policies=[counter]))
        did = httpx.post(f"{stack.api}/definitions", json=definition(), timeout=30).json()["id"]
        artifact = upload_package(stack)

        def create() -> int:
            body = {"definitionId": did, "artifacts": [artifact]}
            return int(httpx.post(f"{stack.api}/releases", json=body, timeout=30).json()["id"])

        # Watched from an uncounted client reading the table, not through the API: a page polled every 100 ms
        # would be a load of its own on the host whose transitions are measured. The watcher runs in the measured
        # process, so it looks four times a second, not more.
        watcher = TableStore(StorageClients(Settings.from_env()), Settings.from_env().table_name)

        def finished(release_id: int) -> dict[str, Any]:
            deadline = time.monotonic() + 300
            while (got := watcher.release(did, release_id)) is None or got[0].stages[SLOTS[-1]].status in (
                    "notStarted", "inProgress", "queued"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"release {release_id} did not finish")
                time.sleep(WATCH_SECONDS)
            return dict(httpx.get(f"{stack.api}/releases/{release_id}", timeout=30).json())

        finished(create())  # warm up: tables, queues and containers exist from here on
        # Storage operations of one release alone.
        counter.reset()
        release_id = create()
        ops = {"create": counter.total}
        counter.reset()
        while (got := watcher.release(did, release_id)) and got[0].stages[SLOTS[-1]].status in ("notStarted",
                                                                                                 "inProgress"):
            time.sleep(WATCH_SECONDS)
        ops["run"] = run_ops = counter.total
        single = finished(release_id)
        path_ops = [counter.between(start, end) for start, end in transitions(stack, single)]
        hops = [counter.queued_between(start, end) for start, end in transitions(stack, single)]
        first_hop = transitions(stack, single)[0]
        trace = counter.trace(*first_hop)
        written = [n for at, n in counter.batch_rows if first_hop[0] <= at <= first_hop[1]]
        floor_p50, floor_p95, floor_how = path_floor_ms(stack.azurite.connection_string,
                                                        rows_like_the_path(did, release_id, max(written or [2])),
                                                        reads=max(0, min(path_ops) - 1))
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda _: finished(create()), range(args.releases)))
        lat = sorted(x for r in results for x in latencies(stack, r))
        failed = [r["id"] for r in results if any(s["status"] != "succeeded" for s in r["stages"])]
        per_message = count_per_message(stack, counter, did, artifact)
    per_op = statistics.mean(op_ms.values())
    # A step handed over in the same invocation (SLIPWAY_STEP_CONTINUE_SECONDS) has no queue hop: its floor is the
    # operations on its path, each timed alone through the same official client in the same run (its queries, if
    # any, and the transaction, as many rows as the path's); one sent through the queue adds the host's receive and
    # half the polling interval.
    queued = any(hops)
    if queued:
        on_path = statistics.median(path_ops) + 1
        floor_p50 = floor_p95 = per_op * on_path + polling * 1000 / 2
        floor_how = f"{per_op:.2f} ms x {on_path:g} ops + {polling * 1000 / 2:.0f} ms half polling"
    else:
        floor_how += ", no queue hop: the next stage's first step runs in the handler that finished the stage"
    print(f"small GET /api/health: httpx keep-alive median {httpx_ms:.2f} ms (the same client to a server that "
          f"does nothing: {client_ms:.2f} ms); curl over one connection median {curl_ms:.2f} ms")
    floor_imports = import_time("azure.functions")
    print(f"import function_app: median {statistics.median(imports) * 1000:.0f} ms, max {max(imports) * 1000:.0f} ms "
          f"(floor: azure.functions alone, median {statistics.median(floor_imports) * 1000:.0f} ms; budget 300 ms)")
    print("azurite per operation (median): " + ", ".join(f"{k} {v:.2f} ms" for k, v in op_ms.items()))
    print(f"the host polls every {polling:g} s at most")
    print(f"storage ops: create release {ops['create']}; run through 3 stages ~{run_ops} "
          f"(~{run_ops / 3:.1f} per stage of 2 steps, ~{run_ops / 6:.1f} per step) -- counted by the request hook")
    print(f"storage ops on a transition's path (stage finished -> next step starts): {path_ops}"
          + (" + 1 host receive" if queued else " (handed over in the same invocation)"))
    print("a trace of one transition (the first stage finished -> the second stage's first step started):")
    print("\n".join(trace))
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(f"event to action over {len(results)} releases ({len(lat)} transitions, {args.parallel} in parallel): "
          f"p50 {statistics.median(lat):.0f} ms, p95 {p95:.0f} ms, max {lat[-1]:.0f} ms; floor p50 {floor_p50:.0f} ms, "
          f"p95 {floor_p95:.0f} ms ({floor_how}); p50 / floor {statistics.median(lat) / floor_p50:.1f}x, "
          f"p95 / floor {p95 / floor_p95:.1f}x (goal 1.5x)")
    print("storage ops per step message (host stopped, messages handled one by one):")
    for what, ops_count in per_message:
        print(f"  {ops_count:>3}  {what}")
    print(f"releases not fully succeeded: {failed or 'none'}; single release stages: "
          f"{[s['status'] for s in single['stages']]}")


if __name__ == "__main__":
    main()

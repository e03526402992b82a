"""Gates against Azurite with scripted signals: one provider call per signal per sample through
duplicate messages, Retry-After honoured, the outcome applied, ignore by an admin, the samples on
the release page, and the interval floor."""

from __future__ import annotations

import json
from typing import Any

from shared import bootstrap
from shared.config import EVENTS_QUEUE, GATES_QUEUE
from shared.domain.gates import Reading
from shared.services import releases, sweeper
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

SIGNALS = [{"name": "errors", "type": "metric", "metric": "Http5xx", "aggregation": "Total", "operator": "<=",
            "threshold": 0},
           {"name": "alerts", "type": "alerts"}]
ADMIN = as_("ops@contoso.com", roles=["Slipway.Admin"])


def gated(world: World, **gates: Any) -> int:
    production = {**stage("Production", {"type": "manual"}, steps=[{"type": "wait", "seconds": 0}],
                          slot="production"),
                  "postGates": {"signals": SIGNALS, "intervalMinutes": 1, "timeoutMinutes": 10, **gates}}
    did = int(world.define([production])["id"])
    rid = world.release(did).id
    releases.deploy_stage(world.deps, rid, "Production", by="amita")
    world.pump()
    return int(rid)


def gate_messages(world: World) -> list[Any]:
    return world.receive(GATES_QUEUE)


def deliver(world: World, msg: Any, *, delete: bool = True) -> str:
    world.clock.advance(world.bus.delays.get(msg.content, 0.0))
    outcome = bootstrap.react(world.deps, GATES_QUEUE, msg.content)
    if delete:
        world.queue(GATES_QUEUE).delete_message(msg)
    return outcome


def script(world: World, **readings: list[Reading]) -> None:
    world.deps.signals.script.update(readings)  # type: ignore[attr-defined]


def test_a_duplicated_message_calls_each_provider_once_and_takes_one_sample(api: World) -> None:  # noqa: F811
    script(api, errors=[Reading("errors", value=2.0)], alerts=[Reading("alerts", value=0.0)])
    rid = gated(api)
    [msg] = gate_messages(api)
    assert deliver(api, msg, delete=False).startswith("post gate sample 1: fail")
    assert bootstrap.react(api.deps, GATES_QUEUE, msg.content) == "stale"  # the same message again
    calls = api.deps.signals.calls  # type: ignore[attr-defined]
    assert sorted(name for name, _ in calls) == ["alerts", "errors"]
    gate = api.get(rid).stages["Production"].current.gates["post"]  # type: ignore[union-attr]
    assert gate.sample_count == 1 and gate.next_seq == 2


def test_a_sample_message_received_late_renews_its_claim_and_a_copy_without_it_waits(api: World) -> None:  # noqa: F811
    """The write that sent the message claimed the sample for it until a minute after it was due: received with
    less than half of that left (a busy queue), it renews the claim before it samples, so the sweeper passing
    while the signals answer slowly does not take the sample as lost and ask for it again; the sweeper's copy (no
    claim) cannot take the sample meanwhile."""
    swept: list[dict[str, int]] = []

    def slow(now: Any) -> Reading:  # the provider answers 25 s later; the sweeper passes meanwhile
        api.clock.advance(25)
        swept.append(sweeper.sweep(api.deps))
        return Reading("errors", value=2.0)

    script(api, errors=slow, alerts=[Reading("alerts", value=0.0)])  # type: ignore[arg-type]
    rid = gated(api)
    [msg] = gate_messages(api)
    sent = json.loads(msg.content)
    assert sent["token"] == api.get(rid).stages["Production"].current.gates["post"].claim  # type: ignore[union-attr]
    api.clock.advance(api.bus.delays.get(msg.content, 0.0) + 45)  # due 45 s ago: 15 s of the claim left
    copy = json.dumps({k: v for k, v in sent.items() if k != "token"})
    assert bootstrap.react(api.deps, GATES_QUEUE, copy) == "taken by another evaluation"
    assert bootstrap.react(api.deps, GATES_QUEUE, msg.content).startswith("post gate sample 1: fail")
    assert swept == [{"outbox": 0, "redelivered": 0}]  # 70 s after it was due: the renewed claim still holds
    gate = api.get(rid).stages["Production"].current.gates["post"]  # type: ignore[union-attr]
    assert gate.sample_count == 1 and len(api.deps.signals.calls) == 2  # type: ignore[attr-defined]


def test_green_signals_promote_the_release_and_every_sample_is_in_the_history(api: World) -> None:  # noqa: F811
    script(api, errors=[Reading("errors", value=1.0), Reading("errors", value=0.0)],
           alerts=[Reading("alerts", value=0.0)])
    rid = gated(api)
    for _ in range(3):
        for msg in gate_messages(api):
            deliver(api, msg)
    release = api.get(rid)
    assert release.stages["Production"].status == "succeeded"
    samples = [e for e in releases.events(api.deps, rid) if e["type"] == "gateSample"]
    assert [s["message"].split(";")[0] for s in samples] == ["post sample 1: fail", "post sample 2: pass"]


def test_retry_after_sets_the_next_sample_and_the_limit_errors_the_gate(api: World) -> None:  # noqa: F811
    script(api, errors=[Reading("errors", error="throttled: HTTP 429", retry_after=150)],
           alerts=[Reading("alerts", value=0.0)])
    rid = gated(api, maxConsecutiveErrors=2)
    [msg] = gate_messages(api)
    deliver(api, msg)
    [nxt] = gate_messages(api)
    assert api.bus.delays[nxt.content] == 150 and json.loads(nxt.content)["seq"] == 2
    deliver(api, nxt)
    dep = api.get(rid).stages["Production"].current
    assert dep is not None and dep.status == "failed" and "could not be read" in str(dep.failure)


def test_an_admin_ignores_the_gate_over_the_api_and_a_reader_cannot(api: World) -> None:  # noqa: F811
    from functions import releases_api as rels

    script(api, errors=[Reading("errors", value=3.0)], alerts=[Reading("alerts", value=0.0)])
    rid = gated(api)
    [msg] = gate_messages(api)
    deliver(api, msg)
    where = {"releaseId": rid, "stage": "Production", "kind": "post"}
    status, body = call(rels.ignore_gate, "POST", {"comment": "noisy"}, headers=as_("tim@contoso.com"), **where)
    assert status == 403
    status, body = call(rels.ignore_gate, "POST", {}, headers=ADMIN, **where)
    assert status == 400 and body["errors"][0]["field"] == "comment"
    status, body = call(rels.ignore_gate, "POST", {"comment": "the metric is known to lag"}, headers=ADMIN, **where)
    assert status == 200 and body["stages"][0]["status"] == "succeeded"
    assert body["stages"][0]["deployments"][0]["gates"]["post"]["ignoredBy"] == "ops@contoso.com"
    assert bootstrap.react(api.deps, GATES_QUEUE, msg.content) == "stale"


def test_the_release_page_shows_each_sample(api: World) -> None:  # noqa: F811
    from tests.integration.test_dashboard import text, visit

    script(api, errors=[Reading("errors", value=4.0)], alerts=[Reading("alerts", error="HTTP 500: boom")])
    rid = gated(api)
    for msg in gate_messages(api):
        deliver(api, msg)
    page = text(visit(f"releases/{rid}"))
    assert "post-deployment gate" in page and "errors" in page and "4 &lt;= 0 is false" in page
    assert "HTTP 500: boom" in page and "<svg" in page


def test_a_sampling_interval_under_the_floor_is_refused_naming_the_field(api: World) -> None:  # noqa: F811
    from functions import definitions_api as defs

    production = {**stage("Production", {"type": "manual"}, steps=[{"type": "wait", "seconds": 0}],
                          slot="production"),
                  "postGates": {"signals": SIGNALS, "intervalMinutes": 0.5, "timeoutMinutes": 10}}
    status, body = call(defs.definitions_collection, "POST", {"name": "x", "stages": [production]})
    assert status == 400 and body["errors"][0]["field"] == "stages[0].postGates.intervalMinutes"


def test_an_admin_ignores_a_gate_from_the_release_page(api: World) -> None:  # noqa: F811
    from tests.integration.test_dashboard import text, visit

    script(api, errors=[Reading("errors", value=3.0)], alerts=[Reading("alerts", value=0.0)])
    rid = gated(api)
    for msg in gate_messages(api):
        deliver(api, msg)
    path = f"releases/{rid}/stages/Production/gates/post/ignore"
    assert "Ignore gate" not in text(visit(f"releases/{rid}", headers=as_("tim@contoso.com")))
    assert "Ignore gate" in text(visit(f"releases/{rid}", headers=ADMIN))
    assert visit(path, "POST", {"comment": "x"}, headers=as_("tim@contoso.com")).status_code == 403
    assert visit(path, "POST", {"comment": " "}, headers=ADMIN).status_code == 400
    assert visit(path, "POST", {"comment": "metric lags"}, headers=ADMIN).status_code == 303
    assert api.get(rid).stages["Production"].status == "succeeded"


def test_a_gate_that_ends_its_deployment_starts_the_next_release_in_the_lane_itself(api: World) -> None:  # noqa: F811
    """The sample that passes the gate ends the deployment and lets the lane's next release in: its handler starts
    that release itself (no lane message on the events queue)."""
    script(api, errors=[Reading("errors", value=0.0)], alerts=[Reading("alerts", value=0.0)])
    production = {**stage("Production", {"type": "manual"}, steps=[{"type": "wait", "seconds": 0}],
                          slot="production"), "queue": {"parallel": 1},
                  "postGates": {"signals": SIGNALS, "intervalMinutes": 1, "timeoutMinutes": 10}}
    did = int(api.define([production])["id"])
    first, second = api.release(did, "1.0.0").id, api.release(did, "1.1.0").id
    for rid in (first, second):
        releases.deploy_stage(api.deps, rid, "Production", by="amita")
    api.pump()
    assert api.get(second).stages["Production"].status == "queued"
    [msg] = gate_messages(api)
    assert deliver(api, msg).endswith("-> succeeded")
    assert api.get(first).stages["Production"].status == "succeeded"
    assert api.get(second).stages["Production"].status == "inProgress"  # its turn, given by the gate's handler
    assert not [m for m in api.receive(EVENTS_QUEUE) if '"kind":"lane"' in m.content]

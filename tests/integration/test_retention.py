"""Retention on Azurite: old releases go with their logs, rows and unused packages; what runs in
production stays; a crash leaves a release whole or gone; a tick costs the same whatever the history."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from local.storage_policies import InjectedCrash
from shared import bootstrap
from shared.domain.errors import NotFound
from shared.domain.transitions.results import Event
from shared.domain.vocabulary import EventType
from shared.ports import RetentionStore
from shared.records import Changes, ConcurrentChange, OutboxItem, OutboxKind, PipelineStore, Summary
from shared.services import definitions, releases, retention, step_logs
from tests.integration.conftest import World, stage
from tests.integration.test_store_contract import NOW, store  # noqa: F401  (the fixture: both stores)
from tests.integration.test_store_contract import release as contract_release

pytestmark = pytest.mark.azurite

DAY = 86_400.0
POLICY = {"days": 30, "minimumReleases": 0}


def manual(name: str) -> dict[str, object]:
    return stage(name, {"type": "manual"})


def gone(world: World, definition_id: int, release_id: int) -> bool:
    """Nothing of the release is left: no row, no events, no list entry."""
    try:
        releases.get(world.deps, release_id)
        return False
    except NotFound:
        pass
    listed, _ = world.deps.store.releases_page(cursor=None, limit=500, definition_id=definition_id)
    return not world.deps.store.events(definition_id, release_id) and all(r["id"] != release_id for r in listed)


def tick_until_quiet(world: World) -> int:
    deleted = 0
    for _ in range(20):
        done = retention.tick(world.deps).releases
        deleted += done
        if not done and retention.tick(world.deps).releases == 0:
            return deleted
    raise AssertionError("retention never settled")


def test_thirty_days_remove_old_releases_with_logs_and_unused_packages_while_production_stays(world: World) -> None:
    retention.tick(world.deps)  # retention ran before these builds came: their releases record their packages
    d = world.define([stage("Dev"), stage("Production", {"type": "manual"})], retention=POLICY)["id"]
    in_prod = world.release(d, "1.0.0")
    world.pump()
    releases.deploy_stage(world.deps, in_prod.id, "Production", by="amita")
    world.pump()
    old = world.release(d, "1.1.0")
    world.pump()
    sharing = world.release(d, "1.0.0")  # the package production runs: it must stay
    world.pump()
    newest = world.release(d, "1.2.0")
    world.pump()
    old = releases.get(world.deps, old.id)
    old_package = old.artifacts[0]["stored"]
    assert step_logs.read(world.deps, old, "Dev", 1, 0)
    kept = retention.verdict(world.deps, releases.get(world.deps, in_prod.id))
    assert kept.to_json() == {"removeAfter": None, "keptBecause": ["runs in Production now"]}
    assert retention.verdict(world.deps, old).remove_after is not None

    world.clock.advance(31 * DAY)
    assert tick_until_quiet(world) == 2

    assert gone(world, d, old.id) and gone(world, d, sharing.id)
    assert not world.deps.store.log_parts(d, old.id)  # type: ignore[attr-defined]
    stored = {name for name, _ in world.deps.packages.stored}  # type: ignore[attr-defined]
    assert old_package not in stored
    assert in_prod.artifacts[0]["stored"] in stored and newest.artifacts[0]["stored"] in stored
    assert releases.get(world.deps, in_prod.id).name == in_prod.name
    assert retention.verdict(world.deps, releases.get(world.deps, newest.id)).kept_because == ("runs in Dev now",)
    [audit] = retention.store_of(world.deps).audits(d)
    assert audit["type"] == "releasesDeleted" and sorted(audit["releaseIds"]) == [old.id, sharing.id]
    assert audit["releases"] == 2 and audit["logs"] >= 2 and audit["packages"] == 1


def test_a_deleted_definitions_releases_still_expire_and_what_runs_in_a_slot_stays(world: World) -> None:
    d = world.define([stage("Dev"), stage("Production", {"type": "manual"})], retention=POLICY)["id"]
    in_prod = world.release(d, "1.0.0")
    world.pump()
    releases.deploy_stage(world.deps, in_prod.id, "Production", by="amita")
    world.pump()
    old = world.release(d, "1.1.0")
    world.pump()
    newest = world.release(d, "1.2.0")
    world.pump()
    definitions.delete(world.deps, d, by="amita", if_match=None)
    world.clock.advance(31 * DAY)
    assert tick_until_quiet(world) == 1
    assert gone(world, d, old.id)
    assert releases.get(world.deps, in_prod.id).id == in_prod.id and releases.get(world.deps, newest.id).id == newest.id


def test_a_package_registered_before_retention_first_ran_stays(world: World) -> None:
    """Release rows written before this version name their packages only inside their JSON, which no query sees:
    a package registered before the first tick may be used by such a row, so it is never deleted."""
    d = world.define([stage("Dev")], retention=POLICY)["id"]
    old = world.release(d, "1.0.0")
    world.pump()
    world.release(d, "1.1.0")
    world.pump()
    world.clock.advance(31 * DAY)
    assert tick_until_quiet(world) == 1 and gone(world, d, old.id)
    stored = {name for name, _ in world.deps.packages.stored}  # type: ignore[attr-defined]
    assert old.artifacts[0]["stored"] in stored


def test_keep_forever_wins_over_the_days_and_is_audited(world: World) -> None:
    d = world.define([manual("Dev")], retention=POLICY)["id"]
    kept, other = world.release(d, "1.0.0"), world.release(d, "1.0.1")
    verdict = retention.retain(world.deps, kept.id, keep_forever=True, comment="audit evidence", by="amita")
    assert verdict.kept_because == ("kept forever by amita",)
    world.clock.advance(31 * DAY)
    assert tick_until_quiet(world) == 1
    assert gone(world, d, other.id) and releases.get(world.deps, kept.id).id == kept.id
    retention.retain(world.deps, kept.id, keep_forever=False, comment="", by="amita")
    assert tick_until_quiet(world) == 1 and gone(world, d, kept.id)
    types = [a["type"] for a in retention.store_of(world.deps).audits(d)]
    assert types.count("releaseRetained") == 1 and types.count("releaseReleased") == 1


def test_a_crash_at_any_storage_call_leaves_a_release_whole_or_gone(world: World) -> None:
    d = world.define([manual("Dev")], retention=POLICY)["id"]
    crash_at = 0
    while True:
        crash_at += 1
        rel = world.release(d, f"2.0.{crash_at}")
        world.clock.advance(31 * DAY)
        world.crash.arm(crash_at)
        try:
            retention.tick(world.deps)
            crashed = False
        except InjectedCrash:
            crashed = True
        world.crash.arm(None)
        try:
            whole = releases.get(world.deps, rel.id)
            assert world.deps.store.events(d, rel.id), f"crash at {crash_at}: visible without its history"
            assert whole.artifacts == rel.artifacts
        except NotFound:
            pass  # invisible: gone, or marked deleting and finished by the next tick
        tick_until_quiet(world)
        assert gone(world, d, rel.id), f"crash at {crash_at}: left behind"
        assert not retention.store_of(world.deps).deleting_releases(d, 10)
        if not crashed:
            break
    assert crash_at > 10  # the crash visited every call of a tick that deleted a release


def history(world: World, definition_id: int, count: int) -> None:
    """`count` releases of one definition: one made by the service, the rest its copies written straight to
    the store with their history and list entries (what a long-lived definition has; quick to make)."""
    first = world.release(definition_id)
    for n in range(1, count):
        copy = replace(first, id=definition_id * 1_000_000 + n, name=f"{first.name}-{n}")
        world.deps.store.commit(Changes(definition_id, release=copy,
                                        events=[Event(EventType.RELEASE_CREATED, copy.created_at, by="amita")]))
        world.deps.store.put_summary(Summary.of_release(copy))


def test_a_tick_costs_the_same_with_10_and_with_200_expired_releases(world: World) -> None:
    world.define([manual("Dev")], name="Empty", retention=POLICY)
    small = world.define([manual("Dev")], name="Small", retention=POLICY)["id"]
    large = world.define([manual("Dev")], name="Large", retention=POLICY)["id"]
    history(world, small, 10)
    history(world, large, 200)
    world.clock.advance(31 * DAY)
    batch = world.deps.settings.retention_batch
    assert batch == 10 and retention.tick(world.deps).releases == 0  # the empty definition's pass

    def first_tick() -> tuple[int, int]:
        world.counter.reset()
        return retention.tick(world.deps).releases, world.counter.total

    with_10 = first_tick()
    while not world.deps.store.document(*retention.STATE)[0].get("done"):  # type: ignore[index]
        assert retention.tick(world.deps).releases == 0
    with_200 = first_tick()
    assert with_10 == with_200 == (batch, with_10[1])
    assert len(world.deps.store.releases(large, cursor=None, limit=500)[0]) == 190


def test_both_stores_delete_a_release_as_a_whole(store: PipelineStore) -> None:  # noqa: F811
    """The retention operations, held to the same contract by the in-memory store and Table Storage."""
    assert isinstance(store, RetentionStore)
    uses = [{"alias": "web", "source": "tailspin-web", "version": "1.0.0", "stored": "tailspin-web/1.0.0/a.zip"}]
    for rid in (5, 6):
        made = replace(contract_release(rid), artifacts=uses, event_seq=1)
        store.commit(Changes(1, release=made, events=[Event(EventType.RELEASE_CREATED, made.created_at)],
                             outbox=[OutboxItem(f"i{rid}", rid, OutboxKind.QUEUE, "{}", made.created_at, queue="q")]))
        store.put_summary(Summary.of_release(made))
    loaded = store.release(1, 5)
    assert loaded is not None
    with pytest.raises(ConcurrentChange):
        store.mark_deleting(1, 5, 'W/"stale"')
    assert store.package_in_use(uses[0]["stored"], (1, 5)) and not store.package_in_use("other.zip", (1, 5))
    store.mark_deleting(1, 5, loaded[1])
    assert store.release(1, 5) is None  # invisible from the moment it is marked
    assert [r.id for r in store.releases(1, cursor=None, limit=10)[0]] == [6]
    assert [r.id for r in store.deleting_releases(1, 10)] == [5]
    assert store.purge_release(1, 5) >= 3
    store.purge_release(1, 5)  # again (a rerun after a crash): fine
    assert not store.deleting_releases(1, 10) and not store.events(1, 5) and not store.outbox(1, 5)
    assert [r["id"] for r in store.releases_page(cursor=None, limit=10)[0]] == [6]
    assert store.events(1, 6) and store.outbox(1, 6)
    assert not store.package_in_use(uses[0]["stored"], (1, 6))
    store.audit(1, {"type": "releasesDeleted", "at": NOW.isoformat(), "releases": 1})
    assert store.audits(1) == [{"type": "releasesDeleted", "at": NOW.isoformat(), "releases": 1}]


def test_the_api_shows_the_fate_and_keeps_forever_for_release_managers_only(world: World) -> None:
    import function_app  # noqa: F401  (registers the blueprints)
    from functions import releases_api as rels
    from tests.integration.test_dashboard import visit
    from tests.integration.test_http_api import as_, call

    bootstrap.use(world.deps)
    try:
        d = world.define([manual("Dev")], retention=POLICY)["id"]
        rel = world.release(d)
        status, view = call(rels.release_item, "GET", releaseId=rel.id)
        assert status == 200 and view["retention"] == {"removeAfter": "2026-12-23T09:00:00+00:00", "keptBecause": []}
        reader = as_("rita@contoso.com")
        assert call(rels.retain_release, "POST", {"keepForever": True}, releaseId=rel.id, headers=reader)[0] == 403
        status, problem = call(rels.retain_release, "POST", {"keepForever": "soon"}, releaseId=rel.id)
        assert status == 400 and "keepForever" in json.dumps(problem)
        assert call(rels.retain_release, "POST", {"keepForever": True}, releaseId=99_999)[0] == 404
        manager = as_("amita@contoso.com", roles=["Slipway.ReleaseManager"])
        status, answer = call(rels.retain_release, "POST", {"keepForever": True, "comment": "evidence"},
                              releaseId=rel.id, headers=manager)
        assert status == 200 and answer["retention"]["keptBecause"] == ["kept forever by amita@contoso.com"]
        assert call(rels.release_item, "GET", releaseId=rel.id)[1]["retention"]["removeAfter"] is None
        page = visit(f"releases/{rel.id}").get_body().decode()
        assert "Retention: kept because kept forever by amita@contoso.com" in page
    finally:
        bootstrap.use(None)


def test_a_release_page_judges_the_newest_of_a_stage_as_the_timer_does(world: World) -> None:
    d = world.define([stage("Dev")], retention={"days": 30, "minimumReleases": 2})["id"]
    made = []
    for n in range(5):
        made.append(world.release(d, f"1.{n}.0"))
        world.pump()
    verdicts = [retention.verdict(world.deps, releases.get(world.deps, r.id)) for r in made]
    newest = "one of the 2 newest of stage Dev"
    assert [newest in v.kept_because for v in verdicts] == [False, False, False, True, True]
    assert verdicts[0].remove_after is not None and verdicts[-1].remove_after is None
    world.clock.advance(31 * DAY)
    assert tick_until_quiet(world) == 3  # the timer keeps the same two
    assert [gone(world, d, r.id) for r in made] == [True, True, True, False, False]


def test_a_deploying_release_is_kept_for_that_and_its_page_reads_no_newer_release(world: World) -> None:
    """Whether it is one of a stage's newest is asked only of a release nothing deploys now (asking reads every
    newer release: an approver's page in a burst of releases read each of them)."""
    production = {**stage("Production", {"type": "afterStages", "stages": ["Dev"]}, slot="production"),
                  "preApprovals": {"approvers": ["tim@contoso.com"], "policy": "anyOne"}}
    d = world.define([stage("Dev"), production], retention={"days": 30, "minimumReleases": 10})["id"]
    waiting = world.release(d, "1.0.0")
    world.pump()  # Dev deployed, Production waits for Tim
    verdict = retention.verdict(world.deps, releases.get(world.deps, waiting.id))
    assert verdict.kept_because == ("runs in Dev now", "deploying to Production now")  # not "one of the 10 newest"
    assert verdict.remove_after is None

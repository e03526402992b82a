"""Table Storage's limits hold with the largest definitions and the longest histories: the limits
policy on the storage clients makes Azurite refuse what Azure would refuse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from local.storage_policies import StorageLimitExceeded, TableLimitsPolicy
from shared.domain.access import Principal
from shared.services import approvals, releases
from tests.integration.conftest import World, stage

pytestmark = pytest.mark.azurite  # storage faults, operation counts and limits need the real store

TIM = Principal("tim@contoso.com")


def approval_stage(name: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {**stage(name, trigger, steps=[{"type": "wait", "seconds": 0}], slot="dev"),
            "preApprovals": {"approvers": ["tim@contoso.com"], "requesterCannotApprove": False}}


def fifty_stages() -> list[dict[str, Any]]:
    """20 parallel approval stages at release creation, one stage, a fork of 20 approval stages after
    it, and 9 more: 50 in all, the most the schema allows."""
    parallel = [approval_stage(f"Region {i:02d}", {"type": "afterRelease"}) for i in range(20)]
    gate = stage("Build check", {"type": "afterRelease"}, steps=[{"type": "wait", "seconds": 0}], slot="test")
    fork = [approval_stage(f"Ring {i:02d}", {"type": "afterStages", "stages": ["Build check"]}) for i in range(20)]
    tail = [stage(f"Tail {i}", {"type": "afterStages", "stages": ["Ring 00"]},
                  steps=[{"type": "wait", "seconds": 0}], slot="qa") for i in range(9)]
    return [*parallel, gate, *fork, *tail]


def approve_all(world: World, release_id: int) -> int:
    decided = 0
    for name, run in world.get(release_id).stages.items():
        dep = run.current
        if dep is not None and dep.phase == "preApproval":
            _, etag = releases.read(world.deps, release_id)
            approvals.cast_vote(world.deps, release_id, name, "pre", TIM, "approve", "ok", attempt=dep.attempt,
                             if_match=etag)
            decided += 1
    return decided


def test_a_fifty_stage_definition_creates_releases_and_runs_to_the_end(world: World) -> None:
    did = world.define(fifty_stages())["id"]
    rel = world.release(did)  # 20 approvals requested at once: events, mails, timers, index rows
    world.pump()
    assert world.get(rel.id).stages["Build check"].status == "succeeded"  # and the fork of 20 started
    assert sum(1 for r in world.get(rel.id).stages.values() if r.current and r.current.phase == "preApproval") == 40
    for _ in range(10):
        world.pump()
        if approve_all(world, rel.id) == 0:
            break
    world.pump()
    statuses = {name: run.status for name, run in world.get(rel.id).stages.items()}
    assert set(statuses.values()) == {"succeeded"}, statuses


def test_a_release_stays_within_an_entity_however_long_its_history(world: World) -> None:
    did = world.define([{**stage("Production", {"type": "manual"}, slot="production"),
                         "preApprovals": {"approvers": ["tim@contoso.com"]}}])["id"]
    rel = world.release(did)
    releases.deploy_stage(world.deps, rel.id, "Production", by="amita")
    comment = "𝄞" * 1000  # 1,000 characters outside the BMP: 4,000 bytes of UTF-8, the most a comment takes
    for _ in range(30):
        _, etag = releases.read(world.deps, rel.id)
        world.clock.advance(3600)
        until = (world.clock.now() + timedelta(days=1)).isoformat()
        approvals.defer(world.deps, rel.id, "Production", TIM, until, comment, attempt=None, if_match=etag)
    got = world.get(rel.id)
    assert got.stages["Production"].current.phase == "preApproval"  # type: ignore[union-attr]
    events = [e for e in releases.events(world.deps, rel.id) if e["type"] == "deploymentDeferred"]
    assert len(events) == 30  # every deferral kept, in the history's own rows


def test_the_limits_policy_refuses_what_azure_refuses(world: World) -> None:
    table = world.deps.store.table  # type: ignore[attr-defined]
    with pytest.raises(StorageLimitExceeded, match="PropertyValueTooLarge"):
        table.create_entity({"PartitionKey": "p", "RowKey": "emoji", "v": "😀" * 16_385})  # 32,770 UTF-16 units
    table.create_entity({"PartitionKey": "p", "RowKey": "bmp", "v": "x" * 32_000})
    with pytest.raises(StorageLimitExceeded, match="TooManyProperties"):
        table.create_entity({"PartitionKey": "p", "RowKey": "wide", **{f"p{i}": i for i in range(253)}})
    with pytest.raises(StorageLimitExceeded, match="EntityTooLarge"):
        table.create_entity({"PartitionKey": "p", "RowKey": "big", **{f"p{i}": "y" * 30_000 for i in range(20)}})
    with pytest.raises(StorageLimitExceeded, match="InvalidInput"):
        table.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": f"r{i}"}) for i in range(101)])
    assert TableLimitsPolicy.MAX_OPERATIONS == 100


def test_a_comment_is_bounded_in_bytes_not_characters() -> None:
    from shared.domain.errors import Invalid
    from shared.schemas.approval import DecisionIn
    from shared.schemas.release import parse

    assert parse(DecisionIn, {"decision": "approve", "comment": "𝄞" * 1000}).comment
    with pytest.raises(Invalid) as bad:
        parse(DecisionIn, {"decision": "approve", "comment": "𝄞" * 1001})  # 1,001 characters, 4,004 bytes
    assert bad.value.errors[0].field == "comment" and "bytes" in bad.value.errors[0].message


def test_a_huge_release_is_compacted_to_fit_one_entity_and_keeps_its_current_state(world: World) -> None:
    from shared.adapters.table_store import MAX_ENTITY_JSON, _fitting, json_text, utf16_units

    did = world.define([{**stage("Production", {"type": "manual"}, slot="production"),
                         "preApprovals": {"approvers": ["tim@contoso.com"]}}])["id"]
    import copy

    rel = world.release(did)
    releases.deploy_stage(world.deps, rel.id, "Production", by="amita")
    big = world.get(rel.id)
    first = big.stages["Production"].deployments[0]
    for attempt in range(2, 61):  # sixty attempts, each with a long failure and gate samples
        dep = copy.deepcopy(first)
        dep.attempt, dep.failure = attempt, "𝄞" * 4000
        big.stages["Production"].deployments.append(dep)
    assert utf16_units(json_text(big.to_dict())) > MAX_ENTITY_JSON
    fitted = _fitting(big)
    assert utf16_units(json_text(fitted)) <= MAX_ENTITY_JSON
    assert len(fitted["stages"]["Production"]["deployments"]) == len(big.stages["Production"].deployments)

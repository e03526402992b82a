"""Which swaps are exposed to another stage's deployments (a warning on save), and where a stage that
deploys to a staging slot of its own and swaps it ends up (its environment is the swap's target)."""

from __future__ import annotations

import json

from local.azurite import REPO
from shared.services import definitions, what_runs_where
from tests.integration.conftest import SUB, World, stage

TAILSPIN = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())


def fed_by_preprod() -> list[dict[str, object]]:
    return [stage("Preprod"), {**stage("Production", {"type": "afterStages", "stages": ["Preprod"]}, slot="staging"),
                               "steps": [{"type": "swap", "slot": "preprod"}], "queue": {"parallel": 3}}]


def test_a_swap_from_a_slot_another_stage_deploys_to_is_saved_with_a_warning(world: World) -> None:
    created = world.define(fed_by_preprod())
    fields = {w["field"]: w["message"] for w in created["warnings"]}
    assert "'Preprod' also deploys to" in fields["stages[1].steps[0].slot"]
    assert "one release at a time" in fields["stages[1].queue.parallel"]
    again = definitions.get(world.deps, created["id"])
    assert again["warnings"] == created["warnings"]
    unchanged, _ = definitions.update(world.deps, created["id"], again, by="amita", if_match=None)  # a read PUT back
    assert unchanged["revision"] == 1  # nothing changed: no new revision
    edited = {**again, "description": "swap from Preprod's slot"}
    updated, _ = definitions.update(world.deps, created["id"], edited, by="amita", if_match=None)
    assert updated["revision"] == 2 and "warnings" not in world.deps.store.revision(created["id"], 2)  # type: ignore[operator]


def test_the_tailspin_example_deploys_to_a_slot_its_swap_stage_owns(world: World) -> None:
    """(tests/e2e/test_slots.py runs it through on the local stack.)"""
    body = json.loads(json.dumps(TAILSPIN).replace(TAILSPIN["stages"][0]["target"]["subscriptionId"], SUB))
    created = definitions.create(world.deps, body, by="amita")
    assert "warnings" not in created
    production = next(s for s in created["stages"] if s["name"] == "Production")
    assert production["target"]["slot"] == "staging"
    where = {s["stage"]: s for s in what_runs_where.what_runs_where(world.deps, created["id"])["stages"]}
    assert where["Production"]["slot"] == "production" and where["Preprod"]["slot"] == "preprod"

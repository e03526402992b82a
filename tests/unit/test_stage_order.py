"""Pipeline order and depth of stages: upstream first whatever order the definition lists them in,
ties by definition order; and the diagram laid out from them (columns by depth, edges drawn)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.web import diagram
from shared.domain.stage_order import depths, in_pipeline_order, pipeline_order


def stage(name: str, kind: str = "afterRelease", after: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": kind}
    if after is not None:
        trigger["stages"] = after
    return {"name": name, "trigger": trigger, **extra}


CLONED = [stage("Production", "afterStages", ["QA"], preApprovals={"approvers": ["tim@contoso.com"]}),
          stage("QA")]
"""What cloning Production and renaming the copy QA gives: the downstream stage listed first."""


def test_a_downstream_stage_listed_first_comes_after_its_upstream() -> None:
    assert pipeline_order(CLONED) == ["QA", "Production"]
    assert depths(CLONED) == {"QA": 0, "Production": 1}


def test_a_definition_already_in_pipeline_order_keeps_it_and_ties_go_by_definition_order() -> None:
    stages = [stage("Dev"), stage("Test", "afterStages", ["Dev"]), stage("Smoke"),
              stage("Prod", "afterStages", ["Test", "Smoke"])]
    assert pipeline_order(stages) == ["Dev", "Test", "Smoke", "Prod"]
    assert depths(stages) == {"Dev": 0, "Test": 1, "Smoke": 0, "Prod": 2}


@pytest.mark.parametrize("kind", ["manual", "schedule"])
def test_manual_and_scheduled_stages_with_required_stages_come_after_them(kind: str) -> None:
    stages = [stage("Prod", kind, ["Test"]), stage("Test", "afterStages", ["Dev"]), stage("Dev"),
              stage("Hotfix", "manual")]
    assert pipeline_order(stages) == ["Dev", "Test", "Prod", "Hotfix"]
    assert depths(stages) == {"Dev": 0, "Test": 1, "Prod": 2, "Hotfix": 0}


def test_unknown_names_self_references_and_cycles_never_lose_a_stage() -> None:
    stages = [stage("A", "afterStages", ["B", "Nope"]), stage("B", "afterStages", ["A"]),
              stage("C", "afterStages", ["C"])]
    assert sorted(pipeline_order(stages)) == ["A", "B", "C"]
    assert pipeline_order(stages)[0] == "C"


def test_items_of_a_release_follow_the_pipeline_and_unknown_names_go_last() -> None:
    assert in_pipeline_order(CLONED, {"Production": 2, "Old": 3, "QA": 1}) == [("QA", 1), ("Production", 2),
                                                                             ("Old", 3)]


@st.composite
def dags(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random stage graph (each stage may wait for earlier-created ones), listed in a random order."""
    count = draw(st.integers(1, 7))
    stages = []
    for i in range(count):
        ups = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        kind = draw(st.sampled_from(["afterStages", "manual", "schedule"])) if ups else \
            draw(st.sampled_from(["afterRelease", "manual", "schedule"]))
        stages.append(stage(f"S{i}", kind, [f"S{u}" for u in ups] if ups else None))
    return draw(st.permutations(stages))


@given(dags())
def test_every_stage_comes_after_what_it_waits_for_and_one_column_right_of_its_deepest_upstream(
        stages: list[dict[str, Any]]) -> None:
    order = pipeline_order(stages)
    assert sorted(order) == sorted(s["name"] for s in stages)
    depth = depths(stages)
    for s in stages:
        ups = s["trigger"].get("stages", [])
        assert all(order.index(u) < order.index(s["name"]) for u in ups)
        assert depth[s["name"]] == (1 + max(depth[u] for u in ups) if ups else 0)


def test_the_diagram_of_a_cloned_stage_puts_qa_left_of_production_with_an_edge_between() -> None:
    drawn = diagram.layout({"name": "Web", "stages": CLONED})
    qa, prod = drawn.node("QA"), drawn.node("Production")
    assert qa is not None and prod is not None
    assert (qa.column, prod.column) == (1, 2) and qa.x + diagram.BOX_W < prod.x
    edges = {(e.source.name, e.target.name): e for e in drawn.edges}
    assert set(edges) == {("Release", "QA"), ("QA", "Production")}
    assert edges[("QA", "Production")].label == "approval" and edges[("Release", "QA")].label == ""


def test_no_two_boxes_overlap_and_edges_run_left_to_right() -> None:
    stages = [stage("Prod", "afterStages", ["Test", "Perf"]), stage("Perf", "afterStages", ["Dev"]),
              stage("Test", "afterStages", ["Dev"]), stage("Dev"), stage("Audit", "manual", ["Dev"]),
              stage("Hotfix", "manual"), stage("Nightly", "schedule")]
    drawn = diagram.layout({"stages": stages})
    for a, b in itertools.combinations(drawn.nodes, 2):
        assert (a.column, a.row) != (b.column, b.row), (a.name, b.name)
    assert [n.name for n in drawn.nodes if n.column == 1] == ["Dev", "Hotfix", "Nightly"]
    assert {n.name: n.column for n in drawn.nodes}["Prod"] == 3
    kinds = {(e.source.name, e.target.name): e.kind for e in drawn.edges}
    assert kinds == {("Release", "Dev"): "trigger", ("Dev", "Test"): "trigger", ("Dev", "Perf"): "trigger",
                     ("Test", "Prod"): "trigger", ("Perf", "Prod"): "trigger", ("Dev", "Audit"): "requires"}
    assert all(e.source.column < e.target.column for e in drawn.edges)
    assert drawn.width >= max(n.x for n in drawn.nodes) + diagram.BOX_W
    assert drawn.height >= max(n.y for n in drawn.nodes) + diagram.BOX_H

"""Retention decisions: Azure DevOps' days and minimum per stage, keep forever, what runs where."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.retention import (
    DefinitionPolicy,
    Newest,
    Policy,
    ReleaseFacts,
    decide,
    newest_per_stage,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY0 = "2026-04-01T00:00:00+00:00"
DEFINITION = {"stages": [{"name": "Dev"}, {"name": "QA"}, {"name": "Production"}]}


def facts(id: int = 1, *, at: str = DAY0, deployed: tuple[str, ...] = (), **kw: object) -> ReleaseFacts:
    return ReleaseFacts(id=id, created_at=at, last_activity=at, deployed_to=frozenset(deployed), **kw)  # type: ignore[arg-type]


NONE = Newest({})


@pytest.mark.parametrize(("definition", "release", "newest", "delete", "remove_after", "kept"), [
    # Azure DevOps' defaults: 30 days from the last change or deployment
    (DEFINITION, facts(), NONE, True, "2026-05-01T00:00:00+00:00", []),
    (DEFINITION, facts(at="2026-05-15T00:00:00+00:00"), NONE, False, "2026-06-14T00:00:00+00:00", []),
    # exactly at the date: it goes
    (DEFINITION, facts(at="2026-05-02T00:00:00+00:00"), NONE, True, "2026-06-01T00:00:00+00:00", []),
    # a multi-stage release keeps the largest of its stages' days
    ({"retention": {"days": 10}, "stages": [{"name": "Dev"}, {"name": "Production",
                                                              "retention": {"days": 90}}]},
     facts(), NONE, False, "2026-06-30T00:00:00+00:00", []),
    ({"retention": {"days": 10, "minimumReleases": 0}, "stages": [{"name": "Dev"}]},
     facts(), NONE, True, "2026-04-11T00:00:00+00:00", []),
    # the minimum wins over the days
    (DEFINITION, facts(deployed=("QA",)), Newest({"QA": frozenset({1})}), False, None,
     ["one of the 3 newest of stage QA"]),
    (DEFINITION, facts(deployed=("QA",)), Newest({"QA": frozenset({7, 8, 9})}), True,
     "2026-05-01T00:00:00+00:00", []),
    (DEFINITION, facts(deployed=("QA",)), Newest({}, frozenset({"QA"})), False, None,
     ["maybe one of the 3 newest of stage QA"]),
    # what runs where, deployments under way, keep forever
    (DEFINITION, facts(running_in=frozenset({"Production"})), NONE, False, None, ["runs in Production now"]),
    (DEFINITION, facts(deploying_to=frozenset({"QA"})), NONE, False, None, ["deploying to QA now"]),
    (DEFINITION, facts(kept_forever_by="amita", running_in=frozenset({"Dev"})), NONE, False, None,
     ["kept forever by amita", "runs in Dev now"]),
])
def test_decide(definition: dict[str, object], release: ReleaseFacts, newest: Newest, delete: bool,
                remove_after: str | None, kept: list[str]) -> None:
    verdict = decide(DefinitionPolicy.of_definition(definition), release, newest, NOW)
    assert (verdict.delete, verdict.remove_after, list(verdict.kept_because)) == (delete, remove_after, kept)
    assert verdict.to_json() == {"removeAfter": remove_after, "keptBecause": kept}


def test_stage_policy_falls_back_to_the_definitions_then_to_azure_devops_defaults() -> None:
    policy = DefinitionPolicy.of_definition({"retention": {"days": 7}, "stages": [
        {"name": "Dev"}, {"name": "QA", "retention": {"minimumReleases": 5}}]})
    assert policy.of("Dev") == Policy(7, 3)
    assert policy.of("QA") == Policy(7, 5)
    assert DefinitionPolicy.of_definition(DEFINITION).of("QA") == Policy(30, 3)


@pytest.mark.parametrize(("window", "complete", "kept", "partial"), [
    # counts only releases deployed to the stage, newest first
    ([facts(1, deployed=("QA",)), facts(2), facts(3, deployed=("QA",)), facts(4, deployed=("QA", "Dev")),
      facts(5, deployed=("QA",))], True, {"QA": {5, 4, 3}, "Dev": {4}}, set()),
    # a bounded window that did not reach a stage's minimum leaves that stage undecided
    ([facts(9, deployed=("QA",))], False, {"QA": {9}}, {"Dev", "QA", "Production"}),
    ([facts(i, deployed=("Dev", "QA", "Production")) for i in range(1, 6)], False,
     {s: {5, 4, 3} for s in ("Dev", "QA", "Production")}, set()),
])
def test_newest_per_stage(window: list[ReleaseFacts], complete: bool, kept: dict[str, set[int]],
                          partial: set[str]) -> None:
    newest = newest_per_stage(DefinitionPolicy.of_definition(DEFINITION), window, complete=complete)
    assert {s: set(ids) for s, ids in newest.kept.items()} == kept
    assert set(newest.partial) == partial

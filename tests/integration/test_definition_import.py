"""POST /api/definitions/import: every Azure DevOps sample imports with a report and no 5xx, a dry run
saves nothing, strict mode refuses what Slipway cannot run, and a refused import writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions import definitions_api as defs
from tests.integration.conftest import SUB, World
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "shared" / "ado-samples" / "definitions").glob("*.json"))
TARGET = {"subscriptionId": SUB, "resourceGroup": "rg-tailspin", "site": "tailspin"}


def sample(name: str) -> Any:
    return json.loads(next(p for p in SAMPLES if p.stem == name).read_text(encoding="utf-8-sig"))


def listed(world: World) -> list[dict[str, Any]]:
    status, page = call(defs.definitions_collection, "GET")
    assert status == 200
    return page["value"]  # type: ignore[no-any-return]


def test_the_handbook_has_the_samples() -> None:
    assert len(SAMPLES) >= 11


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_imports_with_a_report(api: World, path: Path) -> None:  # noqa: F811
    document = json.loads(path.read_text(encoding="utf-8-sig"))
    status, answer = call(defs.import_definition, "POST", document, params=TARGET)
    assert status == 201, answer
    saved = answer["definition"]
    assert answer["saved"] is True and saved["id"] >= 1 and saved["revision"] == 1
    assert saved["description"].startswith("Imported from Azure DevOps")
    kinds = {entry["kind"] for entry in answer["report"]}
    assert {"stage"} <= kinds
    environments = document["environments"]
    assert sum(entry["kind"] == "stage" for entry in answer["report"]) == len(environments)
    tasks = [t for e in environments for p in e.get("deployPhases") or [] for t in p.get("workflowTasks") or []]
    assert sum(entry["kind"] == "task" for entry in answer["report"]) == len(tasks)
    assert sum(answer["summary"].values()) == len(answer["report"])
    status, again = call(defs.definition_item, "GET", definitionId=saved["id"])
    assert status == 200 and [s["name"] for s in again["stages"]] == [s["name"] for s in saved["stages"]]


def test_a_dry_run_shows_the_definition_and_saves_nothing(api: World) -> None:  # noqa: F811
    status, answer = call(defs.import_definition, "POST", sample("demogen-1"), params={**TARGET, "dryRun": "true"})
    assert status == 200, answer
    assert answer["saved"] is False and answer["problems"] == []
    assert [s["name"] for s in answer["definition"]["stages"]] == ["Dev", "QA", "Production"]
    assert "id" not in answer["definition"]
    assert listed(api) == []


def test_a_dry_run_lists_what_would_refuse_the_save(api: World) -> None:  # noqa: F811
    api.deps.app_service.known_slots = ["production"]  # type: ignore[attr-defined]  (the app has no Dev slot)
    status, answer = call(defs.import_definition, "POST", sample("demogen-1"), params={**TARGET, "dryRun": "true"})
    assert status == 200 and answer["saved"] is False, answer
    assert [p["field"] for p in answer["problems"]] == ["stages[0].target.slot", "stages[1].target.slot"], answer
    status, problem = call(defs.import_definition, "POST", sample("demogen-1"), params=TARGET)
    assert status == 400 and {e["field"] for e in problem["errors"]} == {"stages[0].target.slot",
                                                                        "stages[1].target.slot"}
    assert listed(api) == []


def test_strict_refuses_tasks_slipway_cannot_run_and_writes_nothing(api: World) -> None:  # noqa: F811
    replaced = []
    for path in SAMPLES:
        status, answer = call(defs.import_definition, "POST", json.loads(path.read_text(encoding="utf-8-sig")),
                              params={**TARGET, "dryRun": "true"})
        assert status == 200, answer
        if any(entry["outcome"] == "replaced" for entry in answer["report"]):
            replaced.append(path.stem)
    assert replaced, "some sample has a task Slipway cannot run"
    status, problem = call(defs.import_definition, "POST", sample(replaced[0]), params={**TARGET, "strict": "true"})
    assert status == 400, problem
    assert all(error["field"].startswith("$.environments[") for error in problem["errors"])
    assert listed(api) == []


@pytest.mark.parametrize("body, field", [
    ([1, 2], "$"),
    ({"name": "x", "environments": "none"}, "$.environments"),
    ({"name": "x", "environments": [{"name": "Dev", "conditions": 7, "deployPhases": []}]},
     "$.environments[0].conditions"),
])
def test_malformed_exports_are_400_naming_the_json_path(api: World, body: Any, field: str) -> None:  # noqa: F811
    status, problem = call(defs.import_definition, "POST", body, params=TARGET)
    assert status == 400, problem
    assert field in [error["field"] for error in problem["errors"]], problem
    assert listed(api) == []


@pytest.mark.parametrize("params, field", [({"dryRun": "yes"}, "dryRun"), ({"strict": "1"}, "strict"),
                                           ({"subscriptionId": SUB}, "resourceGroup")])
def test_bad_options_are_400_naming_the_parameter(api: World, params: dict[str, str], field: str) -> None:  # noqa: F811
    status, problem = call(defs.import_definition, "POST", sample("spec-1"), params=params)
    assert status == 400 and problem["errors"][0]["field"] == field, problem


def test_a_truncated_export_is_a_400(api: World) -> None:  # noqa: F811
    text = json.dumps(sample("demogen-2"))
    status, problem = call(defs.import_definition, "POST", raw=text[: len(text) // 2].encode(), params=TARGET)
    assert status == 400 and problem["errors"][0]["field"] == "body"
    assert listed(api) == []

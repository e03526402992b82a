"""Definition validation, branch filters and release names: pure rules, no storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.domain.errors import Invalid
from shared.schemas.definition import parse_definition
from shared.services.releases import branch_matches, release_name

REPO = Path(__file__).resolve().parents[2]


def test_the_sample_pipeline_is_a_valid_definition() -> None:
    data = parse_definition(json.loads((REPO / "examples" / "sample-pipeline.json").read_text()))
    assert [s["name"] for s in data["stages"]] == ["Dev", "Test", "Production"]


def test_first_artifact_becomes_primary_when_none_is() -> None:
    body = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    body["artifacts"][0]["isPrimary"] = False
    assert parse_definition(body)["artifacts"][0]["isPrimary"] is True


def test_every_error_is_reported_at_once() -> None:
    body = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    body["stages"][1]["name"] = "Dev"
    body["stages"][2]["target"]["slot"] = "bad_slot"
    with pytest.raises(Invalid) as err:
        parse_definition(body)
    assert [e.field for e in err.value.errors] == ["stages[2].target.slot"]  # shape errors first
    body["stages"][2]["target"]["slot"] = "ok"
    with pytest.raises(Invalid) as err:
        parse_definition(body)
    assert "stages[1].name" in [e.field for e in err.value.errors]


@pytest.mark.parametrize("branch, filters, expected", [
    ("refs/heads/main", {"include": ["main"]}, True),
    ("main", {"include": ["refs/heads/main"]}, True),
    ("refs/heads/release/2.1", {"include": ["release/*"]}, True),
    ("refs/heads/feature/x", {"include": ["main", "release/*"]}, False),
    ("refs/heads/release/old", {"include": ["release/*"], "exclude": ["release/old"]}, False),
    ("refs/heads/anything", {}, True),
    (None, {}, True),
    (None, {"include": ["main"]}, False),
])
def test_branch_filters(branch: str | None, filters: dict[str, list[str]], expected: bool) -> None:
    assert branch_matches(branch, filters) is expected


@pytest.mark.parametrize("fmt, expected", [
    ("Release-$(rev:r)", "Release-7"),
    ("R$(rev:rrr)", "R007"),
    ("$(Release.DefinitionName) $(Build.BuildNumber)", "Tailspin 20261123.4"),
])
def test_release_names(fmt: str, expected: str) -> None:
    snapshot = [{"alias": "web", "isPrimary": True, "version": "1.0", "buildId": "20261123.4"}]
    assert release_name({"name": "Tailspin", "releaseNameFormat": fmt}, 7, snapshot) == expected

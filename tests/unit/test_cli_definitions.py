"""`slipway definition`: reading YAML and JSON files, the diff apply prints, offline validation, and the
published schema and YAML example kept equal to what they mirror."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from slipway_cli import definitions as cli
from slipway_cli.api import Client
from slipway_cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())
SCHEMA = json.loads((REPO / "examples" / "definition.schema.json").read_text())


def test_the_yaml_example_is_the_json_example() -> None:
    assert cli.read_file(str(REPO / "examples" / "tailspin-pipeline.yaml")) == EXAMPLE


def test_the_schema_file_is_the_one_the_api_publishes() -> None:
    from shared.services.definitions import json_schema

    assert SCHEMA == json_schema(), (
        "the definition's model changed: .venv/bin/python -c 'import json; from shared.services.definitions import "
        "json_schema; print(json.dumps(json_schema(), indent=2))' > examples/definition.schema.json")


def test_yaml_is_read_with_yaml_12_scalars_so_times_dates_and_words_stay_strings() -> None:
    data = cli.parse_text("name: x\ntime: 23:30\nday: 2026-12-01\nanswer: no\nsw: on\nn: 12\nf: 1.5\nt: true\n")
    assert data == {"name": "x", "time": "23:30", "day": "2026-12-01", "answer": "no", "sw": "on", "n": 12,
                    "f": 1.5, "t": True}


@pytest.mark.parametrize("text", ["- a list\n", "just text\n", "a: [unclosed\n", "!!python/object:os.system {}\n"])
def test_what_is_not_a_mapping_of_plain_data_is_refused(text: str) -> None:
    with pytest.raises(cli.DefinitionFileError):
        cli.parse_text(text)


def test_json_files_are_read_as_json_and_yaml_files_as_yaml(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("name: not json\n")
    with pytest.raises(cli.DefinitionFileError, match="not valid JSON"):
        cli.read_file(str(tmp_path / "p.json"))
    (tmp_path / "p.yml").write_text('{"name": "json is YAML too"}')
    assert cli.read_file(str(tmp_path / "p.yml")) == {"name": "json is YAML too"}
    (tmp_path / "big.yaml").write_text("a: " + "x" * cli.MAX_FILE_BYTES)
    with pytest.raises(cli.DefinitionFileError, match="larger than"):
        cli.read_file(str(tmp_path / "big.yaml"))
    with pytest.raises(cli.DefinitionFileError, match="cannot read"):
        cli.read_file(str(tmp_path / "missing.yaml"))


def test_the_diff_is_of_sorted_json_without_read_only_fields() -> None:
    current = {**EXAMPLE, "id": 3, "revision": 4, "modifiedBy": "amita", "modifiedOn": "2026-12-01T00:00:00+00:00"}
    assert cli.render_diff(current, EXAMPLE, current_label="a", proposed_label="b") == ""
    reordered = dict(reversed(list(EXAMPLE.items())))
    assert cli.render_diff(current, reordered, current_label="a", proposed_label="b") == ""
    changed = json.loads(json.dumps(EXAMPLE))
    changed["stages"][0]["steps"][2]["timeoutSeconds"] = 30
    diff = cli.render_diff(current, changed, current_label="definition 3 revision 4", proposed_label="p.yaml")
    assert diff.startswith("--- definition 3 revision 4\n+++ p.yaml\n@@")
    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        '-          "timeoutSeconds": 20,', '+          "timeoutSeconds": 30,']
    created = cli.render_diff(None, EXAMPLE, current_label="/dev/null", proposed_label="p.yaml")
    assert '+  "name": "Tailspin",' in created and not any(
        line.startswith("-") and not line.startswith("---") for line in created.splitlines())


def _errors(definition: Any) -> list[tuple[str, str]]:
    return cli.schema_errors(definition, SCHEMA)


def test_every_example_is_valid_against_the_schema() -> None:
    for example in sorted((REPO / "examples").glob("*-pipeline.*")):
        assert _errors(cli.read_file(str(example))) == [], example.name


def test_validation_errors_name_the_field_as_the_api_does() -> None:
    bad = json.loads(json.dumps(EXAMPLE))
    bad["colour"] = "blue"
    bad["stages"][0]["target"]["subscriptionId"] = "nope"
    bad["stages"][0]["steps"][2]["timeoutSeconds"] = "lots"
    bad["stages"][0]["steps"][1] = {"type": "teleport"}
    del bad["stages"][1]["target"]
    bad["stages"][1]["steps"].append({"name": "no type"})
    found = dict(_errors(bad))
    assert found["colour"] == "unknown field"
    assert "does not match" in found["stages[0].target.subscriptionId"]
    assert "is not of type 'integer'" in found["stages[0].steps[2].timeoutSeconds"]
    assert found["stages[0].steps[1].type"] == "unknown type 'teleport'"
    assert found["stages[1].target"] == "required"
    assert found[f"stages[1].steps[{len(bad['stages'][1]['steps']) - 1}].type"] == "required"
    assert len(found) == 6
    assert {path for path, _ in _errors({"stages": []})} >= {"name", "stages"}


def test_validate_prints_each_error_with_its_path_and_exits_1(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: Tailspin\nstages:\n- name: Dev\n  target: {resourceGroup: rg, site: app}\n")
    assert main(["definition", "validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{path}: stages[0].target.subscriptionId: required"]
    assert main(["definition", "validate", str(REPO / "examples" / "tailspin-pipeline.yaml")]) == 0
    assert main(["definition", "validate", str(path), "--schema", str(tmp_path / "none.json")]) == 2


def test_apply_sends_if_match_of_the_revision_it_diffed_and_a_412_overwrites_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A server that moved to revision 3 between the diff and the update (as a concurrent apply would)."""
    current = {**EXAMPLE, "id": 1, "revision": 2}
    sent: list[tuple[str, str, str | None]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path + ("?dry" if "dryRun" in str(request.url) else ""),
                     request.headers.get("If-Match")))
        if request.method == "GET" and request.url.path == "/api/definitions":
            return httpx.Response(200, json={"count": 1, "value": [{"id": 1, "name": "Tailspin"}],
                                             "continuationToken": None})
        if request.method == "GET":
            return httpx.Response(200, json=current, headers={"ETag": '"2"'})
        if "dryRun" in str(request.url):
            proposed = json.loads(request.content)
            return httpx.Response(200, json={"definition": proposed, "changed": proposed != EXAMPLE})
        return httpx.Response(412, json={"title": "Precondition failed", "status": 412,
                                         "detail": "definition 1 is at revision 3, not \"2\""})

    client = Client("http://slipway/api")
    client.http = httpx.Client(base_url="http://slipway/api", transport=httpx.MockTransport(server))
    edited = json.loads(json.dumps(EXAMPLE))
    edited["description"] = "edited"
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(edited))
    args = argparse.Namespace(file=str(path), diff=False, exit_code=False, yes=True)
    assert cli.apply(client, args) == 2
    out = capsys.readouterr()
    assert '+  "description": "edited",' in out.out
    assert "changed after revision 2 was diffed; nothing was overwritten" in out.err
    assert sent[-1] == ("PUT", "/api/definitions/1", '"2"')

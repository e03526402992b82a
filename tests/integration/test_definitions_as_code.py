"""Definitions applied from a repository: an unchanged PUT makes no revision, lookup by name, a dry
run that saves nothing, the published JSON Schema, and two concurrent applies with one winner."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import jsonschema
import pytest

from functions import definitions_api as defs
from shared import bootstrap
from tests.integration.conftest import World
from tests.integration.test_http_api import GOOD, call, with_

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"type": "set-app-settings", "name": "Settings", "settings": {"ENVIRONMENT": "dev", "PLAIN": {
    "value": "shown", "secret": False}}}


@pytest.fixture
def api(world: World) -> Iterator[World]:
    bootstrap.use(world.deps)
    yield world
    bootstrap.use(None)


def _create(body: dict[str, Any]) -> int:
    status, created = call(defs.definitions_collection, "POST", body)
    assert status == 201, created
    return int(created["id"])


def _revisions(did: int) -> list[int]:
    return [r["revision"] for r in call(defs.definition_revisions, "GET", definitionId=did)[1]["value"]]


def test_an_unchanged_body_makes_no_revision_and_answers_the_current_one(api: World) -> None:
    body = with_("stages.0.steps", [SETTINGS])
    did = _create(body)
    head_before = api.deps.store.head(did)
    for same in (body, call(defs.definition_item, "GET", definitionId=did)[1]):  # the file, and an export
        status, current, etag = func_put(did, same, '"1"')
        assert status == 200 and current["revision"] == 1 and etag == '"1"'
    head_after = api.deps.store.head(did)
    assert head_before is not None and head_after is not None
    assert head_after.revision == 1 and head_after.updated_at == head_before.updated_at
    # already in place: 2xx even for an older If-Match (RFC 9110 §13.1.1)
    assert func_put(did, body, '"7"')[0] == 200
    assert _revisions(did) == [1]
    secret_changed = copy.deepcopy(body)
    secret_changed["stages"][0]["steps"][0]["settings"]["ENVIRONMENT"] = "test"
    status, updated, etag = func_put(did, secret_changed, '"1"')
    assert status == 200 and updated["revision"] == 2 and etag == '"2"'
    assert _revisions(did) == [1, 2]


def func_put(did: int, body: Any, if_match: str) -> tuple[int, Any, str | None]:
    """A PUT's status, body and ETag."""
    resp = defs.definition_item(_request("PUT", body, {"If-Match": if_match}, definitionId=str(did)))
    return resp.status_code, json.loads(resp.get_body()), resp.headers.get("ETag")


def _request(method: str, body: Any, headers: dict[str, str], **route: str) -> func.HttpRequest:
    return func.HttpRequest(method, "http://localhost/api/x", body=json.dumps(body).encode(), headers=headers,
                            params={}, route_params=route)


def test_definitions_are_found_by_their_exact_name_whatever_its_case(api: World) -> None:
    tailspin = _create(GOOD)
    _create(with_("name", "Tailspin Toys"))
    status, found = call(defs.definitions_collection, "GET", params={"name": "TAILSPIN"})
    assert status == 200 and [d["id"] for d in found["value"]] == [tailspin]
    assert call(defs.definitions_collection, "GET", params={"name": "Tails"})[1]["value"] == []
    status, problem = call(defs.definitions_collection, "GET", params={"name": "x" * 129})
    assert status == 400 and problem["errors"][0]["field"] == "name"


def test_a_dry_run_saves_nothing_and_says_whether_a_put_would_change_anything(api: World) -> None:
    status, preview = call(defs.definitions_collection, "POST", GOOD, params={"dryRun": "true"})
    assert status == 200 and preview["changed"] is True
    assert preview["definition"]["releaseNameFormat"] == "Release-$(rev:r)"  # the server's defaults filled
    assert call(defs.definitions_collection, "GET")[1]["value"] == []
    did = _create(GOOD)
    status, same = call(defs.definition_item, "PUT", GOOD, params={"dryRun": "true"}, definitionId=did)
    assert status == 200 and same["changed"] is False
    status, other = call(defs.definition_item, "PUT", with_("description", "v2"), params={"dryRun": "true"},
                         definitionId=did)
    assert status == 200 and other["changed"] is True and other["definition"]["description"] == "v2"
    status, bad = call(defs.definition_item, "PUT", with_("stages", []), params={"dryRun": "true"}, definitionId=did)
    assert status == 400 and bad["errors"][0]["field"] == "stages"
    assert _revisions(did) == [1]


def test_the_published_schema_is_the_examples_file_and_validates_every_example(api: World) -> None:
    status, schema = call(defs.definition_schema, "GET")
    assert status == 200
    assert schema == json.loads((REPO / "examples" / "definition.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for example in sorted((REPO / "examples").glob("*-pipeline.json")):
        assert list(validator.iter_errors(json.loads(example.read_text()))) == [], example.name


@pytest.mark.azurite  # contention on Table Storage's ETags, as in Azure
def test_two_concurrent_applies_from_one_revision_have_one_winner_and_one_412(api: World) -> None:
    did = _create(GOOD)
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def apply(description: str) -> None:
        barrier.wait()
        answers.append(func_put(did, with_("description", description), '"1"')[0])

    threads = [threading.Thread(target=apply, args=(d,)) for d in ("from branch a", "from branch b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 412]
    assert _revisions(did) == [1, 2]

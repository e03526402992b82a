"""The HTTP functions called as the host calls them: answers, status codes and problem details."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest

import function_app  # noqa: F401  (registers the blueprints)
from functions import definitions_api as defs
from functions import releases_api as rels
from shared import bootstrap
from tests.integration.conftest import World, stage

GOOD = {"name": "Tailspin", "artifacts": [{"alias": "web", "source": "tailspin-web",
                                            "trigger": {"branches": {"include": ["main", "release/*"]}}}],
        "stages": [stage("Dev"), stage("Test", {"type": "afterStages", "stages": ["Dev"]}),
                   stage("Production", {"type": "manual"}, slot="production")]}


@pytest.fixture
def api(world: World) -> Iterator[World]:
    bootstrap.use(world.deps)
    yield world
    bootstrap.use(None)


def call(fn: Callable[..., func.HttpResponse], method: str, body: Any = None, *, raw: bytes | None = None,
         params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         **route: Any) -> tuple[int, Any]:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    req = func.HttpRequest(method, "http://localhost/api/x", body=data, headers=headers or {},
                           params=params or {}, route_params={k: str(v) for k, v in route.items()})
    resp = fn(req)
    text = resp.get_body().decode()
    if resp.mimetype in ("application/json", "application/problem+json") and text:
        return resp.status_code, json.loads(text)
    return resp.status_code, text


def with_(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one field replaced; `path` is dotted, numbers index lists."""
    body = copy.deepcopy(GOOD)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = body
    for p in parents:
        node = node[p]
    node[last] = value
    return body


BAD_DEFINITIONS = [
    (with_("stages", []), "stages"),
    (with_("stages.1.name", "dev"), "stages[1].name"),
    (with_("stages.1.trigger", {"type": "afterStages", "stages": ["Nowhere"]}), "stages[1].trigger.stages[0]"),
    (with_("stages.0.trigger", {"type": "afterStages", "stages": ["Test"]}), "stages[0].trigger.stages"),
    (with_("stages.0.target.slot", "dev slot"), "stages[0].target.slot"),
    (with_("stages.0.target.site", "-tailspin"), "stages[0].target.site"),
    (with_("stages.0.target.subscriptionId", "not-a-guid"), "stages[0].target.subscriptionId"),
    (with_("stages.0.steps.0", {"type": "run-shell"}), "stages[0].steps[0].type"),
    (with_("stages.0.name", "x" * 65), "stages[0].name"),
    (with_("stages.0.name", "Dev\u0007"), "stages[0].name"),
    (with_("name", ""), "name"),
    (with_("stages.0.steps.0", {"type": "deploy-package", "artifact": "nope"}), "stages[0].steps[0].artifact"),
    (with_("stages.0.steps.1", {"type": "http-check", "expectStatus": 99}), "stages[0].steps[1].expectStatus"),
    (with_("releaseNameFormat", "R-$(Build.Nope)"), "releaseNameFormat"),
    ({**GOOD, "colour": "blue"}, "colour"),
    ([1, 2], "body"),
]


@pytest.mark.parametrize("body, field", BAD_DEFINITIONS, ids=[f for _, f in BAD_DEFINITIONS])
def test_bad_definitions_are_400_problems_naming_the_field(api: World, body: Any, field: str) -> None:
    status, problem = call(defs.definitions_collection, "POST", body)
    assert status == 400, problem
    assert problem["status"] == 400 and problem["title"] == "Invalid request"
    assert field in [e["field"] for e in problem["errors"]]
    status, listed = call(defs.definitions_collection, "GET")
    assert listed["value"] == []  # nothing half-written


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"null"])
def test_unparseable_bodies_name_the_body(api: World, raw: bytes) -> None:
    status, problem = call(defs.definitions_collection, "POST", raw=raw)
    assert status == 400 and problem["errors"][0]["field"] == "body"


def test_definition_revisions_update_delete_and_clone(api: World) -> None:
    status, created = call(defs.definitions_collection, "POST", GOOD)
    assert status == 201 and created["revision"] == 1
    did = created["id"]
    status, updated = call(defs.definition_item, "PUT", with_("description", "v2"), definitionId=did,
                           headers={"If-Match": '"1"'})
    assert status == 200 and updated["revision"] == 2
    status, stale = call(defs.definition_item, "PUT", GOOD, definitionId=did, headers={"If-Match": '"1"'})
    assert status == 412
    status, cloned = call(defs.clone_stage, "POST", {"name": "Test 2"}, definitionId=did, stage="Test")
    assert status == 201 and [s["name"] for s in cloned["stages"]][-1] == "Test 2" and cloned["revision"] == 3
    status, dup = call(defs.clone_stage, "POST", {"name": "Dev"}, definitionId=did, stage="Test")
    assert status == 400 and dup["errors"][0]["field"] == "name"
    status, old = call(defs.definition_revision, "GET", definitionId=did, revision=1)
    assert status == 200 and old.get("description", "") == ""
    status, revs = call(defs.definition_revisions, "GET", definitionId=did)
    assert [r["revision"] for r in revs["value"]] == [1, 2, 3]
    assert call(defs.definition_item, "DELETE", definitionId=did)[0] == 204
    assert call(defs.definition_item, "GET", definitionId=did)[0] == 404
    head = api.deps.store.head(did)
    assert head is not None and head.deleted and head.deleted_by.startswith("developer@localhost")
    assert call(defs.definition_revision, "GET", definitionId=did, revision=2)[0] == 200


def test_a_clone_without_a_name_is_named_as_azure_devops_names_it(api: World) -> None:
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    status, first = call(defs.clone_stage, "POST", definitionId=did, stage="Production")  # no body at all
    assert status == 201 and first["revision"] == 2
    source, copy_ = first["stages"][2], first["stages"][-1]
    assert copy_["name"] == "Copy of Production" and {**copy_, "name": "Production"} == source
    status, second = call(defs.clone_stage, "POST", {}, definitionId=did, stage="Production",
                          headers={"If-Match": '"2"'})
    assert status == 201 and second["stages"][-1]["name"] == "Copy of Production (2)"
    status, stale = call(defs.clone_stage, "POST", definitionId=did, stage="Production", headers={"If-Match": '"2"'})
    assert status == 412  # If-Match as before: the name being optional changes nothing there
    status, third = call(defs.clone_stage, "POST", {"name": None}, definitionId=did, stage="Production")
    assert status == 201 and [s["name"] for s in third["stages"]][3:] == [
        "Copy of Production", "Copy of Production (2)", "Copy of Production (3)"]
    status, named = call(defs.clone_stage, "POST", {"name": "QA"}, definitionId=did, stage="Production")
    assert status == 201 and named["stages"][-1]["name"] == "QA"


def test_the_default_clone_name_is_unique_whatever_the_case_and_fits_the_length_limit(api: World) -> None:
    long = "L" * 64
    body = {**GOOD, "stages": [*GOOD["stages"], stage(long, slot="qa"), stage("copy of dev", slot="qa")]}
    did = call(defs.definitions_collection, "POST", body)[1]["id"]
    status, cloned = call(defs.clone_stage, "POST", definitionId=did, stage="Dev")
    assert status == 201 and cloned["stages"][-1]["name"] == "Copy of Dev (2)"  # "copy of dev" is taken
    names = []
    for _ in range(2):
        status, cloned = call(defs.clone_stage, "POST", definitionId=did, stage=long)
        assert status == 201, cloned
        names.append(cloned["stages"][-1]["name"])
    assert names == [("Copy of " + long)[:64], ("Copy of " + long)[:60] + " (2)"]


@pytest.mark.parametrize("raw, field", [(b"[1]", "body"), (b'{"nmae": "QA"}', "nmae"), (b'{"name": ""}', "name"),
                                        (b'{"name": "dev"}', "name"), (b'{"name": 7}', "name"), (b"{", "body")])
def test_bad_clone_bodies_are_400s_naming_the_field(api: World, raw: bytes, field: str) -> None:
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    status, problem = call(defs.clone_stage, "POST", raw=raw, definitionId=did, stage="Test")
    assert status == 400 and field in [e["field"] for e in problem["errors"]], problem
    assert call(defs.definition_item, "GET", definitionId=did)[1]["revision"] == 1  # nothing written


def test_releases_by_api_and_webhook(api: World) -> None:
    assert call(defs.definitions_collection, "POST", GOOD)[0] == 201
    api.deps.packages.blobs.add("tailspin-web/1.0.0.zip")  # type: ignore[attr-defined]
    hook = {"source": "tailspin-web", "version": "1.0.0", "buildId": "20261123.1", "branch": "refs/heads/main",
            "commit": "a1b2c3d4", "package": "tailspin-web/1.0.0.zip",
            "sha256": hashlib.sha256(b"package tailspin-web/1.0.0.zip").hexdigest()}
    status, out = call(rels.artifact_webhook, "POST", hook)
    assert status == 201 and len(out["releases"]) == 1
    rid = out["releases"][0]["id"]
    assert call(rels.artifact_webhook, "POST", hook)[1]["releases"][0]["id"] == rid  # delivered twice
    status, other = call(rels.artifact_webhook, "POST", {**hook, "version": "1.0.1", "branch": "refs/heads/feature/x"})
    assert status == 200 and other["releases"] == []  # filtered-out branch
    status, bad = call(rels.artifact_webhook, "POST", {**hook, "sha256": "cd" * 32})
    assert status == 409
    api.pump()
    status, rel = call(rels.release_item, "GET", releaseId=rid)
    assert status == 200
    assert [(s["name"], s["status"]) for s in rel["stages"]] == [("Dev", "succeeded"), ("Test", "succeeded"),
                                                                 ("Production", "notStarted")]
    assert rel["stages"][2]["waitingFor"] == "manual trigger: waiting for someone to deploy it"
    assert rel["artifacts"][0]["commit"] == "a1b2c3d4"
    status, deployed = call(rels.deploy_stage, "POST", releaseId=rid, stage="Production")
    assert status == 202
    assert call(rels.deploy_stage, "POST", releaseId=rid, stage="Production")[0] == 409
    assert call(rels.deploy_stage, "POST", releaseId=rid, stage="Nope")[0] == 404
    api.pump()
    status, log = call(rels.step_log, "GET", releaseId=rid, stage="Production", attempt=1, step=0)
    assert status == 200 and "now runs 1.0.0" in log
    status, events = call(rels.release_events, "GET", releaseId=rid)
    assert events["value"][0]["type"] == "releaseCreated"


def test_release_list_filters_and_pages(api: World) -> None:
    did = call(defs.definitions_collection, "POST", with_("stages", [stage("Dev", {"type": "manual"})]))[1]["id"]
    ids = [api.release(did, f"1.0.{i}").id for i in range(5)]
    status, first = call(rels.releases_collection, "GET", params={"top": "2"})
    assert status == 200 and [r["id"] for r in first["value"]] == ids[::-1][:2]
    status, second = call(rels.releases_collection, "GET",
                          params={"top": "2", "continuationToken": first["continuationToken"]})
    assert [r["id"] for r in second["value"]] == ids[::-1][2:4]
    status, mine = call(rels.releases_collection, "GET", params={"definitionId": str(did), "top": "10"})
    assert sorted(r["id"] for r in mine["value"]) == ids
    call(rels.abandon_release, "POST", {"comment": "bad"}, releaseId=ids[0])
    status, abandoned = call(rels.releases_collection, "GET", params={"status": "abandoned"})
    assert [r["id"] for r in abandoned["value"]] == [ids[0]]


BAD_QUERIES = [({"top": "0"}, "top"), ({"top": "x"}, "top"), ({"status": "weird"}, "status"),
               ({"continuationToken": "%%%"}, "continuationToken"), ({"createdSince": "yesterday"}, "createdSince"),
               ({"definitionId": "-1"}, "definitionId")]


@pytest.mark.parametrize("params, field", BAD_QUERIES, ids=[f for _, f in BAD_QUERIES])
def test_bad_list_queries_name_the_parameter(api: World, params: dict[str, str], field: str) -> None:
    status, problem = call(rels.releases_collection, "GET", params=params)
    assert status == 400 and problem["errors"][0]["field"] == field


BAD_RELEASES = [({}, "definitionId"), ({"definitionId": "one"}, "definitionId"),
                ({"definitionId": 1, "artifacts": [{"alias": "nope", "version": "1.0"}]}, "artifacts[0].alias"),
                ({"definitionId": 1, "artifacts": [{"alias": "web", "version": "1.0", "sha256": "xyz"}]},
                 "artifacts[0].sha256"),
                ({"definitionId": 1, "artifacts": [{"alias": "web", "version": "../1"}]}, "artifacts[0].version")]


@pytest.mark.parametrize("body, field", BAD_RELEASES, ids=[f for _, f in BAD_RELEASES])
def test_bad_release_requests_name_the_field(api: World, body: dict[str, Any], field: str) -> None:
    call(defs.definitions_collection, "POST", GOOD)
    status, problem = call(rels.releases_collection, "POST", body)
    assert status == 400, problem
    assert field in [e["field"] for e in problem["errors"]]


def test_unknown_things_are_404(api: World) -> None:
    assert call(rels.release_item, "GET", releaseId=424242)[0] == 404
    assert call(rels.releases_collection, "POST", {"definitionId": 999})[0] == 404
    assert call(defs.definition_item, "GET", definitionId=999)[0] == 404


SWAP_STAGE = {**stage("Production", {"type": "manual"}, slot="production"),
              "steps": [{"type": "swap", "slot": "preprod"}]}
BAD_SLOTS = [
    (with_("stages", [{**SWAP_STAGE, "steps": [{"type": "swap"}]}]), "stages[0].steps[0].slot"),
    (with_("stages", [{**SWAP_STAGE, "steps": [{"type": "swap", "slot": "dev", "targetSlot": "dev"}]}]),
     "stages[0].steps[0].targetSlot"),
    (with_("stages", [{**SWAP_STAGE, "steps": [{"type": "swap", "slot": "nowhere"}]}]), "stages[0].steps[0].slot"),
    (with_("stages.0.target.slot", "ghost"), "stages[0].target.slot"),
]


@pytest.mark.parametrize("body, field", BAD_SLOTS, ids=[f for _, f in BAD_SLOTS])
def test_swaps_and_slots_are_checked_when_the_definition_is_saved(api: World, body: Any, field: str) -> None:
    status, problem = call(defs.definitions_collection, "POST", body)
    assert status == 400, problem
    assert field in [e["field"] for e in problem["errors"]]


def test_an_unreachable_arm_does_not_block_saving(api: World) -> None:
    from shared.ports import TargetError

    api.app_service.failures = [TargetError("ARM unreachable", retryable=True)]
    assert call(defs.definitions_collection, "POST", with_("stages", [SWAP_STAGE]))[0] == 201


def as_(name: str, roles: list[str] | None = None, groups: list[str] | None = None) -> dict[str, str]:
    from functions.identity import encode_principal

    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(name, roles, groups)}


def test_roles_are_checked_on_every_kind_of_endpoint(api: World) -> None:
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    reader = as_("rita@contoso.com")
    assert call(defs.definition_item, "GET", definitionId=did, headers=reader)[0] == 200  # everyone reads
    status, problem = call(defs.definitions_collection, "POST", GOOD, headers=reader)
    assert status == 403 and "admin" in problem["detail"]
    assert call(rels.releases_collection, "POST", {"definitionId": did}, headers=reader)[0] == 403
    manager = as_("amita@contoso.com", roles=["Slipway.ReleaseManager"])
    assert call(defs.definition_item, "PUT", GOOD, definitionId=did, headers=manager)[0] == 403
    assert call(rels.releases_collection, "POST", {"definitionId": did}, headers=manager)[0] != 403
    admin_by_group = as_("tim@contoso.com", groups=["release-admins"])
    assert call(defs.definitions_collection, "POST", GOOD, headers=admin_by_group)[0] == 403
    api.deps.settings = api.deps.settings.__class__(**{**api.deps.settings.__dict__, "admins": "release-admins"})
    assert call(defs.definitions_collection, "POST", GOOD, headers=admin_by_group)[0] == 201


def test_an_idempotency_key_returns_the_first_release_for_the_same_body_only(api: World) -> None:
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    api.deps.packages.blobs.add("tailspin-web/1.0.0.zip")  # type: ignore[attr-defined]
    body = {"definitionId": did, "description": "run 77",
            "artifacts": [{"alias": "web", "version": "1.0.0", "package": "tailspin-web/1.0.0.zip"}]}
    key = {"Idempotency-Key": "pipeline-run-77"}
    status, first = call(rels.releases_collection, "POST", body, headers=key)
    assert status == 201
    status, again = call(rels.releases_collection, "POST", body, headers=key)
    assert status == 200 and again["id"] == first["id"]
    status, problem = call(rels.releases_collection, "POST", {**body, "description": "run 78"}, headers=key)
    assert status == 422 and problem["errors"][0]["field"] == "Idempotency-Key"
    other = {**key, **as_("amita@contoso.com", roles=["Slipway.ReleaseManager"])}
    status, theirs = call(rels.releases_collection, "POST", body, headers=other)  # another caller's own key
    assert status == 201 and theirs["id"] != first["id"]


def test_a_client_key_never_collides_with_slipways_own_keys(api: World) -> None:
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    api.deps.packages.blobs.add("tailspin-web/1.0.0.zip")  # type: ignore[attr-defined]
    api.deps.packages.blobs.add("tailspin-web/2.0.0.zip")  # type: ignore[attr-defined]
    planted = {"Idempotency-Key": "build|tailspin-web|2.0.0|web"}
    body = {"definitionId": did, "artifacts": [{"alias": "web", "version": "1.0.0",
                                                "package": "tailspin-web/1.0.0.zip"}]}
    status, decoy = call(rels.releases_collection, "POST", body, headers=planted)
    assert status == 201
    hook = {"source": "tailspin-web", "version": "2.0.0", "branch": "refs/heads/main",
            "package": "tailspin-web/2.0.0.zip"}
    status, out = call(rels.artifact_webhook, "POST", hook)
    assert status == 201 and out["releases"][0]["id"] != decoy["id"]
    status, shown = call(rels.release_item, "GET", releaseId=out["releases"][0]["id"])
    assert shown["artifacts"][0]["version"] == "2.0.0"

"""The Azure DevOps emulator's Release definitions (Definitions - List and Get) and its PAT authentication, over
HTTP, as `slipway import ado --from-org` and the official clients call them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.azure_devops_emulator import AzureDevOpsEmulator

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "ado-samples" / "definitions"
ORG, PROJECT = "contoso", "Web Apps"
LIST = f"/{ORG}/Web%20Apps/_apis/release/definitions"
VERSION = {"api-version": "7.1"}
READER, EXECUTOR, FULL, BUILDER, ELSEWHERE = "pat-reader", "pat-executor", "pat-full", "pat-builder", "pat-fabrikam"
SEEDED = ("demogen-1", "demogen-2", "demogen-5", "spec-1", "demogen-4")


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8-sig")))


@pytest.fixture
def azdo() -> Iterator[AzureDevOpsEmulator]:
    with AzureDevOpsEmulator() as emulator:
        emulator.add_project("fabrikam", "infra")
        for name in SEEDED:
            emulator.add_release_definition(ORG, PROJECT, sample(name))
        emulator.add_release_definition("fabrikam", "infra", sample("demogen-3"))
        emulator.add_pipeline(ORG, PROJECT, "smoke")
        emulator.add_token("entra-token", orgs=[ORG])
        emulator.add_pat(READER, name="amita", orgs=[ORG], scopes=["vso.release"])
        emulator.add_pat(EXECUTOR, name="amita", orgs=[ORG], scopes=["vso.release_execute"])
        emulator.add_pat(FULL, name="amita")
        emulator.add_pat(BUILDER, name="amita", orgs=[ORG], scopes=["vso.build"])
        emulator.add_pat(ELSEWHERE, name="amita", orgs=["fabrikam"], scopes=["vso.release"])
        yield emulator


@pytest.fixture
def client(azdo: AzureDevOpsEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=azdo.url, auth=("", READER), params=VERSION) as c:
        yield c


def ids_of(answer: httpx.Response) -> list[int]:
    return [d["id"] for d in answer.json()["value"]]


def test_list_answers_the_listed_shape_and_expand_adds_parts(client: httpx.Client, azdo: AzureDevOpsEmulator) -> None:
    listed = client.get(LIST)
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
    body = listed.json()
    assert body["count"] == len(SEEDED) and ids_of(listed) == [1, 2, 3, 4, 5]  # idAscending by default
    first = body["value"][0]
    assert first["name"] == "MyHealthClinicE2E" and first["path"] == "\\"
    assert not {"environments", "artifacts", "triggers", "variables", "tags"} & set(first)
    assert first["url"] == f"{azdo.url}/{ORG}/{azdo.projects[(ORG, PROJECT.lower())]}/_apis/Release/definitions/1"
    assert first["_links"]["self"]["href"] == first["url"]
    expanded = client.get(LIST, params={**VERSION, "$expand": "Environments,artifacts"}).json()["value"][0]
    assert [e["name"] for e in expanded["environments"]] == ["Dev", "QA", "Production"]
    assert "artifacts" in expanded and "triggers" not in expanded
    assert client.get("/fabrikam/infra/_apis/release/definitions", auth=("", FULL)).json()["count"] == 1


def test_get_answers_the_whole_definition_with_the_fields_the_server_owns(client: httpx.Client) -> None:
    original = sample("demogen-1")
    got = client.get(f"{LIST}/1")
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == 1 and body["revision"] == original["revision"] and body["isDeleted"] is False
    assert body["environments"] == original["environments"] and body["artifacts"] == original["artifacts"]
    assert body["triggers"] == original["triggers"] and body["variables"] == original["variables"]
    # demogen-5's export has blank `id` / `createdOn` and a string `_links`: served, they are the server's own
    broken = client.get(f"{LIST}/3").json()
    assert broken["id"] == 3 and broken["createdOn"].endswith("Z") and isinstance(broken["_links"], dict)
    by_project_id = client.get(f"/{ORG}/{broken['url'].split('/')[4]}/_apis/Release/definitions/3")
    assert by_project_id.status_code == 200 and by_project_id.json()["name"] == broken["name"]


def test_paging_with_top_and_the_continuation_token(client: httpx.Client) -> None:
    seen: list[int] = []
    pages = 0
    params = {**VERSION, "$top": "2"}
    while True:
        page = client.get(LIST, params=params)
        assert page.status_code == 200 and page.json()["count"] <= 2
        seen += ids_of(page)
        pages += 1
        token = page.headers.get("x-ms-continuationtoken")
        if token is None:
            break
        params = {**VERSION, "$top": "2", "continuationToken": token}
    assert seen == [1, 2, 3, 4, 5] and pages == 3
    backwards = client.get(LIST, params={**VERSION, "$top": "2", "queryOrder": "idDescending"})
    assert ids_of(backwards) == [5, 4] and backwards.headers["x-ms-continuationtoken"] == "3"
    bad = client.get(LIST, params={**VERSION, "continuationToken": "99"})
    assert bad.status_code == 400 and bad.json()["typeKey"] == "InvalidRequestException"


def test_search_text_exact_names_id_filter_and_order(client: httpx.Client) -> None:
    names = {d["id"]: d["name"] for d in client.get(LIST).json()["value"]}
    word = names[1][2:8].upper()  # a piece of the first name, in another case
    assert 1 in ids_of(client.get(LIST, params={**VERSION, "searchText": word}))
    exact = client.get(LIST, params={**VERSION, "searchText": names[4].lower(), "isExactNameMatch": "true"})
    assert ids_of(exact) == [4]
    assert ids_of(client.get(LIST, params={**VERSION, "searchText": word, "isExactNameMatch": "true"})) == []
    assert ids_of(client.get(LIST, params={**VERSION, "definitionIdFilter": "2,4,99"})) == [2, 4]
    assert ids_of(client.get(LIST, params={**VERSION, "isDeleted": "true"})) == []
    by_name = client.get(LIST, params={**VERSION, "queryOrder": "nameDescending"})
    assert [names[i].lower() for i in ids_of(by_name)] == sorted((n.lower() for n in names.values()), reverse=True)


@pytest.mark.parametrize("query", [
    {"$top": "0"}, {"$top": "many"}, {"queryOrder": "newest"}, {"$expand": "everything"},
    {"isExactNameMatch": "yes"}, {"tagFilter": "web"}, {"path": "\\Team"}, {"definitionIdFilter": "1,x"},
])
def test_bad_or_unmodelled_list_parameters_are_refused(client: httpx.Client, query: dict[str, str]) -> None:
    refused = client.get(LIST, params={**VERSION, **query})
    assert refused.status_code == 400
    assert set(refused.json()) >= {"$id", "message", "typeName", "typeKey", "errorCode", "eventId"}


def test_a_missing_definition_is_a_404_in_azure_devops_shape(client: httpx.Client) -> None:
    missing = client.get(f"{LIST}/42")
    assert missing.status_code == 404
    body = missing.json()
    assert body["typeKey"] == "ReleaseDefinitionNotFoundException" and body["message"].startswith("VS402936: ")
    assert body["typeName"].startswith("Microsoft.VisualStudio.Services.ReleaseManagement.WebApi.Exceptions.")
    assert body["$id"] == "1" and body["innerException"] is None
    other = client.get("/fabrikam/infra/_apis/release/definitions/2", auth=("", FULL))  # ids are per project
    assert other.status_code == 404
    nowhere = client.get(f"/{ORG}/nope/_apis/release/definitions/1")
    assert nowhere.status_code == 404 and nowhere.json()["message"].startswith("TF200016")


def test_basic_pat_ignores_the_user_name_and_takes_the_version_from_accept(azdo: AzureDevOpsEmulator) -> None:
    with httpx.Client(base_url=azdo.url) as c:
        for user in ("", "amita", "anything at all"):
            assert c.get(f"{LIST}/1", params=VERSION, auth=(user, READER)).status_code == 200
        raw = base64.b64encode(f":{READER}".encode()).decode()
        official = c.get("/CONTOSO/Web%20Apps/_apis/Release/definitions",  # as the official Python client asks
                         headers={"Authorization": f"Basic {raw}",
                                  "Accept": "application/json;api-version=7.1-preview.4"})
        assert official.status_code == 200 and official.json()["count"] == len(SEEDED)
        assert c.get(LIST, params=VERSION, headers={"Authorization": "Bearer entra-token"}).status_code == 200
        assert c.get(LIST, params=VERSION, auth=("", FULL)).status_code == 200
        assert c.get(LIST, params=VERSION, auth=("", EXECUTOR)).status_code == 200  # read, write & execute reads too


def test_a_wrong_pat_is_answered_as_a_wrong_bearer_token(azdo: AzureDevOpsEmulator) -> None:
    with httpx.Client(base_url=azdo.url, params=VERSION) as c:
        unknown_bearer = c.get(LIST, headers={"Authorization": "Bearer nobody"})
        assert unknown_bearer.status_code == 401
        for refused in (c.get(LIST, auth=("", "not-a-pat")), c.get(LIST, auth=(READER, "")),
                        c.get(LIST, headers={"Authorization": f"Basic {READER}"}),  # not base64(user:PAT)
                        c.get(LIST, headers={"Authorization": "Basic %%%"}), c.get(LIST)):
            assert refused.status_code == 401 and refused.content == b""
            assert refused.headers["www-authenticate"] == unknown_bearer.headers["www-authenticate"]
        elsewhere = c.get(LIST, auth=("", ELSEWHERE))  # a PAT made for another organization
        assert elsewhere.status_code == 401 and "TF400813" in elsewhere.json()["message"]


def test_scopes_limit_a_pat(azdo: AzureDevOpsEmulator) -> None:
    builds = f"/{ORG}/Web%20Apps/_apis/build/builds"
    with httpx.Client(base_url=azdo.url, params=VERSION) as c:
        no_release = c.get(f"{LIST}/1", auth=("", BUILDER))
        assert no_release.status_code == 401 and no_release.content == b""
        assert c.get(builds, auth=("", BUILDER)).status_code == 200
        assert c.get(builds, auth=("", READER)).status_code == 401  # Release (read) does not read builds
        assert c.get(builds, auth=("", FULL)).status_code == 200
        smoke = next(p.id for p in azdo.pipelines.values() if p.name == "smoke")
        run = c.post(f"/{ORG}/Web%20Apps/_apis/pipelines/{smoke}/runs", auth=("", BUILDER), json={})
        assert run.status_code == 401 and azdo.started_runs == 0  # queuing takes Build (read & execute)
        # a missing scope is refused before anything about the project is told
        assert c.get(f"/{ORG}/nope/_apis/release/definitions/1", auth=("", BUILDER)).status_code == 401
    with pytest.raises(ValueError):
        azdo.add_pat("pat-odd", scopes=["release:read"])


def test_api_version_rules(azdo: AzureDevOpsEmulator) -> None:
    with httpx.Client(base_url=azdo.url, auth=("", READER)) as c:
        missing = c.get(LIST)
        assert missing.status_code == 400 and missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
        assert c.get(LIST, headers={"Accept": "application/json"}).status_code == 400
        too_new = c.get(LIST, params={"api-version": "9.0"})
        assert too_new.status_code == 400 and too_new.json()["typeKey"] == "VssVersionOutOfRangeException"
        assert c.get(LIST, headers={"Accept": "application/json;api-version=6.0"}).status_code == 400
        assert c.get(f"{LIST}?api-version=7.1&api-version=7.1").status_code == 400
        assert c.get(LIST, params={"api-version": "7.0"}).status_code == 200
        assert c.get(f"{LIST}/1", params={"api-version": "7.1-preview.4"}).status_code == 200
        assert c.get(f"{LIST}/1", params={"api-version": "7.1", "propertyFilters": "x"}).status_code == 400


def test_faults_and_the_request_log_cover_the_new_routes(client: httpx.Client, azdo: AzureDevOpsEmulator) -> None:
    azdo.inject("definition", "throttle", seconds=3)
    throttled = client.get(f"{LIST}/1")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "3"
    assert client.get(f"{LIST}/1").status_code == 200
    assert azdo.requests[-1].path == f"/{ORG}/{PROJECT}/_apis/release/definitions/1"


def test_seeding_checks_the_document(azdo: AzureDevOpsEmulator) -> None:
    for bad in ({}, {"name": ""}, {"name": 7}):
        with pytest.raises(ValueError):
            azdo.add_release_definition(ORG, PROJECT, bad)
    document = sample("spec-1")
    added = azdo.add_release_definition(ORG, "New", document)
    assert added == 1 and document["id"] == 40  # the caller's document is left as it was

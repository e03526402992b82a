"""`POST /api/hooks/github` end to end on the in-memory world, with GitHub played by the local emulator: signed
deliveries of the published example payloads, forged and malformed ones, redeliveries, and the deliveries list."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import function_app  # noqa: F401  (registers the blueprints)
from functions import hooks_api
from local.azure_devops_emulator import AzureDevOpsEmulator
from local.github_emulator import GitHubEmulator
from shared import bootstrap
from shared.adapters.azure_pipelines import AZURE_DEVOPS_SCOPE, AzurePipelines
from shared.adapters.github_artifacts import GitHubArtifacts
from shared.config import Settings
from shared.ports import StoredPackage, TargetError
from shared.services import definitions
from shared.services.build_hooks import deliveries
from tests.fakes import FakePackages
from tests.integration.conftest import World, stage
from tests.integration.test_dashboard import visit
from tests.integration.test_http_api import call
from tests.unit.test_build_hooks import examples

SECRET = "whsec-" + "Zq8" * 10  # never to be seen in an answer or a log
ACR_TOKEN = "acr-" + "Hk7" * 10
ADO_PASSWORD = "ado-" + "Pw3" * 10
ADO_SOURCE = "azure-devops:be9b3917-87e6-42a4-a549-2bc06a7a878f/ConsumerAddressModule"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DIGEST = hashlib.sha256(b"the image manifest").hexdigest()
TOKEN = "ghs_" + "W3bh" * 9
REPO = "octo-org/octo-repo"
SOURCE = f"github:{REPO}"


def example(event: str, action: str, conclusion: str | None = "success") -> dict[str, Any]:
    for name, _, payload in examples():
        if name == event and payload.get("action") == action and (
                action != "completed" or payload["workflow_run"]["conclusion"] == conclusion):
            return copy.deepcopy(payload)
    raise AssertionError(f"no {event} {action} example")


def package(name: str = "index.html") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name, (2026, 11, 23, 9, 0, 0)), "<h1>Tailspin</h1>")
    return out.getvalue()


class DownloadingPackages(FakePackages):
    """The package store's fake, downloading a URL for real (the emulator's pre-signed links)."""

    def fetch(self, url: str, dest: str) -> StoredPackage:
        response = httpx.get(url)
        if response.status_code != 200:
            raise ValueError(f"GET answered {response.status_code}")
        return self._keep(dest, response.content)


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as gh:
        gh.add_repo(REPO, branches=["master"])
        gh.add_token(TOKEN, repos=[REPO], actions="read")
        yield gh


@pytest.fixture
def hooks(world: World, github: GitHubEmulator) -> Iterator[World]:
    world.deps.settings = replace(world.deps.settings, github_webhook_secret=SECRET, github_token=TOKEN,
                                  github_api_url=github.url, acr_webhook_token=ACR_TOKEN,
                                  azure_devops_hook_user="slipway", azure_devops_hook_password=ADO_PASSWORD)
    world.deps.packages = DownloadingPackages()
    bootstrap.use(world.deps)
    yield world
    bootstrap.use(None)


def deliver(payload: Any, event: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958", *,
            secret: str = SECRET, raw: bytes | None = None, signature: str | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(payload).encode()
    sig = signature if signature is not None else "sha256=" + hmac.new(secret.encode(), data,
                                                                       hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig,
               "Content-Type": "application/json"}
    return call(hooks_api.github_hook, "POST", raw=data, headers=headers)


def listed(source: str = SOURCE) -> list[dict[str, Any]]:
    status, answer = call(hooks_api.hook_deliveries, "GET", params={"source": source})
    assert status == 200
    return answer["value"]  # type: ignore[no-any-return]


# -- refused: nothing stored


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"])
def test_unsigned_or_wrongly_signed_deliveries_are_401_and_store_nothing(hooks: World, signature: str) -> None:
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run", signature=signature)
    assert status == 401 and SECRET not in json.dumps(answer)
    status, _ = deliver(example("workflow_run", "completed"), "workflow_run", secret="someone else's")
    assert status == 401
    assert listed() == [] and deliveries.first_answer(hooks.deps, "github", "72d3162e-cc78-11e3-81ab-4c9367dc0958") \
        is None


def test_no_secret_configured_refuses_every_delivery(hooks: World) -> None:
    hooks.deps.settings = replace(hooks.deps.settings, github_webhook_secret="")
    assert deliver({"zen": "Design for failure."}, "ping", secret="")[0] == 401


@pytest.mark.parametrize(("raw", "headers", "field"), [
    (b"{" * 5, {}, "body"),
    (b"", {}, "body"),
    (b"[1]", {}, "body"),
    (b" " * (hooks_api.MAX_BODY + 1), {}, "body"),
    (b"{}", {"X-GitHub-Delivery": ""}, "X-GitHub-Delivery"),
    (b"{}", {"X-GitHub-Event": "Workflow Run!"}, "X-GitHub-Event"),
])
def test_oversized_or_malformed_deliveries_are_400_naming_the_field(hooks: World, raw: bytes,
                                                                   headers: dict[str, str], field: str) -> None:
    data = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(), **headers}
    status, answer = call(hooks_api.github_hook, "POST", raw=raw, headers=data)
    assert status == 400 and [e["field"] for e in answer["errors"]] == [field]
    assert listed() == []


# -- accepted: a reason, recorded


def test_a_ping_is_200(hooks: World) -> None:
    for i, payload in enumerate(p for n, _, p in examples() if n == "ping"):
        status, answer = deliver(payload, "ping", f"ping-{i}")
        assert status == 200 and answer["reason"].startswith("ping")


@pytest.mark.parametrize(("event", "action", "conclusion", "reason"), [
    ("workflow_run", "requested", "success", "workflow_run requested: only a completed run is a build"),
    ("workflow_run", "completed", None, "the workflow run concluded 'None', not 'success'"),
    ("release", "edited", None, "release edited: only a published release is a build"),
])
def test_a_delivery_that_is_no_build_is_202_with_its_reason_listed(hooks: World, event: str, action: str,
                                                                   conclusion: str | None, reason: str) -> None:
    payload = example(event, action, conclusion)
    status, answer = deliver(payload, event)
    source = f"github:{payload['repository']['full_name']}"
    assert (status, answer["reason"], answer["source"]) == (202, reason, source)
    [entry] = listed(source)
    assert (entry["event"], entry["action"], entry["status"], entry["reason"]) == (event, action, 202, reason)


def test_a_successful_run_nobody_consumes_is_202_and_nothing_is_downloaded(hooks: World,
                                                                         github: GitHubEmulator) -> None:
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run")
    assert status == 202
    assert answer["reason"] == f"no definition has an artifact with source {SOURCE}/test.yml or {SOURCE}"
    assert answer["version"] == "163.1+3484a3f"
    assert github.requests == [] and hooks.deps.packages.stored == {}  # type: ignore[attr-defined]


def test_a_redelivery_answers_the_first_result_and_is_listed_once(hooks: World) -> None:
    first = deliver(example("workflow_run", "completed"), "workflow_run", "d-7")
    again = deliver(example("workflow_run", "completed"), "workflow_run", "d-7")
    assert first == again and first[0] == 202
    assert [e["id"] for e in listed()] == ["d-7"]


def test_the_list_keeps_the_latest_deliveries_newest_first(hooks: World) -> None:
    for i in range(deliveries.KEEP + 3):
        deliver(example("workflow_run", "requested"), "workflow_run", f"d-{i}")
    shown = listed()
    assert len(shown) == deliveries.KEEP and shown[0]["id"] == f"d-{deliveries.KEEP + 2}"


def test_the_deliveries_list_needs_a_source(hooks: World) -> None:
    status, answer = call(hooks_api.hook_deliveries, "GET")
    assert status == 400 and answer["errors"][0]["field"] == "source"


# -- released


def define(world: World, source: str, branches: list[str] | None = None) -> None:
    definitions.create(world.deps, {"name": "Tailspin", "stages": [stage("Dev")], "artifacts": [
        {"alias": "web", "source": source, "trigger": {"branches": {"include": branches or ["master"]}}}]},
                       by="amita")


def test_a_signed_successful_run_becomes_a_release_with_its_artifact_digested(hooks: World,
                                                                             github: GitHubEmulator) -> None:
    data = package()
    github.add_artifact(REPO, 289782451, "web", data)
    define(hooks, f"{SOURCE}/test.yml")
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run")
    assert status == 201 and len(answer["releases"]) == 1
    record = hooks.deps.store.artifact(f"{SOURCE}/test.yml", "163.1+3484a3f")
    assert record is not None and record["sha256"] == hashlib.sha256(data).hexdigest()
    assert (record["branch"], record["commit"]) == ("master", "3484a3fb816e0859fd6e1cea078d76385ff50625")
    assert deliver(example("workflow_run", "completed"), "workflow_run") == (status, answer)



def test_a_filtered_branch_or_a_run_without_artifact_is_202_and_downloads_nothing(hooks: World,
                                                                                 github: GitHubEmulator) -> None:
    define(hooks, SOURCE, ["release/*"])
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run", "d-1")
    assert (status, answer["reason"]) == (202, f"branch 'master' is filtered out by every trigger on "
                                                f"{SOURCE}/test.yml or {SOURCE}")
    define(hooks, SOURCE.upper())  # GitHub names are case-insensitive
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run", "d-2")
    assert status == 202 and answer["reason"].startswith("workflow run 289782451 has no artifact")
    assert hooks.deps.packages.stored == {}  # type: ignore[attr-defined]


def test_a_download_github_refuses_is_a_502_listed_and_a_redelivery_tries_again(hooks: World,
                                                                               github: GitHubEmulator) -> None:
    github.add_artifact(REPO, 289782451, "web", package())
    define(hooks, SOURCE)
    hooks.deps.settings = replace(hooks.deps.settings, github_token="ghs_revoked")
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run", "d-9")
    assert status == 502 and "401" in answer["reason"] and "ghs_revoked" not in json.dumps(answer)
    assert listed()[0]["status"] == 502
    hooks.deps.settings = replace(hooks.deps.settings, github_token=TOKEN)
    status, answer = deliver(example("workflow_run", "completed"), "workflow_run", "d-9")
    assert status == 201 and answer["registered"] == [SOURCE]
    assert [e["status"] for e in listed()] == [201]


def test_a_published_release_with_an_asset_becomes_a_release(hooks: World, github: GitHubEmulator) -> None:
    payload = example("release", "published")
    payload["repository"]["full_name"] = REPO
    asset = github.add_asset(REPO, "web.zip", package("app.js"))
    payload["release"]["assets"] = [{"id": asset, "name": "web.zip", "state": "uploaded"}]
    define(hooks, SOURCE)
    status, answer = deliver(payload, "release")
    assert status == 201 and answer["version"] == payload["release"]["tag_name"]
    record = hooks.deps.store.artifact(SOURCE, answer["version"])
    assert record is not None and record["sha256"] == hashlib.sha256(package("app.js")).hexdigest()

# -- the download links, against the emulator


def test_a_runs_artifact_and_a_release_asset_download_through_short_lived_links(github: GitHubEmulator) -> None:
    links = GitHubArtifacts(Settings(github_api_url=github.url))
    github.add_artifact(REPO, 42, "test-results", b"junit")
    artifact = github.add_artifact(REPO, 42, "package", package())
    asset = github.add_asset(REPO, "web.zip", package("app.js"))
    name, url = links.run_artifact_link(REPO, 42, TOKEN) or ("", "")
    assert name == "package" and f"/_blobs/{artifact}/" in url and TOKEN not in url
    assert httpx.get(url).content == package()
    assert httpx.get(links.asset_link(REPO, asset, TOKEN)).content == package("app.js")
    assert links.run_artifact_link(REPO, 43, TOKEN) is None
    with pytest.raises(TargetError) as caught:
        links.run_artifact_link(REPO, 42, "ghs_wrong")
    assert "401" in str(caught.value) and "ghs_wrong" not in str(caught.value)



# -- Azure Container Registry


def acr_example(name: str = "acr_push.json", digest: str | None = DIGEST) -> dict[str, Any]:
    """The documented example (learn.microsoft.com .../container-registry-webhook-reference), whose digest the docs
    mask with `xxxx`; `digest` puts a real one in."""
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    if digest is not None:
        payload["target"]["digest"] = f"sha256:{digest}"
    return payload


def push(payload: Any, token: str | None = ACR_TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **({"X-Slipway-Webhook-Token": token} if token else {})}
    return call(hooks_api.acr_hook, "POST", payload, headers=headers)


@pytest.mark.parametrize("token", [None, "", "acr-wrong", ACR_TOKEN + " x"])
def test_an_acr_delivery_without_the_configured_header_is_401_and_stores_nothing(hooks: World,
                                                                                 token: str | None) -> None:
    status, answer = push(acr_example(), token)
    assert status == 401 and ACR_TOKEN not in json.dumps(answer)
    assert listed("acr:myregistry.azurecr.io/hello-world") == []


def test_the_documented_push_with_its_masked_digest_is_a_400_naming_it(hooks: World) -> None:
    status, answer = push(acr_example(digest=None))
    assert status == 400 and [e["field"] for e in answer["errors"]] == ["target.digest"]


def test_the_documented_delete_is_202_with_its_reason_listed(hooks: World) -> None:
    status, answer = push(acr_example("acr_delete.json", digest=None))
    assert (status, answer["reason"]) == (202, "action 'delete': only an image push is a build")
    [entry] = listed("acr:myregistry.azurecr.io/hello-world")
    assert (entry["id"], entry["status"], entry["action"]) == ("afc359ce-df7f-4e32-xxxx-1ff8aa80927b", 202, "delete")


def test_a_push_nobody_consumes_is_202_naming_the_image_and_a_redelivery_answers_the_same(hooks: World) -> None:
    first = push(acr_example())
    assert first[0] == 202 and first[1]["image"] == f"myregistry.azurecr.io/hello-world@sha256:{DIGEST}"
    assert first[1]["reason"] == "no definition has an artifact with source acr:myregistry.azurecr.io/hello-world"
    assert push(acr_example()) == first
    assert len(listed("acr:myregistry.azurecr.io/hello-world")) == 1


def test_a_pushed_image_becomes_a_release_pinned_by_its_digest(hooks: World) -> None:
    define(hooks, "acr:myregistry.azurecr.io/hello-world", ["*"])
    status, answer = push(acr_example())
    assert status == 201 and len(answer["releases"]) == 1 and answer["version"] == DIGEST
    record = hooks.deps.store.artifact("acr:myregistry.azurecr.io/hello-world", DIGEST)
    assert record is not None and (record["sha256"], record["buildId"]) == (DIGEST, "v1")


def container_example() -> dict[str, Any]:
    for name, _, payload in examples():
        if name == "package" and payload["package"]["registry"]["type"] == "CONTAINER":
            return copy.deepcopy(payload)
    raise AssertionError("no container package example")


def test_a_published_container_image_is_registered_by_digest_and_released(hooks: World) -> None:
    payload = container_example()
    digest = payload["package"]["package_version"]["version"].removeprefix("sha256:")
    define(hooks, "ghcr:codertocat/hello-world")
    status, answer = deliver(payload, "package", "d-image")
    assert status == 201 and answer["image"] == f"ghcr.io/codertocat/hello-world@sha256:{digest}", answer
    record = hooks.deps.store.artifact("ghcr:codertocat/hello-world", digest)
    assert record is not None and record["sha256"] == digest and "stored" not in record
    assert [e["status"] for e in listed(f"github:{payload['repository']['full_name']}")] == [201]


# -- Azure DevOps


def ado_sample() -> dict[str, Any]:
    return json.loads((FIXTURES / "ado_build_complete.json").read_text())  # type: ignore[no-any-return]


def hook(payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    basic = "Basic " + base64.b64encode(f"slipway:{ADO_PASSWORD}".encode()).decode()
    return call(hooks_api.azure_devops_hook, "POST", payload,
                headers=headers if headers is not None else {"Authorization": basic})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic " + base64.b64encode(b"slipway:nope").decode()},
                                     {"X-Slipway-Webhook-Token": "nope"}])
def test_an_azure_devops_delivery_without_its_credentials_is_401_and_stores_nothing(
        hooks: World, headers: dict[str, str]) -> None:
    status, answer = hook(ado_sample(), headers)
    assert status == 401 and ADO_PASSWORD not in json.dumps(answer)
    assert listed(ADO_SOURCE) == []


def test_the_documented_build_complete_is_recorded_with_why_it_released_nothing(hooks: World) -> None:
    status, answer = hook(ado_sample())
    assert (status, answer["version"]) == (202, "ConsumerAddressModule_20150407.1")
    assert answer["reason"] == f"no definition has an artifact with source {ADO_SOURCE}"
    assert hook(ado_sample(), {"X-Slipway-Webhook-Token": ADO_PASSWORD}) == (status, answer)  # the same event id
    [entry] = listed(ADO_SOURCE)
    assert (entry["id"], entry["event"], entry["status"]) == ("4a5d99d6-1c75-4e53-91b9-ee80057d4ce3",
                                                              "build.complete", 202)


def test_a_failed_azure_devops_build_is_202_with_its_result(hooks: World) -> None:
    payload = ado_sample()
    payload["resource"]["status"] = "failed"
    assert hook(payload)[1]["reason"] == "the build's result is 'failed', not 'succeeded'"


def test_without_an_organization_a_consumed_build_is_recorded_and_releases_nothing(hooks: World) -> None:
    define(hooks, ADO_SOURCE)
    status, answer = hook(ado_sample())
    assert status == 202 and answer["reason"].startswith("SLIPWAY_AZURE_DEVOPS_HOOK_ORGANIZATION is not set")


ORG, PROJECT, PIPELINE = "fabrikam-fiber-inc", "Fabrikam", "Fabrikam.CI"
ADO_NAMED = f"azure-devops:{PROJECT}/{PIPELINE}"
ADO_TOKEN = "ado-identity-token"


@pytest.fixture
def azdo(hooks: World) -> Iterator[AzureDevOpsEmulator]:
    with AzureDevOpsEmulator() as emulator:
        emulator.add_organization(ORG)
        emulator.add_token(ADO_TOKEN, orgs=[ORG])
        hooks.deps.settings = replace(hooks.deps.settings, azure_devops_hook_organization=ORG)
        hooks.deps.azure_pipelines = AzurePipelines(Settings(azure_devops_url=emulator.url),
                                                    credential=StaticToken(ADO_TOKEN))
        yield emulator


class StaticToken:
    """The managed identity's token for Azure DevOps, as azure-identity hands it out."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str) -> Any:
        assert scopes == (AZURE_DEVOPS_SCOPE,)
        return type("AccessToken", (), {"token": self.token})()


def ado_build(azdo: AzureDevOpsEmulator, artifacts: dict[str, dict[str, bytes]], outcome: str = "succeeded",
              branch: str = "master") -> tuple[int, str, str]:
    """(build id, build number, project id) of a finished build of Fabrikam.CI."""
    pipeline = azdo.add_pipeline(ORG, PROJECT, PIPELINE, branches=[branch], outcome=outcome, seconds=1,
                                 queue_seconds=0)
    run = azdo.add_build(ORG, PROJECT, pipeline, branch=branch, artifacts=artifacts)
    return run.id, run.number, azdo.projects[(ORG.lower(), PROJECT.lower())]


def delivered(build_id: int, project_id: str, **resource: Any) -> dict[str, Any]:
    """The documented build.complete sample, about this build (it names the project by id only)."""
    payload = ado_sample()
    payload["id"] = f"event-{build_id}-{len(resource)}"
    payload["resource"].update(id=build_id, **resource)
    payload["resourceContainers"]["project"]["id"] = project_id
    payload["resource"]["definition"]["name"] = PIPELINE
    return payload


def test_a_build_complete_is_read_back_and_its_zip_inside_the_drop_is_released(hooks: World,
                                                                                azdo: AzureDevOpsEmulator) -> None:
    web = package()
    build_id, number, project_id = ado_build(azdo, {"drop": {"WebApp.zip": web, "readme.txt": b"notes"}})
    define(hooks, ADO_NAMED)
    # The delivery's own number and branch are claims: what is released is what Builds - Get answers.
    status, answer = hook(delivered(build_id, project_id, buildNumber="forged.1"))
    assert status == 201 and answer["version"] == number and len(answer["releases"]) == 1, answer
    record = hooks.deps.store.artifact(ADO_NAMED, number)
    assert record is not None and record["sha256"] == hashlib.sha256(web).hexdigest()
    assert (record["buildId"], record["branch"]) == (str(build_id), "refs/heads/master")
    assert hook(delivered(build_id, project_id, buildNumber="forged.1")) == (status, answer)  # redelivery
    assert [e["status"] for e in listed(ADO_NAMED)] == [201]
    assert sum(1 for r in azdo.requests if r.path.endswith("/artifacts") and r.query.get("$format") == "zip") == 1


def test_an_artifact_of_files_is_the_package_without_its_folder(hooks: World, azdo: AzureDevOpsEmulator) -> None:
    build_id, number, project_id = ado_build(azdo, {"package": {"index.html": b"<h1>hi</h1>", "css/a.css": b"a"},
                                                    "logs": {"x.txt": b"x"}})
    define(hooks, ADO_NAMED)
    assert hook(delivered(build_id, project_id))[0] == 201
    record = hooks.deps.store.artifact(ADO_NAMED, number)
    assert record is not None
    data = next(v for (name, _), v in hooks.deps.packages.stored.items() if name == record["stored"])  # type: ignore[attr-defined]
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["css/a.css", "index.html"]


def test_a_pipeline_run_state_changed_event_releases_the_run(hooks: World, azdo: AzureDevOpsEmulator) -> None:
    build_id, number, project_id = ado_build(azdo, {"drop": {"app.zip": package()}})
    define(hooks, ADO_NAMED)
    payload = json.loads((FIXTURES / "ado_run_state_changed.json").read_text())
    payload["resource"]["run"]["id"] = build_id
    payload["resourceContainers"]["project"]["id"] = project_id
    payload["resource"]["pipeline"]["name"] = payload["resource"]["run"]["pipeline"]["name"] = PIPELINE
    status, answer = hook(payload)
    assert status == 201 and answer["version"] == number, answer
    unfinished = copy.deepcopy(payload)
    unfinished["id"] = "another-event"
    unfinished["resource"]["run"].update(state="inProgress", result=None)
    assert hook(unfinished)[1]["reason"] == "the run is 'inProgress': only a completed run is a build"


def test_a_delivery_claiming_success_for_a_failed_build_releases_nothing(hooks: World,
                                                                          azdo: AzureDevOpsEmulator) -> None:
    build_id, _, project_id = ado_build(azdo, {"drop": {"app.zip": package()}}, outcome="failed")
    define(hooks, ADO_NAMED)
    status, answer = hook(delivered(build_id, project_id))
    assert status == 202 and answer["reason"] == "Azure DevOps says the build's result is 'failed', not 'succeeded'"
    assert hooks.deps.store.latest_artifact(ADO_NAMED) is None


def test_a_build_with_no_package_says_what_it_must_publish(hooks: World, azdo: AzureDevOpsEmulator) -> None:
    build_id, number, project_id = ado_build(azdo, {"a": {"x.zip": b"1"}, "b": {"y.zip": b"2"}})
    define(hooks, ADO_NAMED)
    status, answer = hook(delivered(build_id, project_id))
    assert status == 202 and answer["reason"] == (f"build {number} has 2 artifacts and none is named package or drop:"
                                                  " it must publish one, or one named 'package' or 'drop'")


def test_azure_devops_unreachable_is_502_and_a_redelivery_then_releases(hooks: World,
                                                                         azdo: AzureDevOpsEmulator) -> None:
    build_id, number, project_id = ado_build(azdo, {"drop": {"app.zip": package()}})
    define(hooks, ADO_NAMED)
    azdo.inject("artifacts", "error", count=10)
    status, answer = hook(delivered(build_id, project_id))
    assert status == 502 and ADO_TOKEN not in json.dumps(answer)
    assert hooks.deps.store.artifact(ADO_NAMED, number) is None
    assert [e["status"] for e in listed(ADO_NAMED)] == [502]
    azdo.clear_faults()
    assert hook(delivered(build_id, project_id))[0] == 201
    assert [e["status"] for e in listed(ADO_NAMED)] == [201]  # the delivery's outcome now


# -- the dashboard page


def test_the_build_deliveries_page_lists_each_sources_deliveries_escaped(hooks: World) -> None:
    payload = example("release", "published")
    payload["release"]["tag_name"] = "<script>alert(1)</script>"
    deliver(payload, "release", "d-page")
    push(acr_example("acr_delete.json", digest=None))
    page = visit("builds/deliveries")
    body = page.get_body().decode()
    assert page.status_code == 200 and "github:Codertocat/Hello-World" in body and \
        "acr:myregistry.azurecr.io/hello-world" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    one = visit("builds/deliveries", params={"source": "acr:myregistry.azurecr.io/hello-world"}).get_body().decode()
    assert "only an image push is a build" in one and "github:Codertocat" not in one

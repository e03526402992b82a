"""Build webhooks, the pure part: GitHub's signature check and every published example payload of the events
Slipway reads (`@octokit/webhooks-examples`, installed by `npm install`), each read as a build or refused with
the right reason."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.build_hooks import acr, azure_devops
from shared.domain.build_hooks.github import (
    Build,
    ContainerImage,
    NotABuild,
    ReleaseAsset,
    RunArtifact,
    choose_artifact,
    read,
)
from shared.domain.build_hooks.signatures import basic_auth_valid, github_signature_valid, shared_token_valid
from shared.domain.errors import Invalid

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
EVENTS = ("workflow_run", "release", "registry_package", "package", "ping")


@functools.cache
def examples() -> list[tuple[str, int, dict[str, Any]]]:
    """(event, index, payload) of every example of the events Slipway reads; callers copy before changing one."""
    if not EXAMPLES.exists():
        pytest.fail(f"{EXAMPLES} is missing: run `npm install` (package.json lists @octokit/webhooks-examples)")
    found = [(e["name"], i, x) for e in json.loads(EXAMPLES.read_text()) if e["name"] in EVENTS
             for i, x in enumerate(e["examples"])]
    assert {name for name, _, _ in found} >= {"workflow_run", "release", "ping"}
    return found


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- signatures


def test_githubs_documented_example_signature_is_valid() -> None:
    # docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    assert github_signature_valid("It's a Secret to Everybody", b"Hello, World!",
                                  "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0",
                                    sign("another secret", b"{}"), sign("s3cret", b"{} "),
                                    sign("s3cret", b"{}")[:-1], "sha256=" + "é" * 64])
def test_a_missing_or_wrong_signature_is_refused(header: str | None) -> None:
    assert not github_signature_valid("s3cret", b"{}", header)


def test_no_secret_configured_refuses_everything_even_an_empty_key_signature() -> None:
    assert not github_signature_valid("", b"{}", sign("", b"{}"))


# -- every published example


@pytest.mark.parametrize(("event", "index", "payload"), examples(), ids=lambda v: v if isinstance(v, str | int)
                         else "")
def test_every_example_is_a_build_or_a_reason(event: str, index: int, payload: dict[str, Any]) -> None:
    meaning = read(event, payload)
    action = payload.get("action")
    if event == "ping":
        assert isinstance(meaning, NotABuild) and meaning.status == 200
        return
    assert meaning.source == f"github:{payload['repository']['full_name']}"
    if event == "workflow_run" and action == "completed" and payload["workflow_run"]["conclusion"] == "success":
        run = payload["workflow_run"]
        assert isinstance(meaning, Build)
        assert meaning.fetch == RunArtifact(payload["repository"]["full_name"], run["id"])
        assert meaning.version == f"{run['run_number']}.{run.get('run_attempt', 1)}+{run['head_sha'][:7]}"
        assert meaning.sources == (f"{meaning.source}/{run['path'].rsplit('/', 1)[-1]}", meaning.source)
        assert (meaning.branch, meaning.commit, meaning.build_id) == (run["head_branch"], run["head_sha"],
                                                                      str(run["id"]))
        return
    if event in ("package", "registry_package") and action == "published" and \
            payload[event]["registry"]["type"] == "CONTAINER":
        version = payload[event]["package_version"]
        assert isinstance(meaning, Build) and meaning.version == version["version"].removeprefix("sha256:")
        assert meaning.sources == ("ghcr:codertocat/hello-world",)
        assert meaning.fetch == ContainerImage(f"ghcr.io/codertocat/hello-world@{version['version']}")
        assert (meaning.branch, meaning.commit) == ("master", version["target_oid"])
        return
    assert isinstance(meaning, NotABuild) and meaning.status == 202
    if event == "workflow_run" and action == "completed":
        assert f"concluded '{payload['workflow_run']['conclusion']}'" in meaning.reason
    elif event == "workflow_run":
        assert meaning.reason == f"workflow_run {action}: only a completed run is a build"
    elif event == "release" and action == "published":
        assert not payload["release"]["assets"]  # the published examples carry no asset
        assert meaning.reason == f"release {payload['release']['tag_name']} has no uploaded asset"
    elif event == "release":
        assert meaning.reason == f"release {action}: only a published release is a build"
    elif action == "published":
        assert "a published npm package cannot become a release" in meaning.reason
    else:
        assert "only a published package" in meaning.reason


def _published_release() -> dict[str, Any]:
    found = [x for name, _, x in examples() if name == "release" and x["action"] == "published"]
    return copy.deepcopy(found[0])


def test_a_published_release_with_one_asset_is_that_asset() -> None:
    payload = _published_release()
    payload["release"]["assets"] = [{"id": 9, "name": "web.zip", "state": "uploaded"}]
    meaning = read("release", payload)
    assert isinstance(meaning, Build)
    assert meaning.fetch == ReleaseAsset("Codertocat/Hello-World", 9, "web.zip")
    assert (meaning.version, meaning.branch, meaning.sources) == ("0.0.1", "master", ("github:Codertocat/Hello-World",))


def test_with_several_assets_the_one_named_package_is_taken_or_none() -> None:
    payload = _published_release()
    payload["release"]["assets"] = [{"id": 1, "name": "notes.txt"}, {"id": 2, "name": "package.zip"},
                                    {"id": 3, "name": "web.zip", "state": "starter"}]
    meaning = read("release", payload)
    assert isinstance(meaning, Build) and meaning.fetch == ReleaseAsset("Codertocat/Hello-World", 2, "package.zip")
    payload["release"]["assets"] = [{"id": 1, "name": "a.zip"}, {"id": 2, "name": "b.zip"}]
    meaning = read("release", payload)
    assert isinstance(meaning, NotABuild) and "2 assets and none is named package.zip" in meaning.reason


def test_a_tag_that_is_not_a_version_is_a_reason() -> None:
    payload = _published_release()
    payload["release"]["tag_name"] = "release 1/2"
    meaning = read("release", payload)
    assert isinstance(meaning, NotABuild) and "is not a version" in meaning.reason


def test_a_runs_package_artifact_is_its_only_unexpired_one_or_the_one_named_package() -> None:
    assert choose_artifact([{"id": 1, "name": "web"}]) == {"id": 1, "name": "web"}
    assert choose_artifact([{"id": 1, "name": "web", "expired": True}]) is None
    assert choose_artifact([{"id": 1, "name": "tests"}, {"id": 2, "name": "package"}])["id"] == 2  # type: ignore[index]
    assert choose_artifact([{"id": 1, "name": "tests"}, {"id": 2, "name": "web"}]) is None
    assert choose_artifact([]) is None


@pytest.mark.parametrize(("event", "payload", "field"), [
    ("workflow_run", [], "body"),
    ("workflow_run", {"action": "completed"}, "repository.full_name"),
    ("release", {"repository": {"full_name": "no-slash"}}, "repository.full_name"),
    ("workflow_run", {"action": "completed", "repository": {"full_name": "o/r"}}, "workflow_run"),
    ("workflow_run", {"action": "completed", "repository": {"full_name": "o/r"},
                      "workflow_run": {"conclusion": "success", "id": "7", "run_number": 1}}, "workflow_run.id"),
    ("workflow_run", {"action": "completed", "repository": {"full_name": "o/r"},
                      "workflow_run": {"conclusion": "success", "id": 7, "run_number": 1, "head_sha": "zz"}},
     "workflow_run.head_sha"),
    ("release", {"action": "published", "repository": {"full_name": "o/r"}, "release": {"tag_name": "v1"}},
     "release.assets"),
])
def test_a_payload_without_what_its_event_needs_is_a_400_naming_the_field(event: str, payload: Any,
                                                                         field: str) -> None:
    with pytest.raises(Invalid) as caught:
        read(event, payload)
    assert [e.field for e in caught.value.errors] == [field]


def test_an_event_slipway_does_not_read_is_a_reason() -> None:
    meaning = read("push", {"repository": {"full_name": "o/r"}})
    assert isinstance(meaning, NotABuild) and meaning.status == 202 and "'push' is not a build" in meaning.reason


# -- Azure Container Registry


def _acr_push(**target: Any) -> dict[str, Any]:
    fixture = json.loads((REPO / "tests" / "fixtures" / "acr_push.json").read_text())
    fixture["target"].update(target)
    return fixture  # type: ignore[no-any-return]


def test_an_acr_push_is_the_image_pinned_by_its_digest() -> None:
    digest = "a" * 64
    meaning = acr.read(_acr_push(digest=f"sha256:{digest}", repository="team/web"))
    assert meaning == acr.Image("acr:myregistry.azurecr.io/team/web", digest, "v1",
                                f"myregistry.azurecr.io/team/web@sha256:{digest}")


@pytest.mark.parametrize(("target", "field"), [({"digest": "sha256:" + "A" * 64}, "target.digest"),
                                               ({"digest": None}, "target.digest"),
                                               ({"repository": "Web/../x"}, "target.repository")])
def test_an_acr_push_without_a_digest_or_repository_is_a_400_naming_it(target: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        acr.read(_acr_push(**target))
    assert [e.field for e in caught.value.errors] == [field]


def test_other_acr_actions_are_reasons() -> None:
    meaning = acr.read({**_acr_push(), "action": "chart_push"})
    assert isinstance(meaning, NotABuild) and meaning.reason == "action 'chart_push': only an image push is a build"


def test_a_shared_header_token_matches_exactly() -> None:
    assert shared_token_valid("t0ken", "t0ken") and not shared_token_valid("t0ken", "t0ken2")
    assert not shared_token_valid("", "") and not shared_token_valid("t0ken", None)


# -- Azure DevOps


def _ado_sample() -> dict[str, Any]:
    """learn.microsoft.com/azure/devops/service-hooks/events#build.complete, as documented."""
    return json.loads((REPO / "tests" / "fixtures" / "ado_build_complete.json").read_text())  # type: ignore[no-any-return]


def test_the_documented_build_complete_is_a_build_of_the_project_and_pipeline() -> None:
    meaning = azure_devops.read(_ado_sample())
    assert meaning == azure_devops.AdoBuild(
        "be9b3917-87e6-42a4-a549-2bc06a7a878f", "ConsumerAddressModule", "ConsumerAddressModule_20150407.1",
        2, "refs/heads/master", "600c52d2d5b655caa111abfd863e5a9bd304bb0e")
    assert meaning.source == "azure-devops:be9b3917-87e6-42a4-a549-2bc06a7a878f/ConsumerAddressModule"


def test_a_newer_build_complete_names_the_project_and_carries_result_branch_and_commit() -> None:
    payload = _ado_sample()
    payload["resource"].update(status="completed", result="succeeded", project={"id": "p", "name": "Tailspin"},
                               sourceBranch="refs/heads/main", sourceVersion="a" * 40)
    meaning = azure_devops.read(payload)
    assert isinstance(meaning, azure_devops.AdoBuild)
    assert (meaning.source, meaning.branch, meaning.commit) == ("azure-devops:Tailspin/ConsumerAddressModule",
                                                                "refs/heads/main", "a" * 40)


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "failed"}, "the build's result is 'failed', not 'succeeded'"),
    ({"status": "completed", "result": "partiallySucceeded"},
     "the build's result is 'partiallySucceeded', not 'succeeded'"),
    ({"buildNumber": "Build 7/2"}, "the build number 'Build 7/2' is not a version Slipway accepts"),
])
def test_an_unsuccessful_or_unversionable_build_is_a_reason(change: dict[str, Any], reason: str) -> None:
    payload = _ado_sample()
    payload["resource"].update(change)
    meaning = azure_devops.read(payload)
    assert isinstance(meaning, NotABuild) and meaning.reason.startswith(reason)


def test_another_azure_devops_event_is_a_reason() -> None:
    meaning = azure_devops.read({**_ado_sample(), "eventType": "git.push"})
    assert isinstance(meaning, NotABuild)
    assert meaning.reason == ("event 'git.push' is not a build: Slipway reads build.complete and "
                              "ms.vss-pipelines.run-state-changed-event")


def _run_sample() -> dict[str, Any]:
    """learn.microsoft.com/azure/devops/service-hooks/events "Run state changed", as documented."""
    return json.loads((REPO / "tests" / "fixtures" / "ado_run_state_changed.json").read_text())  # type: ignore[no-any-return]


def test_the_documented_run_state_changed_is_a_build_of_the_pipeline() -> None:
    assert azure_devops.read(_run_sample()) == azure_devops.AdoBuild(
        "be9b3917-87e6-42a4-a549-2bc06a7a878f", "TEST-CI", "11", 11, None, None)


@pytest.mark.parametrize(("run", "reason"), [
    ({"state": "inProgress", "result": None}, "the run is 'inProgress'"),
    ({"result": "failed"}, "the run's result is 'failed'"),
    ({"name": "run 11"}, "the build number 'run 11' is not a version"),
])
def test_an_unfinished_or_failed_run_is_a_reason(run: dict[str, Any], reason: str) -> None:
    payload = _run_sample()
    payload["resource"]["run"].update(run)
    meaning = azure_devops.read(payload)
    assert isinstance(meaning, NotABuild) and meaning.reason.startswith(reason)


def test_a_run_without_its_id_is_a_400_naming_it() -> None:
    payload = _run_sample()
    del payload["resource"]["run"]["id"]
    with pytest.raises(Invalid) as raised:
        azure_devops.read(payload)
    assert raised.value.errors[0].field == "resource.run.id"


@pytest.mark.parametrize(("names", "chosen"), [
    (["drop/WebApp.zip", "drop/readme.txt"], "drop/WebApp.zip"),
    (["drop/a.zip", "drop/package.zip"], "drop/package.zip"),
    (["drop/a.zip", "drop/b.zip"], None),
    (["drop/index.html"], None),
])
def test_the_package_inside_an_artifact_is_its_only_zip_or_package_zip(names: list[str], chosen: str | None) -> None:
    assert azure_devops.inner_package(names) == chosen


def test_of_several_artifacts_the_package_or_drop_one_is_chosen() -> None:
    assert azure_devops.choose_artifact([{"name": "logs"}, {"name": "drop"}]) == {"name": "drop"}
    assert azure_devops.choose_artifact([{"name": "logs"}, {"name": "web"}]) is None
    assert azure_devops.choose_artifact([{"name": "web"}]) == {"name": "web"}


@pytest.mark.parametrize(("header", "valid"), [
    ("Basic " + base64.b64encode(b"slipway:pa:ss").decode(), True),
    ("basic " + base64.b64encode(b"slipway:pa:ss").decode(), True),
    ("Basic " + base64.b64encode(b"slipway:pa:sS").decode(), False),
    ("Basic " + base64.b64encode(b"other:pa:ss").decode(), False),
    ("Basic " + base64.b64encode(b"slipwaypa:ss").decode(), False),
    ("Basic !!!", False), ("Bearer pa:ss", False), (None, False)])
def test_basic_authentication_needs_the_user_and_the_password(header: str | None, valid: bool) -> None:
    assert basic_auth_valid("slipway", "pa:ss", header) is valid
    assert not basic_auth_valid("", "", "Basic " + base64.b64encode(b":").decode())

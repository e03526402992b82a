"""The official `azure-devops` client (ReleaseClient 7.1) against Slipway's Azure DevOps-compatible surface on
the local stack, authenticated with personal access tokens an admin issued: discovery, every call the
surface serves, a whole release (created, approved, a gate ignored, an intervention resumed, the manual
stage started and approved, its deployments and logs read), and the refusals (a wrong or revoked token,
a reader who is no approver, an unsupported request)."""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

os.environ["AZURE_DEVOPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ado-cache-")  # before the client is imported

import httpx  # noqa: E402
import pytest  # noqa: E402
from azure.devops import _file_cache  # noqa: E402
from azure.devops.client import Client  # noqa: E402
from azure.devops.connection import Connection  # noqa: E402
from azure.devops.exceptions import AzureDevOpsServiceError  # noqa: E402
from azure.devops.v7_1.release import ReleaseClient  # noqa: E402
from azure.devops.v7_1.release.models import (  # noqa: E402
    ArtifactMetadata,
    BuildVersion,
    GateUpdateMetadata,
    IdentityRef,
    ManualInterventionUpdateMetadata,
    ReleaseApproval,
    ReleaseEnvironmentUpdateMetadata,
    ReleaseStartMetadata,
)
from msrest.authentication import BasicAuthentication  # noqa: E402

from local.stack import SAMPLE_TARGET, LocalStack  # noqa: E402
from shared.services.ado_compat import ids  # noqa: E402

pytestmark = pytest.mark.e2e
PROJECT = "Web Shop/ü"  # percent-encoded by the client, %2F included
ADMIN = {"X-Slipway-Acting-As": "admin@contoso.com; roles=Slipway.Admin"}  # the local stack's development mode
TARGET = {**SAMPLE_TARGET, "slot": "dev"}
DEFINITION = {
    "name": "ADO compat",
    "artifacts": [{"alias": "app-ci", "source": "ado-compat-app", "isPrimary": True}],
    "stages": [
        {"name": "Dev", "target": TARGET, "trigger": {"type": "afterRelease"},
         "preApprovals": {"approvers": ["tim@contoso.com"], "policy": "anyOne"},
         "steps": [{"type": "wait", "name": "settle", "seconds": 0}]},
        {"name": "QA", "target": TARGET, "trigger": {"type": "afterStages", "stages": ["Dev"]},
         "preGates": {"delayMinutes": 60, "intervalMinutes": 5, "timeoutMinutes": 120,
                      "signals": [{"type": "rest", "name": "Health", "url": "https://status.example/health",
                                   "operator": "==", "threshold": True}]},
         "steps": [{"type": "manual-intervention", "name": "Check by hand", "instructions": "Look at QA",
                    "assignees": ["tim@contoso.com"]},
                   {"type": "wait", "name": "settle", "seconds": 0}]},
        {"name": "Prod", "target": TARGET, "trigger": {"type": "manual"},
         "preApprovals": {"approvers": ["tim@contoso.com"], "policy": "anyOne"},
         "steps": [{"type": "wait", "name": "settle", "seconds": 0}]},
    ],
}


class World:
    def __init__(self, stack: LocalStack) -> None:
        assert stack.host is not None
        self.stack, self.host = stack, stack.host.base_url
        self.org = f"{self.host}/ado/Contoso"
        created = httpx.post(f"{stack.api}/definitions", json=DEFINITION, headers=ADMIN, timeout=30)
        assert created.status_code == 201, created.text
        self.definition_id = int(created.json()["id"])
        for build in ({"version": "20240501.1", "buildId": "42"}, {"version": "43"}):
            built = httpx.post(f"{stack.api}/artifacts", json={"source": "ado-compat-app", **build}, headers=ADMIN,
                               timeout=30)
            assert built.status_code in (200, 201), built.text
        self.tokens: dict[str, dict[str, Any]] = {}
        for who, roles in (("amita", ["releaseManager"]), ("tim", ["reader"]), ("bob", ["reader"]),
                           ("ada", ["admin"])):
            issued = httpx.post(f"{stack.api}/tokens", json={"name": f"{who}'s scripts", "identity":
                                                             f"{who}@contoso.com", "roles": roles}, headers=ADMIN,
                                timeout=30)
            assert issued.status_code == 201, issued.text
            self.tokens[who] = issued.json()

    def client(self, who: str) -> ReleaseClient:
        return ReleaseClient(base_url=self.org, creds=BasicAuthentication("", self.tokens[who]["token"]))

    def raw(self, method: str, path: str, who: str = "amita", **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.org}/{path}", auth=("", self.tokens[who]["token"]), timeout=30, **kw)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    _file_cache.OPTIONS_CACHE.file_name = os.path.join(os.environ["AZURE_DEVOPS_CACHE_DIR"], "options.json")
    _file_cache.OPTIONS_CACHE.clear()
    Client._locations_cache.clear()
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1, seed=False) as stack:
        yield World(stack)


def eventually(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert value, "timed out"
    return value


def test_discovery_answers_microsofts_locations_and_the_release_area(world: World) -> None:
    options = httpx.request("OPTIONS", f"{world.org.lower()}/_apis", auth=("", world.tokens["tim"]["token"]),
                            headers={"Accept": "application/json"}, timeout=30)
    assert options.status_code == 200 and options.headers["content-type"].startswith("application/json")
    found = {loc["id"]: loc for loc in options.json()["value"]}
    for ident in ("d8f96f24-8ea7-4cb6-baab-2df8fc515665", "a166fde7-27ad-408e-ba75-703c2cc9d500",
                  "b47c6458-e73b-47cb-a770-4df1e8813a91", "9328e074-59fb-465a-89d9-b09c82ee5109",
                  "a7e426b1-03dc-48af-9dfe-c98bac612dcb", "b005ef73-cddc-448e-9ba2-5193bf36b19f",
                  "e81700f7-3be2-46de-8624-2eb35882fcaa"):
        assert float(found[ident]["maxVersion"]) >= 7.1 and found[ident]["resourceVersion"] >= 1
    connection = Connection(base_url=world.org, creds=BasicAuthentication("scripts", world.tokens["tim"]["token"]))
    release = connection.clients_v7_1.get_release_client()
    assert release.normalized_url.lower().startswith(world.org.lower())
    names = [d.name for d in release.get_release_definitions(PROJECT, search_text="ado COMPAT")]
    assert names == ["ADO compat"]


def test_a_whole_release_through_the_official_client(world: World) -> None:
    amita, tim, ada = world.client("amita"), world.client("tim"), world.client("ada")
    definition = tim.get_release_definition(PROJECT, world.definition_id)
    assert [(e.name, e.rank) for e in definition.environments] == [("Dev", 1), ("QA", 2), ("Prod", 3)]

    created = amita.create_release(ReleaseStartMetadata(
        definition_id=world.definition_id, description="from the client", is_draft=False, reason="manual",
        manual_environments=["Prod"], artifacts=[ArtifactMetadata(alias="app-ci", instance_reference=BuildVersion(
            id="42", name="20240501.1"))]), PROJECT)
    rid = created.id
    assert created.description == "from the client" and created.project_reference.name == PROJECT
    assert created.artifacts[0].definition_reference["version"].name == "20240501.1"
    envs = {e.name: e.id for e in created.environments}
    assert rid in [r.id for r in tim.get_releases(PROJECT, definition_id=world.definition_id, top=10)]

    # Dev waits for Tim's pre-deployment approval: a reader who is not its approver may not decide it
    [pending] = eventually(lambda: tim.get_approvals(PROJECT, status_filter="pending", release_ids_filter=str(rid)))
    assert pending.approver.unique_name == "tim@contoso.com" and pending.release_environment.id == envs["Dev"]
    with pytest.raises(AzureDevOpsServiceError, match="bob@contoso.com"):
        world.client("bob").update_release_approval(ReleaseApproval(status="approved", comments="me too"), PROJECT,
                                                    pending.id)
    decided = tim.update_release_approval(ReleaseApproval(status="approved", comments="LGTM"), PROJECT, pending.id)
    assert (decided.status, decided.comments, decided.approved_by.unique_name) == ("approved", "LGTM",
                                                                                  "tim@contoso.com")

    # QA's gate waits (a delay of an hour): only an admin may ignore it
    def qa_gate() -> Any:
        qa = tim.get_release_environment(PROJECT, rid, envs["QA"])
        return qa.deploy_steps and qa.deploy_steps[-1].pre_deployment_gates

    gate = eventually(qa_gate)
    assert gate.status == "pending" and ids.decode(ids.GATE, gate.id).owner == rid
    with pytest.raises(AzureDevOpsServiceError, match="admin"):
        tim.update_gates(GateUpdateMetadata(gates_to_ignore=["Health"], comment="no"), PROJECT, gate.id)
    ignored = ada.update_gates(GateUpdateMetadata(gates_to_ignore=["Health"], comment="the probe is down"), PROJECT,
                               gate.id)
    assert ignored.status == "succeeded" and [g.name for g in ignored.ignored_gates] == ["Health"]

    # then its manual intervention waits for Tim
    [check] = eventually(lambda: [m for m in tim.get_manual_interventions(PROJECT, rid) if m.status == "pending"])
    assert tim.get_manual_intervention(PROJECT, rid, check.id).instructions == "Look at QA"
    resumed = tim.update_manual_intervention(ManualInterventionUpdateMetadata(status="approved", comment="checked"),
                                             PROJECT, rid, check.id)
    assert resumed.status == "approved" and resumed.comments == "checked"
    eventually(lambda: tim.get_release_environment(PROJECT, rid, envs["QA"]).status == "succeeded")

    # the manual stage, started as Azure DevOps starts it, then approved
    started = amita.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress",
                                                                                comment="deploy Prod"),
                                               PROJECT, rid, envs["Prod"])
    assert started.status in ("queued", "inProgress") and started.id == envs["Prod"]
    [prod] = eventually(lambda: tim.get_approvals(PROJECT, release_ids_filter=str(rid)))
    tim.update_release_approval(ReleaseApproval(status="approved", comments="ship it"), PROJECT, prod.id)
    eventually(lambda: tim.get_release(PROJECT, rid).environments[2].status == "succeeded")

    latest = tim.get_deployments(PROJECT, definition_id=world.definition_id, latest_attempts_only=True, top=10)
    mine = {d.release_environment.name: d for d in latest if d.release.id == rid}
    assert {n: (d.deployment_status, d.attempt) for n, d in mine.items()} == {
        "Dev": ("succeeded", 1), "QA": ("succeeded", 1), "Prod": ("succeeded", 1)}
    assert mine["Prod"].pre_deploy_approvals[0].comments == "ship it"
    assert mine["Prod"].requested_by.unique_name == "amita@contoso.com"
    assert [d.release_environment.name for d in tim.get_deployments(
        PROJECT, definition_environment_id=mine["QA"].definition_environment_id) if d.release.id == rid] == ["QA"]

    # the logs: every step's as a zip, one step's as text
    archive = zipfile.ZipFile(io.BytesIO(b"".join(tim.get_logs(PROJECT, rid))))
    assert "Dev/attempt-1/00-settle.log" in archive.namelist()
    dev = tim.get_release_environment(PROJECT, rid, envs["Dev"])
    task = dev.deploy_steps[0].release_deploy_phases[0].deployment_jobs[0].tasks[0]
    text = b"".join(tim.get_task_log(PROJECT, rid, envs["Dev"], dev.deploy_steps[0].release_deploy_phases[0].id,
                                     task.id)).decode()
    assert "waited until" in text


def test_the_caller_needs_its_roles_and_a_live_token(world: World) -> None:
    tim = world.client("tim")
    with pytest.raises(AzureDevOpsServiceError, match="releaseManager"):
        tim.create_release(ReleaseStartMetadata(definition_id=world.definition_id), PROJECT)
    # a refused token is a 401 in Azure DevOps' shape, which the client raises as a service error (as it
    # does for Azure DevOps' own TF400813)
    wrong = ReleaseClient(base_url=world.org, creds=BasicAuthentication("", "slp_aaaaaaaa_" + "b" * 52))
    with pytest.raises(AzureDevOpsServiceError, match="not valid"):
        wrong.get_releases(PROJECT)
    assert httpx.get(f"{world.org}/Web/_apis/Release/releases", auth=("", "slp_aaaaaaaa_" + "b" * 52),
                     timeout=30).status_code == 401
    bob = world.client("bob")
    assert bob.get_release_definitions(PROJECT)
    revoked = httpx.delete(f"{world.stack.api}/tokens/{world.tokens['bob']['id']}", headers=ADMIN, timeout=30)
    assert revoked.status_code == 204
    with pytest.raises(AzureDevOpsServiceError, match="revoked"):
        bob.get_release_definitions(PROJECT)
    assert world.raw("GET", "Web/_apis/Release/definitions", who="bob").status_code == 401
    listed = httpx.get(f"{world.stack.api}/tokens", headers=ADMIN, timeout=30).json()["value"]
    assert {t["identity"]: t["status"] for t in listed}["bob@contoso.com"] == "revoked"
    assert all("token" not in t and "sha256" not in t for t in listed)
    anonymous = httpx.get(f"{world.org}/Web/_apis/Release/releases", timeout=30)
    assert anonymous.status_code == 200  # no credentials: the local stack's development identity, as on /api


BAD = [
    ("POST", "_apis/Release/releases", {}, 400, "definitionId"),
    ("POST", "_apis/Release/releases", {"definitionId": 999999}, 404, "definition 999999"),
    ("POST", "_apis/Release/releases", {"definitionId": 1, "isDraft": True}, 400, "isDraft"),
    ("PATCH", "_apis/Release/releases/999999/environments/64", {"status": "inProgress"}, 404, "999999"),
    ("PATCH", "_apis/Release/approvals/12", {"status": "approved"}, 404, "approval 12"),
    ("PATCH", "_apis/Release/gates/1", {"gatesToIgnore": ["x"]}, 403, "admin role"),  # the role comes first
    ("GET", "_apis/Release/releases?$top=0", None, 400, "$top"),
    ("GET", "_apis/Release/releases?continuationToken=not-ours!", None, 400, "continuationToken"),
    ("GET", "_apis/Release/approvals?statusFilter=maybe", None, 400, "statusFilter"),
    ("GET", "_apis/Release/deployments?deploymentStatus=sideways", None, 400, "deploymentStatus"),
    ("GET", "_apis/Release/releases/99999999999999999999", None, 404, "releases"),
    ("GET", "_apis/Release/nothing", None, 404, "nothing"),
    ("PUT", "_apis/Release/definitions/1", {}, 405, "PUT"),
    ("GET", "_apis/build/builds", None, 404, "Release area"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "said"), BAD)
def test_bad_input_is_an_azure_devops_error_never_a_5xx(world: World, method: str, path: str, body: Any,
                                                         status: int, said: str) -> None:
    answer = world.raw(method, f"Web/{path}", json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert said in error["message"] and error["eventId"] == 3000 and {"typeName", "typeKey"} <= set(error)


def test_refused_versions_bodies_and_paths(world: World) -> None:
    newer = world.raw("GET", "Web/_apis/Release/definitions", headers={"Accept": "application/json;api-version=9.0"})
    assert newer.status_code == 400 and "api-version" in newer.json()["message"]
    broken = world.raw("PATCH", "Web/_apis/Release/approvals/8192", content=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "body" in broken.json()["message"]
    no_gate = world.raw("PATCH", "Web/_apis/Release/gates/1", who="ada", json={"gatesToIgnore": ["x"]})
    assert no_gate.status_code == 404 and "gate" in no_gate.json()["message"]
    elsewhere = world.raw("GET", "nowhere")
    assert elsewhere.status_code == 404 and elsewhere.json()["typeKey"]
    stranger = httpx.get(f"{world.org}/Web/_apis/Release/releases", auth=("", "not-a-token"), timeout=30)
    assert stranger.status_code == 401 and stranger.json()["message"]


def test_reads_never_change_a_release(world: World) -> None:
    amita = world.client("amita")
    created = amita.create_release(ReleaseStartMetadata(definition_id=world.definition_id, artifacts=[
        ArtifactMetadata(alias="app-ci", instance_reference=BuildVersion(id="43"))]), PROJECT)  # a build id alone
    eventually(lambda: amita.get_approvals(PROJECT, release_ids_filter=str(created.id)))
    before = httpx.get(f"{world.stack.api}/releases/{created.id}", headers=ADMIN, timeout=30).headers["ETag"]
    amita.get_release(PROJECT, created.id)
    amita.get_release_environment(PROJECT, created.id, created.environments[0].id)
    amita.get_approvals(PROJECT, release_ids_filter=str(created.id))
    amita.get_deployments(PROJECT, definition_id=world.definition_id)
    amita.get_manual_interventions(PROJECT, created.id)
    after = httpx.get(f"{world.stack.api}/releases/{created.id}", headers=ADMIN, timeout=30).headers["ETag"]
    assert before == after


def test_an_approver_reassigns_an_approval_as_azure_devops_does(world: World) -> None:
    """Approvals_Update takes "status, approver and comments": `reassigned` hands the entry over."""
    tim, ada = world.client("tim"), world.client("ada")
    created = world.client("amita").create_release(ReleaseStartMetadata(definition_id=world.definition_id, artifacts=[
        ArtifactMetadata(alias="app-ci", instance_reference=BuildVersion(name="20240501.1"))]), PROJECT)
    [pending] = eventually(lambda: tim.get_approvals(PROJECT, release_ids_filter=str(created.id),
                                                     assigned_to_filter="tim@contoso.com"))
    moved = tim.update_release_approval(ReleaseApproval(status="reassigned", comments="on leave",
                                                        approver=IdentityRef(unique_name="ada@contoso.com")),
                                        PROJECT, pending.id)
    assert (moved.id, moved.status, moved.approver.unique_name) == (pending.id, "pending", "ada@contoso.com")
    assert moved.history[0].comments == "on leave"
    assert not tim.get_approvals(PROJECT, release_ids_filter=str(created.id), assigned_to_filter="tim@contoso.com")
    done = ada.update_release_approval(ReleaseApproval(status="approved"), PROJECT, pending.id)
    assert done.status == "approved" and done.approved_by.unique_name == "ada@contoso.com"

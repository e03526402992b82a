"""A manual stage that requires upstream stages, through HTTP: a release that failed Dev is refused at
Preprod with a 409 naming Dev, in the API and the dashboard; an admin overrides with a reason, audited."""

from __future__ import annotations

import html
from typing import Any

from functions import definitions_api as defs
from functions import releases_api as rels
from shared.ports import TargetError
from tests.integration.conftest import World, stage
from tests.integration.test_approvals_api import AMITA
from tests.integration.test_dashboard import text, visit
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

ADA = as_("ada@contoso.com", roles=["Slipway.Admin"])


def pipeline(world: World) -> int:
    body = {"name": "Tailspin", "artifacts": [{"alias": "web", "source": "tailspin-web"}],
            "stages": [stage("Dev"), stage("Preprod", {"type": "manual", "stages": ["Dev"]})]}
    status, created = call(defs.definitions_collection, "POST", body)
    assert status == 201, created
    return int(created["id"])


def release_after_dev(world: World, did: int, version: str, *, dev_fails: bool) -> int:
    if dev_fails:
        world.app_service.failures = [TargetError("site tailspin/dev not found (ResourceNotFound)", retryable=False)]
    rid = int(world.release(did, version).id)
    world.pump()
    assert world.get(rid).stages["Dev"].status == ("failed" if dev_fails else "succeeded")
    return rid


def deploy(rid: int, headers: dict[str, str], body: dict[str, Any] | None = None) -> tuple[int, Any]:
    return call(rels.deploy_stage, "POST", body, releaseId=rid, stage="Preprod", headers=headers)


def test_a_release_that_failed_dev_is_refused_at_preprod_naming_dev(api: World) -> None:  # noqa: F811
    did = pipeline(api)
    rid = release_after_dev(api, did, "1.2.0", dev_fails=True)
    status, problem = deploy(rid, AMITA)
    assert status == 409, problem
    assert "Dev (failed)" in problem["detail"] and "Preprod" in problem["detail"]
    assert api.get(rid).stages["Preprod"].deployments == []
    ok = release_after_dev(api, did, "1.2.1", dev_fails=False)
    status, shown = deploy(ok, AMITA)
    assert status == 202 and shown["stages"][1]["status"] == "inProgress"


def test_only_an_admin_overrides_with_a_reason_and_the_events_say_who_and_why(api: World) -> None:  # noqa: F811
    rid = release_after_dev(api, pipeline(api), "1.2.0", dev_fails=True)
    status, problem = deploy(rid, AMITA, {"override": {"reason": "hotfix for incident 9"}})
    assert status == 403 and "admin" in problem["detail"]
    bads: list[dict[str, Any]] = [{"override": {"reason": ""}}, {"override": {"reason": "x" * 501}},
                                  {"override": {}}, {"override": "because"}]
    for bad in bads:
        status, problem = deploy(rid, ADA, bad)
        assert status == 400 and problem["errors"][0]["field"].startswith("override"), (bad, problem)
    assert api.get(rid).stages["Preprod"].deployments == []
    status, _ = deploy(rid, ADA, {"override": {"reason": "hotfix for incident 9"}})
    assert status == 202
    events = call(rels.release_events, "GET", releaseId=rid)[1]["value"]
    [overridden] = [e for e in events if e["type"] == "upstreamOverridden"]
    assert overridden["by"] == "ada@contoso.com" and overridden["stage"] == "Preprod"
    assert "hotfix for incident 9" in overridden["message"] and "Dev (failed)" in overridden["message"]


def test_the_dashboard_deploy_form_shows_the_409(api: World) -> None:  # noqa: F811
    rid = release_after_dev(api, pipeline(api), "1.2.0", dev_fails=True)
    resp = visit(f"releases/{rid}/stages/Preprod/deploy", "POST", {}, headers=AMITA)
    assert resp.status_code == 409 and "Dev (failed)" in html.unescape(text(resp))
    assert api.get(rid).stages["Preprod"].deployments == []

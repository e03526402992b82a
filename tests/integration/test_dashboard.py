"""The dashboard's pages and forms as the host calls them: what they show, that they escape user
text, that a GET changes nothing, and that the forms decide, create and deploy as the API does."""

from __future__ import annotations

import html
import io
import urllib.parse
import zipfile
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest
from markupsafe import escape

from functions import dashboard as dash
from shared import bootstrap
from shared.schemas.release import BuildIn
from shared.services import artifacts, releases
from tests.integration.conftest import World, stage
from tests.integration.test_approvals_api import AMITA, TIM, release_in_production
from tests.integration.test_http_api import api, as_  # noqa: F401  (fixture)

HOSTILE = "<script>alert(1)</script>"


def visit(path: str, method: str = "GET", form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
          params: dict[str, str] | None = None) -> func.HttpResponse:
    data = urlencode(form or {}).encode()
    req = func.HttpRequest(method, f"http://localhost/{path}", body=data, headers=headers or {},
                           params=params or {}, route_params={"path": path})
    return dash.dashboard(req)


def text(resp: func.HttpResponse) -> str:
    return resp.get_body().decode()


def snapshot(world: World, release_id: int) -> tuple[Any, ...]:
    release, etag = releases.read(world.deps, release_id)
    return etag, release.to_dict(), releases.events(world.deps, release_id)


def test_every_page_shows_its_content_and_escapes_user_text(api: World) -> None:  # noqa: F811
    hostile_stage = {**stage(HOSTILE, {"type": "afterRelease"}, slot="test"),
                     "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = api.define([stage("Dev"), hostile_stage], description=HOSTILE)["id"]
    release = api.release(did)
    api.pump()
    pages = ["", f"pipelines/{did}", f"releases/{release.id}", "approvals?all=1", f"pipelines/{did}/environments",
             "metrics"]
    for path in pages:
        route, _, query = path.partition("?")
        resp = visit(route, params=dict(p.split("=") for p in query.split("&")) if query else None)
        body = text(resp)
        assert resp.status_code == 200, body
        assert resp.mimetype == "text/html"
        assert HOSTILE not in body, path
        assert "script-src" not in body and "'self'" in resp.headers["Content-Security-Policy"]
    diagram = text(visit(f"pipelines/{did}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in diagram and "<svg" in diagram
    assert 'data-stage="Dev"' in diagram and "after release" in diagram
    summary = text(visit(f"releases/{release.id}"))
    assert "deployed 1.0.0 to tailspin/dev" in summary
    assert "pre-deployment approval" in summary and "waiting for tim@contoso.com" in summary


def test_no_get_changes_anything(api: World) -> None:  # noqa: F811
    rid, _ = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    before = snapshot(api, rid)
    for path in [f"releases/{rid}", f"releases/{rid}/stages/Production/approvals/pre",
                 f"releases/{rid}/stages/Production/deploy", "approvals", f"releases/{rid}/logs.zip"]:
        for method in ("GET", "HEAD"):
            visit(path, method, headers=TIM)
    assert snapshot(api, rid) == before


def test_tim_approves_from_his_inbox_and_amita_cannot(api: World) -> None:  # noqa: F811
    rid, etag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    inbox = text(visit("approvals", headers=TIM))
    assert f"/releases/{rid}/stages/Production/approvals/pre" in inbox and str(escape(etag)) in inbox
    assert "Nothing waits for you" in text(visit("approvals", headers=AMITA))
    form = {"decision": "approve", "comment": "ship it", "etag": etag, "attempt": "1", "back": "/approvals"}
    refused = visit(f"releases/{rid}/stages/Production/approvals/pre", "POST", form, headers=AMITA)
    assert refused.status_code == 403 and "Forbidden" in text(refused)
    done = visit(f"releases/{rid}/stages/Production/approvals/pre", "POST", form, headers=TIM)
    assert done.status_code == 303 and done.headers["Location"] == "/approvals"
    approval = releases.get(api.deps, rid).stages["Production"].current.approvals["pre"]  # type: ignore[union-attr]
    assert approval.status == "approved" and approval.votes[0].comment == "ship it"
    again = visit(f"releases/{rid}/stages/Production/approvals/pre", "POST", form, headers=TIM)
    assert again.status_code == 412  # the page was stale: nothing voted twice


def test_a_cross_site_form_is_refused_and_changes_nothing(api: World) -> None:  # noqa: F811
    rid, etag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    before = snapshot(api, rid)
    form = {"decision": "approve", "etag": etag}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        resp = visit(f"releases/{rid}/stages/Production/approvals/pre", "POST", form, headers={**TIM, **headers})
        assert resp.status_code == 400 and "Origin" in text(resp)
    assert snapshot(api, rid) == before


def test_release_managers_create_and_deploy_from_the_page_and_readers_cannot(api: World) -> None:  # noqa: F811
    did = api.define([stage("Dev", {"type": "manual"})])["id"]
    api.deps.packages.blobs.add("tailspin-web/2.0.zip")  # type: ignore[attr-defined]
    artifacts.register(bootstrap.deps(), "tailspin-web", BuildIn(version="2.0", package="tailspin-web/2.0.zip"))
    page = text(visit(f"pipelines/{did}", headers=AMITA))
    assert 'id="create-release"' in page
    assert 'id="create-release"' not in text(visit(f"pipelines/{did}", headers=TIM))
    assert visit(f"pipelines/{did}/releases", "POST", {"description": "x"}, headers=TIM).status_code == 403
    bad = visit(f"pipelines/{did}/releases", "POST", {"version:web": "no spaces allowed"}, headers=AMITA)
    assert bad.status_code == 400 and "artifacts[0].version" in text(bad)
    created = visit(f"pipelines/{did}/releases", "POST", {"description": "from the page", "version:web": "2.0"},
                    headers=AMITA)
    assert created.status_code == 303
    rid = int(created.headers["Location"].rsplit("/", 1)[1])
    release = releases.get(api.deps, rid)
    assert release.description == "from the page" and release.artifacts[0]["version"] == "2.0"
    assert visit(f"releases/{rid}/stages/Dev/deploy", "POST", {}, headers=TIM).status_code == 403
    assert visit(f"releases/{rid}/stages/Dev/deploy", "POST", {}, headers=AMITA).status_code == 303
    api.pump()
    assert releases.get(api.deps, rid).stages["Dev"].status == "succeeded"


def test_step_logs_download_tail_and_zip(api: World) -> None:  # noqa: F811
    did = api.define([stage("Dev"), stage("Test", {"type": "afterStages", "stages": ["Dev"]})])["id"]
    rid = api.release(did).id
    api.pump()
    path = f"releases/{rid}/stages/Dev/deployments/1/steps/0/log"
    whole = visit(path, params={"download": "1"})
    assert whole.status_code == 200 and "attachment" in whole.headers["Content-Disposition"]
    log = text(whole)
    assert "1.0.0" in log
    tail = visit(path, params={"raw": "1", "from": "5"})
    assert text(tail) == log.encode()[5:].decode() and tail.headers["X-Log-Length"] == str(len(log.encode()))
    assert tail.headers["X-Step-Status"] == "succeeded"
    assert log.splitlines()[0] in text(visit(path))
    archive = zipfile.ZipFile(io.BytesIO(visit(f"releases/{rid}/logs.zip").get_body()))
    names = sorted(archive.namelist())
    assert names == ["Dev/attempt-1/00-deploy-package.log", "Dev/attempt-1/01-http-check.log",
                     "Test/attempt-1/00-deploy-package.log", "Test/attempt-1/01-http-check.log"]
    assert archive.read("Dev/attempt-1/00-deploy-package.log").decode() == log
    assert visit(f"releases/{rid}/stages/Dev/deployments/9/steps/0/log").status_code == 404


def test_compare_two_releases_and_what_runs_where(api: World) -> None:  # noqa: F811
    did = api.define([stage("Dev")])["id"]
    first, second = api.release(did, "1.0.0"), api.release(did, "1.1.0")
    api.pump()
    page = text(visit(f"pipelines/{did}/environments", params={"a": str(first.id), "b": str(second.id)}))
    assert "differs" in page and "1.1.0" in page
    same = text(visit(f"pipelines/{did}/environments", params={"a": str(first.id), "b": str(first.id)}))
    assert "same build" in same
    bad = visit(f"pipelines/{did}/environments", params={"a": "x", "b": "1"})
    assert bad.status_code == 400 and "<code>a</code>" in text(bad)


@pytest.mark.parametrize("path", ["nowhere", "releases/999999", "static/../function_app.py"])
def test_unknown_pages_are_404_pages(api: World, path: str) -> None:  # noqa: F811
    resp = visit(path)
    assert resp.status_code == 404 and resp.mimetype == "text/html"


def test_api_paths_never_fall_through_to_the_dashboard(api: World) -> None:  # noqa: F811
    resp = visit("api/nothing-here")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_a_signed_out_browser_is_sent_to_sign_in_and_a_form_without_identity_gets_401(api: World) -> None:  # noqa: F811
    api.deps.settings = api.deps.settings.__class__(**{**api.deps.settings.__dict__, "auth_mode": "appservice"})
    resp = visit("releases/7", params={"x": "1"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/.auth/login/aad?post_login_redirect_uri=%2Freleases%2F7"
    assert visit("pipelines/1/releases", "POST", {}).status_code == 401
    api.deps.settings = api.deps.settings.__class__(**{**api.deps.settings.__dict__, "website_auth_enabled": ""})
    assert visit("").status_code == 401  # authentication off: nowhere to sign in


def test_delivery_metrics_over_the_api_and_on_the_page(api: World) -> None:  # noqa: F811
    from functions import definitions_api as defs
    from tests.integration.test_http_api import call

    did = api.define([stage("Dev"), stage("Production", {"type": "afterStages", "stages": ["Dev"]},
                                          slot="production")])["id"]
    for version in ("1.0.0", "1.1.0"):
        api.release(did, version)
        api.pump()
        api.clock.advance(600)
    status, body = call(defs.definition_metrics, "GET", definitionId=did, params={"days": "7"})
    assert status == 200, body
    assert body["definitionId"] == did and body["stages"]["Production"]["succeeded"] == 2
    assert body["stages"]["Dev"]["changeFailureRate"] == 0 and body["leadTimeMinutes"]["median"] is not None
    status, body = call(defs.definition_metrics, "GET", definitionId=did, params={"days": "0"})
    assert status == 400 and body["errors"][0]["field"] == "days"
    assert "Production" in text(visit("metrics", params={"days": "7"}))


def test_a_debug_release_writes_verbose_step_logs_and_others_do_not(api: World) -> None:  # noqa: F811
    did = api.define([stage("Dev")])["id"]
    quiet = api.release(did, "1.0.0")
    api.pump()
    form = {"version:web": "1.0.0", "debug": "true"}
    created = visit(f"pipelines/{did}/releases", "POST", form, headers=AMITA)
    loud = int(created.headers["Location"].rsplit("/", 1)[1])
    api.pump()
    logs = {rid: text(visit(f"releases/{rid}/stages/Dev/deployments/1/steps/1/log", params={"raw": "1"}))
            for rid in (quiet.id, loud)}
    assert "##[debug]" not in logs[quiet.id]
    assert "##[debug] GET " in logs[loud] and "##[debug] outcome succeeded" in logs[loud]
    assert releases.get(api.deps, loud).debug is True


def test_a_function_key_header_grants_nothing_on_the_anonymous_dashboard(api: World) -> None:  # noqa: F811
    api.deps.settings = api.deps.settings.__class__(**{**api.deps.settings.__dict__, "auth_mode": "appservice"})
    did = api.define([stage("Dev", {"type": "manual"})])["id"]
    key = api.deps.function_keys.keys["default"]  # type: ignore[attr-defined]
    forged = visit(f"pipelines/{did}/releases", "POST", {}, headers={"x-functions-key": key})
    assert forged.status_code == 401  # pages are for people: even a valid key proves nothing here
    assert visit("", params={"code": key}).status_code == 302  # sent to sign in


def test_the_release_list_pages_back_to_older_releases(api: World) -> None:  # noqa: F811
    import re

    did = api.define([stage("Dev", {"type": "manual"})])["id"]
    made = [api.release(did, f"1.0.{i}").id for i in range(33)]
    first = text(visit(f"pipelines/{did}"))
    shown = [int(x) for x in re.findall(r'<a href="/releases/(\d+)">Release-', first)]
    assert shown == sorted(made, reverse=True)[:30]
    token = html.unescape(re.search(r'continuationToken=([^"]+)" id="older"', first)[1])  # type: ignore[index]
    older = text(visit(f"pipelines/{did}", params={"continuationToken": urllib.parse.unquote(token)}))
    assert [int(x) for x in re.findall(r'<a href="/releases/(\d+)">Release-', older)] == sorted(made)[:3][::-1]
    assert 'id="older"' not in older and "Newest releases" in older
    bad = visit(f"pipelines/{did}", params={"continuationToken": "garbage"})
    assert bad.status_code == 400 and "continuationToken" in text(bad)


def test_the_deploy_form_takes_the_apis_rules_and_a_person_cannot_claim_slipways_own_reason(
        api: World) -> None:  # noqa: F811
    """`automated` is Slipway's word for a trigger; claimed from the form, it used to skip the pre-deployment
    approval of a manual redeploy (skipIfApprovedInPreviousStage counts automated starts only)."""
    tims = {"approvers": ["tim@contoso.com"], "skipIfApprovedInPreviousStage": True}
    did = api.define([{**stage("Dev"), "preApprovals": {"approvers": ["tim@contoso.com"]}},
                      {**stage("Production", {"type": "afterStages", "stages": ["Dev"]}, slot="production"),
                       "preApprovals": tims}])["id"]
    rid = api.release(did).id
    releases_page = f"releases/{rid}/stages"
    tag = releases.read(api.deps, rid)[1]
    assert visit(f"{releases_page}/Dev/approvals/pre", "POST", {"decision": "approve", "etag": tag},
                 headers=TIM).status_code == 303
    api.pump()
    production = releases.get(api.deps, rid).stages["Production"]
    assert production.status == "succeeded" and production.deployments[0].approvals["pre"].status == "skipped"
    before = snapshot(api, rid)
    for form, field in (({"reason": "automated"}, "reason"), ({"reason": "scheduled"}, "reason"),
                        ({"breakGlass": "x" * 501}, "breakGlass"), ({"notBefore": "tomorrow"}, "notBefore")):
        resp = visit(f"{releases_page}/Production/deploy", "POST", form, headers=AMITA)
        assert resp.status_code == 400 and field in text(resp), form
    assert snapshot(api, rid) == before
    assert visit(f"{releases_page}/Production/deploy", "POST", {"reason": "redeploy"}, headers=AMITA).status_code == 303
    redeploy = releases.get(api.deps, rid).stages["Production"].current
    assert redeploy is not None and redeploy.reason == "redeploy" and redeploy.phase == "preApproval"


def test_forms_are_accepted_from_the_hosts_this_site_is_reached_by_and_no_other() -> None:
    """The request's own host, the host a proxy forwarded (X-Forwarded-Host) and the configured public
    URL are this site; a browser without Sec-Fetch-Site is judged by its Origin alone."""
    from functions.web.guard import same_origin
    from shared.domain.errors import Invalid

    def post(url: str, **headers: str) -> func.HttpRequest:
        return func.HttpRequest("POST", url, headers=headers, body=b"")

    accepted = [(post("http://localhost:7071/x", Origin="http://localhost:7071"), ""),
                (post("http://127.0.0.1:7071/x", Origin="http://localhost:7071",
                      **{"X-Forwarded-Host": "localhost:7071"}), ""),
                (post("http://10.0.0.4/x", Origin="https://slipway.contoso.com"), "https://slipway.contoso.com/"),
                (post("http://10.0.0.4/x", Origin="https://slipway.contoso.com",
                      **{"X-Forwarded-Host": "slipway.contoso.com"}), ""),
                (post("http://127.0.0.1:7071/x", Origin="http://evil.example",
                      **{"Sec-Fetch-Site": "same-origin"}), ""),
                (post("http://127.0.0.1:7071/x"), "")]
    for req, public in accepted:
        same_origin(req, public)
    refused = [(post("http://127.0.0.1:7071/x", Origin="http://localhost:7071"), ""),
               (post("http://127.0.0.1:7071/x", Origin="http://evil.example",
                     **{"X-Forwarded-Host": "localhost:7071"}), "http://localhost:7071"),
               (post("http://localhost:7071/x", Origin="null"), "http://localhost:7071"),
               (post("http://localhost:7071/x", Origin="http://localhost:7071",
                     **{"Sec-Fetch-Site": "cross-site"}), ""),
               (post("http://localhost:7071/x", Origin="http://localhost:bad"), "")]
    for req, public in refused:
        with pytest.raises(Invalid, match="Origin"):
            same_origin(req, public)


def test_a_slot_without_a_release_of_slipways_is_shown_as_such_not_as_release_none() -> None:
    from shared.services.views import now_running

    assert now_running({"slot": "x", "releaseId": None, "version": None, "how": "swap", "seenAt": "t"}) is None
    assert now_running({"slot": "x", "releaseId": 3, "version": "1.0", "how": "swap", "seenAt": "t"}) == \
        {"releaseId": 3, "version": "1.0", "how": "swap", "at": "t"}

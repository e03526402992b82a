"""Approvals over HTTP with Azurite: the Tim and Amita scenario, If-Match, races, the inbox, timers."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from functions import approvals_api as appr
from functions import definitions_api as defs
from functions import releases_api as rels
from shared import bootstrap
from shared.config import EVENTS_QUEUE, MAIL_QUEUE
from shared.services import sweeper
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

AMITA = as_("amita@contoso.com", roles=["Slipway.ReleaseManager"])
TIM = as_("tim@contoso.com")
MARIA = as_("maria@contoso.com", groups=["management"])


def pipeline(world: World, approvals: dict[str, Any]) -> int:
    production = {**stage("Production", {"type": "manual"}, slot="production"), "preApprovals": approvals}
    body = {"name": "Tailspin", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [production]}
    status, created = call(defs.definitions_collection, "POST", body)
    assert status == 201, created
    return int(created["id"])


def release_in_production(world: World, approvals: dict[str, Any]) -> tuple[int, str]:
    did = pipeline(world, approvals)
    world.deps.packages.blobs.add("tailspin-web/1.0.zip")  # type: ignore[attr-defined]
    art = {"alias": "web", "version": "1.0", "package": "tailspin-web/1.0.zip"}
    status, rel = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [art]}, headers=AMITA)
    assert status == 201, rel
    status, _ = call(rels.deploy_stage, "POST", releaseId=rel["id"], stage="Production", headers=AMITA)
    assert status == 202
    return rel["id"], etag(rel["id"])


def etag(release_id: int) -> str:
    from shared import bootstrap
    from shared.services import releases
    return releases.read(bootstrap.deps(), release_id)[1]


def decide(release_id: int, who: dict[str, str], decision: str = "approve", tag: str | None = None,
           **body: Any) -> tuple[int, Any]:
    headers = {**who, **({"If-Match": tag} if tag else {})}
    return call(appr.decide_approval, "POST", {"decision": decision, **body}, headers=headers,
                releaseId=release_id, stage="Production", kind="pre")


def production(world: World, release_id: int) -> Any:
    return world.get(release_id).stages["Production"]


def test_tim_approves_amita_cannot_and_production_deploys(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com", "management"], "policy": "anyOne"})
    assert production(api, rid).current.phase == "preApproval"
    status, problem = decide(rid, AMITA, tag=tag)
    assert status == 403 and "not an approver" in problem["detail"]
    status, inbox = call(appr.list_approvals, "GET", params={"mine": "true"}, headers=TIM)
    assert [(i["releaseId"], i["stage"], i["status"]) for i in inbox["value"]] == [(rid, "Production", "pending")]
    assert call(appr.list_approvals, "GET", params={"mine": "true"}, headers=as_("eve@contoso.com"))[1]["count"] == 0
    status, shown = call(rels.release_item, "GET", releaseId=rid)
    assert "waiting for pre-deployment approval by tim@contoso.com, management" in shown["stages"][0]["waitingFor"]
    assert decide(rid, TIM)[0] == 428  # no If-Match
    status, after = decide(rid, TIM, tag=tag, comment="looks good")
    assert status == 200, after
    api.pump()
    got = production(api, rid)
    assert got.status == "succeeded" and got.current.approvals["pre"].votes[0].comment == "looks good"
    assert call(appr.list_approvals, "GET", params={"mine": "true"}, headers=TIM)[1]["count"] == 0
    events = [e["type"] for e in call(rels.release_events, "GET", releaseId=rid)[1]["value"]]
    assert "approvalRequested" in events and "approvalApproved" in events and "approvalCompleted" in events


def test_requester_cannot_approve_their_own_release(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["amita@contoso.com", "tim@contoso.com"]})
    status, problem = decide(rid, AMITA, tag=tag)
    assert status == 403 and "requested this deployment" in problem["detail"]


def test_stale_if_match_is_412_and_a_second_vote_409(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com", "management"],
                                            "policy": "allInAnyOrder"})
    assert decide(rid, MARIA, tag=tag)[0] == 200
    assert decide(rid, TIM, tag=tag)[0] == 412  # the release changed since that ETag
    status, problem = decide(rid, MARIA, tag=etag(rid))
    assert status == 409 and "already decided" in problem["detail"]


def test_twenty_approvers_at_once_count_once_each(api: World) -> None:  # noqa: F811
    people = [f"p{i}@contoso.com" for i in range(20)]
    rid, _ = release_in_production(api, {"approvers": ["reviewers"], "policy": "count", "required": 1})
    results: list[int] = []

    def vote(name: str) -> None:
        results.append(decide(rid, as_(name, groups=["reviewers"]), tag="*")[0])

    threads = [threading.Thread(target=vote, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 1 and set(results) <= {200, 409, 403}
    assert len(production(api, rid).current.approvals["pre"].votes) == 1


def test_an_approval_times_out_through_the_timer_or_the_sweeper(api: World) -> None:  # noqa: F811
    rid, _ = release_in_production(api, {"approvers": ["tim@contoso.com"], "timeoutMinutes": 5})
    [msg] = api.receive(EVENTS_QUEUE)
    assert bootstrap.react(api.deps, EVENTS_QUEUE, msg.content) == "re-armed"  # early (the queue sent it at once)
    api.clock.advance(301)
    assert bootstrap.react(api.deps, EVENTS_QUEUE, msg.content) == "woke"
    got = production(api, rid)
    assert got.status == "rejected" and "timed out" in got.current.failure
    rid2, _ = release_in_production(api, {"approvers": ["tim@contoso.com"], "timeoutMinutes": 5})
    api.clock.advance(301)
    sweeper.sweep(api.deps)  # the timer was lost: the sweeper rejects it
    assert production(api, rid2).status == "rejected"


def test_defer_then_approve_waits_until_the_time(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    until = (api.clock.now() + timedelta(hours=2)).isoformat()
    status, _ = call(appr.defer_deployment, "POST", {"until": until, "comment": "after 6"},
                     headers={**TIM, "If-Match": tag}, releaseId=rid, stage="Production")
    assert status == 200
    assert decide(rid, TIM, tag=etag(rid))[0] == 200
    assert production(api, rid).current.phase == "deferred"
    api.clock.advance(2 * 3600 + 1)
    for msg in api.receive(EVENTS_QUEUE):
        bootstrap.react(api.deps, EVENTS_QUEUE, msg.content)
    api.pump()
    assert production(api, rid).status == "succeeded"


def test_override_reassign_and_batch(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, _ = call(appr.override_approval, "POST", {"decision": "approve", "reason": "incident 7"},
                     headers={**TIM, "If-Match": tag}, releaseId=rid, stage="Production", kind="pre")
    assert status == 403  # not an admin
    status, _ = call(appr.reassign_approval, "POST", {"to": "maria@contoso.com", "comment": "holiday"},
                     headers={**TIM, "If-Match": tag}, releaseId=rid, stage="Production", kind="pre")
    assert status == 200
    rid2, tag2 = release_in_production(api, {"approvers": ["maria@contoso.com"]})
    items = [{"releaseId": rid, "stage": "Production", "kind": "pre", "attempt": 1, "etag": etag(rid)},
             {"releaseId": rid2, "stage": "Production", "kind": "pre", "attempt": 1, "etag": tag2},
             {"releaseId": rid2, "stage": "Production", "kind": "pre", "attempt": 9, "etag": "*"}]
    status, out = call(appr.batch_decide, "POST", {"decision": "approve", "items": items}, headers=MARIA)
    assert [r["status"] for r in out["value"]] == [200, 200, 409]
    admin = as_("ada@contoso.com", roles=["Slipway.Admin"])
    rid3, tag3 = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, _ = call(appr.override_approval, "POST", {"decision": "approve", "reason": "incident 7"},
                     headers={**admin, "If-Match": tag3}, releaseId=rid3, stage="Production", kind="pre")
    assert status == 200 and production(api, rid3).current.approvals["pre"].votes[0].override


@pytest.mark.parametrize("body, field", [({"decision": "maybe"}, "decision"), ({}, "decision"),
                                         ({"decision": "approve", "attempt": 0}, "attempt")])
def test_bad_decisions_name_the_field(api: World, body: dict[str, Any], field: str) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, problem = call(appr.decide_approval, "POST", body, headers={**TIM, "If-Match": tag}, releaseId=rid,
                           stage="Production", kind="pre")
    assert status == 400 and problem["errors"][0]["field"] == field


def link_page(token: str, method: str = "GET", form: str = "", headers: dict[str, str] | None = None) -> Any:
    import azure.functions as func

    from functions import approval_links

    req = func.HttpRequest(method, f"http://localhost/api/approve/{token}", body=form.encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
                           route_params={"token": token})
    resp = approval_links.approval_page(req)
    return resp.status_code, resp.get_body().decode()


def mailed_token(world: World, to: str) -> str:
    import re

    world.deliver(MAIL_QUEUE)
    mail = next(m for m in reversed(world.deps.mailer.sent) if m["to"] == [to])  # type: ignore[attr-defined]
    return re.search(r"/api/approve/([A-Za-z0-9_-]+)", str(mail["text"]))[1]  # type: ignore[index]


def test_the_mailed_link_shows_and_only_the_signed_in_approver_decides_once(api: World) -> None:  # noqa: F811
    from urllib.parse import urlencode

    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"], "timeoutMinutes": 600})
    token = mailed_token(api, "tim@contoso.com")
    for _ in range(100):  # mail scanners fetch links, again and again
        status, page = link_page(token, headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"})
        assert status == 200
    assert "Approve Release-1 to Production?" in page and "<form method='post'" in page
    assert production(api, rid).current.approvals["pre"].status == "pending" and etag(rid) == tag
    form = urlencode({"decision": "approve", "comment": "ok <b>", "etag": tag})
    assert link_page(token, "POST", form)[0] == 403  # development mode: the development identity is not Tim
    status, page = link_page(token, "POST", form, headers=AMITA)
    assert status == 403 and "someone else" in page
    for cross in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        assert link_page(token, "POST", form, headers={**TIM, **cross})[0] == 403  # forged from another site
    assert production(api, rid).current.approvals["pre"].votes == []
    status, page = link_page(token, "POST", form, headers={**TIM, "Sec-Fetch-Site": "same-origin",
                                                           "Origin": "null"})
    assert status == 200 and "Approved as tim@contoso.com" in page
    assert production(api, rid).current.approvals["pre"].votes[0].comment == "ok <b>"
    assert link_page(token, "POST", form, headers=TIM)[0] == 410  # used
    assert link_page(token)[0] == 410
    assert link_page(token[:-2] + "xx")[0] == 404  # tampered


def test_the_link_page_carries_the_dashboards_security_headers(api: World) -> None:  # noqa: F811
    import azure.functions as func

    from functions import approval_links

    release_in_production(api, {"approvers": ["tim@contoso.com"]})
    token = mailed_token(api, "tim@contoso.com")
    resp = approval_links.approval_page(func.HttpRequest("GET", f"http://localhost/api/approve/{token}", body=b"",
                                                         route_params={"token": token}))
    policy = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy and "script-src" not in policy
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_the_link_page_shows_the_stages_gates_and_how_they_stand(api: World) -> None:  # noqa: F811
    from tests.integration.test_gates import SIGNALS

    production = {**stage("Production", {"type": "manual"}, slot="production"),
                  "preApprovals": {"approvers": ["tim@contoso.com"]},
                  "postGates": {"signals": SIGNALS, "intervalMinutes": 1, "timeoutMinutes": 10}}
    did = int(api.define([production])["id"])
    rid = api.release(did).id
    call(rels.deploy_stage, "POST", releaseId=rid, stage="Production", headers=AMITA)
    status, page = link_page(mailed_token(api, "tim@contoso.com"))
    assert status == 200 and "None configured" not in page and "none configured" not in page
    assert "post-deployment gate" in page and "errors, alerts" in page and "not started" in page
    assert f'href="/releases/{rid}"' in page


def test_an_expired_link_changes_nothing(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"], "timeoutMinutes": 60})
    token = mailed_token(api, "tim@contoso.com")
    api.clock.advance(3601)  # never past the approval's timeout
    assert link_page(token)[0] == 410


def test_the_page_escapes_user_text(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    token = mailed_token(api, "tim@contoso.com")
    from urllib.parse import urlencode

    link_page(token, "POST", urlencode({"decision": "reject", "comment": "<script>alert(1)</script>",
                                        "etag": tag}), headers=TIM)
    rid2, _ = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, page = link_page(mailed_token(api, "tim@contoso.com"))
    assert "<script>" not in page


def test_a_rejection_mails_the_requester(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    assert decide(rid, TIM, "reject", tag=tag, comment="not now")[0] == 200
    api.deliver(MAIL_QUEUE)
    mail = api.deps.mailer.sent[-1]  # type: ignore[attr-defined]
    assert mail["to"] == ["amita@contoso.com"] and "rejected" in str(mail["subject"])


def pump_events(world: World) -> None:
    """Deliver lane messages (the events queue); timers that are not due go back unseen."""
    for _ in range(20):
        batch = world.receive(EVENTS_QUEUE)
        if not batch:
            return
        for msg in batch:
            bootstrap.react(world.deps, EVENTS_QUEUE, msg.content)
            world.queue(EVENTS_QUEUE).delete_message(msg)
        world.pump()


@pytest.mark.parametrize("policy", ["sequence", "latest"])
def test_queue_aware_approvals_r1_to_r5(api: World, policy: str) -> None:  # noqa: F811
    qa = {**stage("QA", {"type": "manual"}, slot="qa"), "steps": [{"type": "wait", "seconds": 0}],
          "preApprovals": {"approvers": ["tim@contoso.com"]}, "postApprovals": {"approvers": ["tim@contoso.com"]},
          "queue": {"parallel": 1, "policy": policy}}
    body = {"name": "Fabrikam", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [qa]}
    did = call(defs.definitions_collection, "POST", body)[1]["id"]
    api.deps.packages.blobs.add("tailspin-web/1.0.zip")  # type: ignore[attr-defined]
    art = {"alias": "web", "version": "1.0", "package": "tailspin-web/1.0.zip"}
    rids = []
    for _ in range(5):
        rid = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [art]}, headers=AMITA)[1]["id"]
        assert call(rels.deploy_stage, "POST", releaseId=rid, stage="QA", headers=AMITA)[0] == 202
        rids.append(rid)
    pump_events(api)

    def inbox() -> list[int]:
        listed = call(appr.list_approvals, "GET", params={"mine": "true"}, headers=TIM)[1]["value"]
        return [i["releaseId"] for i in listed]

    assert inbox() == [rids[0]]
    assert call(rels.stage_preview, "GET", releaseId=rids[0], stage="QA")[1]["waitsOn"] == "approval"
    waiting = call(rels.release_item, "GET", releaseId=rids[1])[1]["stages"][0]
    expected = "queued" if policy == "sequence" else "canceled"
    assert waiting["status"] == expected
    for kind in ("pre", "post"):
        status, _ = call(appr.decide_approval, "POST", {"decision": "approve"},
                         headers={**TIM, "If-Match": etag(rids[0])}, releaseId=rids[0], stage="QA", kind=kind)
        assert status == 200
        api.pump()
    pump_events(api)
    assert production_of(api, rids[0]) == "succeeded"
    assert inbox() == [rids[1] if policy == "sequence" else rids[4]]


def production_of(world: World, rid: int, stage_name: str = "QA") -> str:
    return str(world.get(rid).stages[stage_name].status)


def test_windows_hold_deployments_and_admins_break_the_glass(api: World) -> None:  # noqa: F811
    prod = {**stage("Production", {"type": "manual"}, slot="production"), "steps": [{"type": "wait", "seconds": 0}],
            "windows": [{"days": ["Tue"], "start": "09:00", "end": "16:00", "timeZone": "Europe/London"}],
            "freezes": [{"from": "12-20", "to": "01-03", "reason": "year-end freeze", "timeZone": "Europe/London"}]}
    body = {"name": "Windows", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [prod]}
    did = call(defs.definitions_collection, "POST", body)[1]["id"]
    api.deps.packages.blobs.add("tailspin-web/1.0.zip")  # type: ignore[attr-defined]
    art = {"alias": "web", "version": "1.0", "package": "tailspin-web/1.0.zip"}
    rid = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [art]}, headers=AMITA)[1]["id"]
    call(rels.deploy_stage, "POST", releaseId=rid, stage="Production", headers=AMITA)  # Monday 09:00 UTC
    shown = call(rels.release_item, "GET", releaseId=rid)[1]["stages"][0]
    assert shown["waitingFor"] == "outside its deployment windows: next opening 2026-11-24 09:00 UTC"
    status, preview = call(rels.stage_preview, "GET", releaseId=rid, stage="Production")
    assert status == 200 and preview["waitsOn"] == "window"
    assert preview["nextDeployAt"] == "2026-11-24T09:00:00+00:00"
    assert call(rels.stage_preview, "GET", releaseId=rid, stage="Nowhere")[0] == 404
    api.clock.advance(24 * 3600)
    pump_events(api)
    assert production_of(api, rid, "Production") == "succeeded"

    rid2 = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [art]}, headers=AMITA)[1]["id"]
    api.clock.advance(3600 * 24)  # Wednesday: closed
    status, problem = call(rels.deploy_stage, "POST", {"breakGlass": "hotfix for incident 9"}, releaseId=rid2,
                           stage="Production", headers=AMITA)
    assert status == 403 and "admin" in problem["detail"]
    admin = as_("ada@contoso.com", roles=["Slipway.Admin"])
    status, _ = call(rels.deploy_stage, "POST", {"breakGlass": "hotfix for incident 9"}, releaseId=rid2,
                     stage="Production", headers=admin)
    assert status == 202
    api.pump()
    assert production_of(api, rid2, "Production") == "succeeded"
    events = call(rels.release_events, "GET", releaseId=rid2)[1]["value"]
    assert any(e["type"] == "glassBroken" and e["message"] == "hotfix for incident 9" for e in events)


@pytest.mark.parametrize("windows, field", [
    ([{"days": ["Mon"], "start": "16:00", "end": "09:00"}], "stages[0].windows[0]"),
    ([{"days": ["Mon"], "start": "09:00", "end": "16:00", "timeZone": "Mars/Olympus"}],
     "stages[0].windows[0].timeZone"),
    ([{"days": ["Funday"], "start": "09:00", "end": "16:00"}], "stages[0].windows[0].days[0]"),
])
def test_bad_windows_name_the_field(api: World, windows: list[dict[str, Any]], field: str) -> None:  # noqa: F811
    prod = {**stage("Production", {"type": "manual"}, slot="production"), "windows": windows}
    body = {"name": "Windows", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [prod]}
    status, problem = call(defs.definitions_collection, "POST", body)
    assert status == 400 and field in [e["field"] for e in problem["errors"]], problem

"""Manual interventions: a step waits for a person with instructions, who resumes or rejects it from
the API or a single-use mail link; a timeout decides by its default; abandoning cancels it."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions import approvals_api as appr
from functions import intervention_links
from functions import releases_api as rels
from shared.config import MAIL_QUEUE
from shared.services import sweeper
from tests.integration.conftest import World, stage
from tests.integration.test_approvals_api import AMITA, TIM, etag
from tests.integration.test_dashboard import text, visit
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

CHECK = {"type": "manual-intervention", "name": "Check the invoices",
         "instructions": "Open **$(Release.ReleaseName)** in the back office and compare the invoices.",
         "assignees": ["tim@contoso.com"], "timeoutMinutes": 120}
STEPS = [{"type": "wait", "name": "before", "seconds": 0}, CHECK, {"type": "wait", "name": "after", "seconds": 0}]


def waiting_release(world: World, check: dict[str, Any] | None = None) -> int:
    did = int(world.define([stage("Production", steps=[STEPS[0], check or CHECK, STEPS[2]])])["id"])
    rel = world.release(did)
    world.pump()
    return int(rel.id)


def production(world: World, rid: int) -> Any:
    return world.get(rid).stages["Production"].current


def decide(rid: int, who: dict[str, str], decision: str, tag: str | None = None) -> tuple[int, Any]:
    return call(appr.decide_intervention, "POST", {"decision": decision, "comment": "looked"},
                headers={**who, **({"If-Match": tag} if tag else {})}, releaseId=rid, stage="Production", step=1)


def test_the_step_waits_with_its_instructions_and_the_assignee_resumes_it_once(api: World) -> None:  # noqa: F811
    rid = waiting_release(api)
    dep = production(api, rid)
    assert dep.phase == "manualIntervention" and dep.status == "inProgress"
    intervention = dep.steps[1].state["intervention"]
    assert intervention["instructions"].startswith("Open **Release-1** in the back office")
    assert intervention["status"] == "pending" and dep.steps[2].status == "pending"
    assert decide(rid, TIM, "resume")[0] == 428  # If-Match required
    tag = etag(rid)
    status, problem = decide(rid, as_("eve@contoso.com"), "resume", tag)
    assert status == 403 and "may not decide" in problem["detail"]
    status, _ = decide(rid, TIM, "resume", tag)
    assert status == 200
    api.pump()
    dep = production(api, rid)
    assert dep.status == "succeeded" and [s.status for s in dep.steps] == ["succeeded"] * 3
    assert dep.steps[1].state["intervention"]["by"] == "tim@contoso.com"
    assert decide(rid, TIM, "reject", etag(rid))[0] == 409  # decided already
    events = [e["type"] for e in call(rels.release_events, "GET", releaseId=rid)[1]["value"]]
    assert "manualInterventionPending" in events and "manualInterventionResumed" in events


def test_two_decisions_at_once_give_one_outcome(api: World) -> None:  # noqa: F811
    rid = waiting_release(api)
    tag = etag(rid)
    admin = as_("ops@contoso.com", roles=["Slipway.Admin"])
    answers: list[int] = []
    threads = [threading.Thread(target=lambda w=w, d=d: answers.append(decide(rid, w, d, tag)[0]))
               for w, d in ((TIM, "resume"), (admin, "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 412]
    dep = production(api, rid)
    assert dep.steps[1].status in ("succeeded", "failed")
    assert (dep.steps[1].status == "failed") == (dep.status == "rejected")


def test_a_rejection_rejects_the_deployment_and_skips_the_rest(api: World) -> None:  # noqa: F811
    rid = waiting_release(api)
    assert decide(rid, TIM, "reject", etag(rid))[0] == 200
    dep = production(api, rid)
    assert dep.status == "rejected" and "rejected by tim@contoso.com: looked" in dep.failure
    assert [s.status for s in dep.steps] == ["succeeded", "failed", "skipped"]


@pytest.mark.parametrize("on_timeout, status", [("reject", "rejected"), ("resume", "succeeded")])
def test_nobody_deciding_in_time_takes_the_default(world: World, on_timeout: str, status: str) -> None:
    word = {"reject": "rejected", "resume": "resumed"}[on_timeout]
    rid = waiting_release(world, {**CHECK, "onTimeout": on_timeout})
    world.clock.advance(119 * 60)
    sweeper.sweep(world.deps)
    world.pump()
    assert production(world, rid).status == "inProgress"
    world.clock.advance(2 * 60)
    sweeper.sweep(world.deps)  # the timer's message may be lost: the sweeper looks too
    world.pump()
    dep = production(world, rid)
    assert dep.status == status and dep.steps[1].state["intervention"]["status"] == word
    assert "timed out" in dep.steps[1].message


def test_abandoning_the_release_cancels_the_intervention(api: World) -> None:  # noqa: F811
    rid = waiting_release(api)
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rid, headers=AMITA)[0] == 200
    dep = production(api, rid)
    assert dep.status == "canceled" and dep.steps[1].state["intervention"]["status"] == "canceled"
    assert decide(rid, TIM, "resume", etag(rid))[0] == 409


def test_an_unknown_variable_in_the_instructions_fails_the_step_with_its_name(world: World) -> None:
    rid = waiting_release(world, {**CHECK, "instructions": "Check $(Nope.Nothing)"})
    dep = production(world, rid)
    assert dep.status == "failed" and "unknown variable $(Nope.Nothing)" in dep.failure


def link_page(token: str, method: str = "GET", form: str = "", headers: dict[str, str] | None = None) -> Any:
    req = func.HttpRequest(method, f"http://localhost/api/intervene/{token}", body=form.encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
                           route_params={"token": token})
    resp = intervention_links.intervention_page(req)
    return resp.status_code, resp.get_body().decode()


def test_the_mailed_link_shows_the_instructions_and_only_the_assignee_decides_once(api: World) -> None:  # noqa: F811
    rid = waiting_release(api)
    api.deliver(MAIL_QUEUE)
    mail = next(m for m in api.deps.mailer.sent if m["to"] == ["tim@contoso.com"])  # type: ignore[attr-defined]
    assert "Manual intervention needed: Tailspin / Release-1 → Production" == mail["subject"]
    token = re.search(r"/api/intervene/([A-Za-z0-9_-]+)", str(mail["text"]))[1]  # type: ignore[index]
    for _ in range(20):  # mail scanners open links
        status, page = link_page(token)
        assert status == 200
    assert "<strong>Release-1</strong>" in page and "<form method='post'" in page
    assert production(api, rid).steps[1].state["intervention"]["status"] == "pending"
    from functions import approval_links
    wrong = approval_links.approval_page(func.HttpRequest("GET", f"http://localhost/api/approve/{token}", body=b"",
                                                          route_params={"token": token}))
    assert wrong.status_code == 404  # an intervention's link is not an approval's
    form = urlencode({"decision": "resume", "comment": "fine", "etag": etag(rid)})
    assert link_page(token, "POST", form, headers=AMITA)[0] == 403  # someone else
    assert link_page(token, "POST", form, headers={**TIM, "Origin": "https://evil.example"})[0] == 403
    status, page = link_page(token, "POST", form, headers=TIM)
    assert status == 200 and "Resumed as tim@contoso.com" in page
    assert link_page(token, "POST", form, headers=TIM)[0] == 410
    api.pump()
    assert production(api, rid).status == "succeeded"


def test_instructions_cannot_inject_markup(world: World) -> None:
    rid = waiting_release(world, {**CHECK, "instructions": "<script>alert(1)</script> [x](javascript:alert(1))"})
    from functions.web.render import environment
    html = environment().from_string("{{ t|markdown }}").render(
        t=production(world, rid).steps[1].state["intervention"]["instructions"])
    assert "<script>" not in html and "href=\"javascript" not in html and "&lt;script&gt;" in html


def release_page(rid: int, who: dict[str, str]) -> str:
    return text(visit(f"releases/{rid}", headers=who))


def dashboard_form(rid: int, who: dict[str, str], decision: str, etag_value: str, **extra: str) -> Any:
    form = {"decision": decision, "comment": "checked by hand", "etag": etag_value, "attempt": "1", **extra}
    return visit(f"releases/{rid}/stages/Production/interventions/1", "POST", form, headers=who)


@pytest.mark.parametrize("decision, status, steps", [("resume", "succeeded", ["succeeded"] * 3),
                                                      ("reject", "rejected", ["succeeded", "failed", "skipped"])])
def test_the_assignee_decides_from_the_dashboard_form_once(api: World, decision: str, status: str,  # noqa: F811
                                                           steps: list[str]) -> None:
    rid = waiting_release(api)
    page = release_page(rid, TIM)
    assert f"/releases/{rid}/stages/Production/interventions/1" in page and "Resume" in page
    assert "/interventions/1" not in release_page(rid, as_("eve@contoso.com"))  # not hers to decide
    tag = etag(rid)
    assert dashboard_form(rid, as_("eve@contoso.com"), decision, tag).status_code == 403
    assert dashboard_form(rid, {**TIM, "Origin": "https://evil.example"}, decision, tag).status_code == 400
    assert production(api, rid).steps[1].state["intervention"]["status"] == "pending"
    done = dashboard_form(rid, TIM, decision, tag)
    assert done.status_code == 303 and done.headers["Location"] == f"/releases/{rid}"
    assert dashboard_form(rid, TIM, "resume" if decision == "reject" else "reject", tag).status_code == 412  # stale
    api.pump()
    dep = production(api, rid)
    assert dep.status == status and [s.status for s in dep.steps] == steps
    intervention = dep.steps[1].state["intervention"]
    assert intervention["by"] == "tim@contoso.com" and intervention["comment"] == "checked by hand"
    assert dashboard_form(rid, TIM, decision, etag(rid)).status_code == 409  # decided already


def test_an_assigned_group_is_mailed_as_its_members_and_a_member_decides(api: World) -> None:  # noqa: F811
    group = {"qa-leads": ["ana@contoso.com", "bo@contoso.com"]}
    api.deps.settings = dataclasses.replace(api.deps.settings, mail_groups=json.dumps(group))
    rid = waiting_release(api, {**CHECK, "assignees": ["qa-leads"]})
    api.deliver(MAIL_QUEUE)
    sent = [m for m in api.deps.mailer.sent  # type: ignore[attr-defined]
            if str(m["subject"]).startswith("Manual intervention needed")]
    assert sorted(tuple(m["to"]) for m in sent) == [("ana@contoso.com",), ("bo@contoso.com",)]
    links = {m["to"][0]: re.search(r"/api/intervene/([A-Za-z0-9_-]+)", str(m["text"]))[1]  # type: ignore[index]
             for m in sent}
    assert len(set(links.values())) == 2  # each member's link is their own
    assert "member of qa-leads" in str(sent[0]["text"])
    bo = as_("bo@contoso.com", groups=["qa-leads"])
    form = urlencode({"decision": "resume", "comment": "fine", "etag": etag(rid)})
    assert link_page(links["ana@contoso.com"], "POST", form, headers=bo)[0] == 403  # Ana's link is not Bo's
    status, page = link_page(links["bo@contoso.com"], "POST", form, headers=bo)
    assert status == 200 and "Resumed as bo@contoso.com" in page
    api.pump()
    assert production(api, rid).status == "succeeded"

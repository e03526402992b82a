"""The page a manual intervention's mail links to: the same rules as an approval's link (GET only shows
the instructions and a form; only a POST by the signed-in assignee the link was made for decides, once)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions.approval_links import decider, link_page, open_link, sign_in_hint
from shared import bootstrap
from shared.domain.access import Forbidden
from shared.domain.errors import Conflict, Invalid, NotFound, PreconditionFailed
from shared.domain.keys import key_hash
from shared.records import ConcurrentChange
from shared.schemas.fields import clip
from shared.services import approvals, releases

bp = func.Blueprint()
PAGE = "intervention_link.html"


@bp.route(route="api/intervene/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def intervention_page(req: func.HttpRequest) -> func.HttpResponse:
    found = open_link(req.route_params.get("token", ""), "intervention")
    if isinstance(found, func.HttpResponse):
        return found
    record, _, link_etag = found
    if req.method == "GET":
        return _show(req, record)
    return _act(req, record, link_etag)


def _show(req: func.HttpRequest, record: dict[str, Any]) -> func.HttpResponse:
    try:
        release, etag = releases.read(bootstrap.deps(), record["releaseId"])
    except NotFound:
        return link_page(404, "This release no longer exists")
    run = release.stages.get(record["stage"])
    dep = run.deployments[record["attempt"] - 1] if run and record["attempt"] <= len(run.deployments) else None
    step = dep.step(record["step"]) if dep else None
    intervention = (step.state.get("intervention") or {}) if step else {}
    decidable = intervention.get("status") == "pending" and run is not None and dep is run.current
    return link_page(200, f"{release.name} waits in {record['stage']}", template=PAGE, release=release,
                     record=record, step=step, intervention=intervention, etag=etag if decidable else "",
                     release_id=release.id, **(sign_in_hint(req, record["approver"]) if decidable else {}))


def _act(req: func.HttpRequest, record: dict[str, Any], link_etag: str) -> func.HttpResponse:
    deps = bootstrap.deps()
    found = decider(req, record)
    if isinstance(found, func.HttpResponse):
        return found
    who, form = found
    decision = form.get("decision")
    if decision not in ("resume", "reject") or not form.get("etag"):
        return link_page(400, "Choose resume or reject", "Go back and use the form.")
    try:
        approvals.intervene(deps, record["releaseId"], record["stage"], record["step"], who, decision,
                            clip(form.get("comment", "")), attempt=record["attempt"], if_match=form["etag"])
    except PreconditionFailed:
        return link_page(412, "The release changed", "Open the link again to see it as it is now.")
    except (Conflict, Forbidden, Invalid, NotFound) as exc:
        return link_page(409, "Not decided", str(exc), release_id=record["releaseId"])
    try:
        deps.store.use_link(key_hash(req.route_params["token"]), link_etag)
    except ConcurrentChange:
        pass  # decided anyway: the step itself refuses a second decision
    word = "Resumed" if decision == "resume" else "Rejected"
    return link_page(200, word, f"{word} as {who.name}. Thank you.", release_id=record["releaseId"])

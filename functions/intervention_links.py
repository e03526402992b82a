"""The page a manual intervention's mail links to: the same rules as an approval's link (GET only shows
the instructions and a form; only a POST by the signed-in assignee the link was made for decides, once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import azure.functions as func

from functions.approval_links import decide_by_link, link_page, open_link, sign_in_hint
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import Principal
from shared.domain.errors import NotFound

if TYPE_CHECKING:
    from shared.services import approvals, releases
else:
    approvals = lazy("shared.services.approvals")
    releases = lazy("shared.services.releases")

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
    def decide(who: Principal, decision: str, comment: str, etag: str) -> None:
        approvals.intervene(bootstrap.deps(), record["releaseId"], record["stage"], record["step"], who, decision,
                            comment, attempt=record["attempt"], if_match=etag)

    return decide_by_link(req, record, link_etag, {"resume": "Resumed", "reject": "Rejected"}, decide)

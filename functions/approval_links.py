"""The page an approval mail links to. GET only shows the release and a form, so mail scanners that
fetch (or prefetch) the link change nothing; only a POST by the signed-in approver the link was
made for decides, once. The token is random, stored hashed, bound to one approval and approver,
and expires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func

from functions.identity import principal_of
from functions.lazy import lazy
from functions.web.guard import same_origin
from functions.web.render import render
from shared import bootstrap
from shared.domain.access import READER, Forbidden, Principal, Unauthenticated, require
from shared.domain.errors import Conflict, Invalid, NotFound, PreconditionFailed
from shared.domain.keys import key_hash
from shared.domain.target import Target
from shared.domain.vocabulary import ApprovalStatus, Kind

if TYPE_CHECKING:
    from shared import records as store_records
    from shared.domain import plan as plan_domain
    from shared.domain import release as release_domain
    from shared.domain.transitions import gates as gate_rules
    from shared.schemas import fields as fields_schemas
    from shared.services import approvals, releases
else:
    plan_domain = lazy("shared.domain.plan")
    release_domain = lazy("shared.domain.release")
    store_records = lazy("shared.records")
    gate_rules = lazy("shared.domain.transitions.gates")
    fields_schemas = lazy("shared.schemas.fields")
    approvals = lazy("shared.services.approvals")
    releases = lazy("shared.services.releases")

bp = func.Blueprint()


def link_page(status: int, title: str, message: str = "", template: str = "approval_link.html",
              **context: Any) -> func.HttpResponse:
    """The page from its template, with the dashboard's security headers (no framing, no scripts,
    forms to this site only, no caching) and kept out of search engines."""
    page = render(template, status, title=title, message=message, **context)
    page.headers.update({"X-Robots-Tag": "noindex", "X-Frame-Options": "DENY"})
    return page


def open_link(token: str, kind: str = "approval") -> tuple[dict[str, Any], bool, str] | func.HttpResponse:
    """The link a token names, or the page saying why it cannot be used. An approval's link opens only the
    approval page and an intervention's only the intervention page."""
    found = bootstrap.deps().store.link(key_hash(token))
    if found is not None and (found[0].get("kind") == "intervention") != (kind == "intervention"):
        found = None
    if found is None:
        return link_page(404, "This link is not valid", "Ask for a new one from the release page.")
    record, used, etag = found
    if used:
        return link_page(410, "This link was already used", "Each link decides once.",
                     release_id=record["releaseId"])
    if datetime.fromisoformat(record["expires"]) <= bootstrap.deps().clock.now():
        return link_page(410, "This link has expired", "Open the release in Slipway to decide.",
                     release_id=record["releaseId"])
    return record, used, etag


@bp.route(route="api/approve/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approval_page(req: func.HttpRequest) -> func.HttpResponse:
    found = open_link(req.route_params.get("token", ""))
    if isinstance(found, func.HttpResponse):
        return found
    record, _, link_etag = found
    if req.method == "GET":
        return _show(req, record)
    return _act(req, record, link_etag)


def sign_in_hint(req: func.HttpRequest, approver: str) -> dict[str, str]:
    """How to decide: a sign-in link in Azure; on the local stack, a button to act as the approver."""
    deps = bootstrap.deps()
    try:
        who = principal_of(req, deps.settings)
    except Unauthenticated:
        who = None
    here = urlsplit(req.url).path
    if deps.settings.auth_mode != "development":
        if who is None and deps.settings.easy_auth:
            return {"hint": "sign-in", "login_back": quote(here, safe="")}
        return {}
    if who is not None and who.is_(approver):
        return {"hint": "acting", "who": who.name}
    return {"hint": "switch", "who": who.name if who else "", "here": here}


def _show(req: func.HttpRequest, record: dict[str, Any]) -> func.HttpResponse:
    deps = bootstrap.deps()
    try:
        release, etag = releases.read(deps, record["releaseId"])
    except NotFound:
        return link_page(404, "This release no longer exists")
    run = release.stages.get(record["stage"])
    dep = run.deployments[record["attempt"] - 1] if run and record["attempt"] <= len(run.deployments) else None
    approval = dep.approvals.get(record["kind"]) if dep else None
    running = releases.running(deps, release)
    plan = release.plan.stage(record["stage"])
    now_there = running.get(Target.from_dict(plan.target).resource_id.lower()) if plan else None
    decidable = approval is not None and approval.status == ApprovalStatus.PENDING and run is not None \
        and dep is run.current
    return link_page(200, f"Approve {release.name} to {record['stage']}?", release=release, record=record,
                 state=approval.status if approval else "unknown", approval=approval, now_there=now_there,
                 gates=_gates(plan, dep), etag=etag if decidable else "", release_id=release.id,
                 what_if=_what_if(dep),
                 **(sign_in_hint(req, record["approver"]) if decidable else {}))


def _what_if(dep: release_domain.Deployment | None) -> list[dict[str, Any]]:
    """What the deployment's infrastructure steps will change, as ARM's what-if answered while it waited."""
    if dep is None:
        return []
    return [{"name": dep.steps[int(k)].name if int(k) < len(dep.steps) else f"step {k}", **v}
            for k, v in sorted(dep.previews.items(), key=lambda kv: int(kv[0]))]


def _gates(plan: plan_domain.StagePlan | None, dep: release_domain.Deployment | None) -> list[dict[str, Any]]:
    """The stage's gates as configured, and how each stands in this deployment."""
    found = []
    for kind in (Kind.PRE, Kind.POST):
        config = gate_rules.gate_config(plan, kind)
        if config:
            found.append({"kind": kind, "order": gate_rules.order(plan, kind),
                          "signals": [str(s.get("name", "")) for s in config.get("signals", [])],
                          "run": dep.gates.get(kind) if dep else None})
    return found


def decider(req: func.HttpRequest, record: dict[str, Any]) -> tuple[Principal, dict[str, str]] | func.HttpResponse:
    """Who posts the link's form and what they sent: the signed-in person the link was made for, from
    this site's own page; otherwise the page that says why not."""
    form = {k: v[0] for k, v in parse_qs((req.get_body() or b"")[:65536].decode(errors="replace")).items()}
    try:
        same_origin(req)
    except Invalid:
        return link_page(403, "Not decided", "Decisions are accepted from this site's own page only.")
    try:
        who = principal_of(req, bootstrap.deps().settings)
        require(who, READER, "decide")
    except (Unauthenticated, Forbidden) as exc:
        return link_page(401, "Sign in to decide", str(exc))
    if not who.is_(record["approver"]):
        return link_page(403, "This link is for someone else",
                         f"It was sent to {record['approver']}; you are {who.name}.")
    return who, form


def decide_by_link(req: func.HttpRequest, record: dict[str, Any], link_etag: str, words: dict[str, str],
                   act: Callable[[Principal, str, str, str], None]) -> func.HttpResponse:
    """The signed-in person the link was made for decides once: `act(who, decision, comment, etag)` with a
    decision among `words` (decision → what the page then says, "Approved"); the link is used up after."""
    found = decider(req, record)
    if isinstance(found, func.HttpResponse):
        return found
    who, form = found
    decision = form.get("decision", "")
    if decision not in words or not form.get("etag"):
        return link_page(400, f"Choose {' or '.join(words)}", "Go back and use the form.")
    try:
        act(who, decision, fields_schemas.clip(form.get("comment", "")), form["etag"])
    except PreconditionFailed:
        return link_page(412, "The release changed", "Open the link again to see it as it is now.")
    except (Conflict, Forbidden, Invalid, NotFound) as exc:
        return link_page(409, "Not decided", str(exc), release_id=record["releaseId"])
    try:
        bootstrap.deps().store.use_link(key_hash(req.route_params["token"]), link_etag)
    except store_records.ConcurrentChange:
        pass  # decided anyway: what was decided refuses a second decision itself
    word = words[decision]
    return link_page(200, word, f"{word} as {who.name}. Thank you.", release_id=record["releaseId"])


def _act(req: func.HttpRequest, record: dict[str, Any], link_etag: str) -> func.HttpResponse:
    def vote(who: Principal, decision: str, comment: str, etag: str) -> None:
        approvals.cast_vote(bootstrap.deps(), record["releaseId"], record["stage"], record["kind"], who, decision,
                            comment, attempt=record["attempt"], if_match=etag)

    return decide_by_link(req, record, link_etag, {"approve": "Approved", "reject": "Rejected"}, vote)

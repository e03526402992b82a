"""The page an approval mail links to. GET only shows the release and a form, so mail scanners that
fetch (or prefetch) the link change nothing; only a POST by the signed-in approver the link was
made for decides, once. The token is random, stored hashed, bound to one approval and approver,
and expires."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func

from functions.identity import principal_of
from functions.web.guard import same_origin
from functions.web.render import HEADERS
from shared import bootstrap
from shared.domain.access import READER, Forbidden, Unauthenticated, require
from shared.domain.errors import Conflict, Invalid, NotFound, PreconditionFailed
from shared.domain.keys import key_hash
from shared.domain.target import Target
from shared.records import ConcurrentChange
from shared.schemas.fields import clip
from shared.services import approvals, releases

bp = func.Blueprint()
STYLE = ("body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
         "table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd}"
         "button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}")


def _page(status: int, title: str, body: str) -> func.HttpResponse:
    """The dashboard's security headers (no framing, no scripts, forms to this site only, no caching)."""
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return func.HttpResponse(text, status_code=status, mimetype="text/html", charset="utf-8",
                             headers={**HEADERS, "X-Robots-Tag": "noindex", "X-Frame-Options": "DENY"})


def _link(token: str) -> tuple[dict[str, Any], bool, str] | func.HttpResponse:
    found = bootstrap.deps().store.link(key_hash(token))
    if found is None:
        return _page(404, "This link is not valid", "<p>Ask for a new one from the release page.</p>")
    record, used, etag = found
    if used:
        return _page(410, "This link was already used", "<p>Each link decides once.</p>")
    if datetime.fromisoformat(record["expires"]) <= bootstrap.deps().clock.now():
        return _page(410, "This link has expired", "<p>Open the release in Slipway to decide.</p>")
    return record, used, etag


@bp.route(route="api/approve/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approval_page(req: func.HttpRequest) -> func.HttpResponse:
    found = _link(req.route_params.get("token", ""))
    if isinstance(found, func.HttpResponse):
        return found
    record, _, link_etag = found
    if req.method == "GET":
        return _show(req, record)
    return _act(req, record, link_etag)


def _sign_in_hint(req: func.HttpRequest, approver: str) -> str:
    """How to decide: a sign-in link in Azure; on the local stack, a button to act as the approver."""
    deps = bootstrap.deps()
    try:
        who = principal_of(req, deps.settings)
    except Unauthenticated:
        who = None
    e = html.escape
    if deps.settings.auth_mode != "development":
        if who is None and deps.settings.easy_auth:
            path = quote(urlsplit(req.url).path, safe="")
            return f"<p><a href='/.auth/login/aad?post_login_redirect_uri={e(path)}'>Sign in</a> to decide.</p>"
        return ""
    if who is not None and who.is_(approver):
        return f"<p class='dev'>Development mode: you act as {e(who.name)}.</p>"
    back = urlsplit(req.url).path
    return (f"<form method='post' action='/dev/acting-as'><input type='hidden' name='name' value='{e(approver)}'>"
            f"<input type='hidden' name='back' value='{e(back)}'>"
            f"<p>Development mode: you act as {e(who.name if who else 'nobody')}. "
            f"<button>Act as {e(approver)}</button></p></form>")


def _show(req: func.HttpRequest, record: dict[str, Any]) -> func.HttpResponse:
    deps = bootstrap.deps()
    try:
        release, etag = releases.read(deps, record["releaseId"])
    except NotFound:
        return _page(404, "This release no longer exists", "")
    run = release.stages.get(record["stage"])
    dep = run.deployments[record["attempt"] - 1] if run and record["attempt"] <= len(run.deployments) else None
    approval = dep.approvals.get(record["kind"]) if dep else None
    e = html.escape
    running = releases.running(deps, release)
    target = next((s["target"] for s in release.definition["stages"] if s["name"] == record["stage"]), None)
    now_there = running.get(Target.from_dict(target).resource_id.lower()) if target else None
    rows = "".join(f"<tr><td>{e(a['alias'])}</td><td>{e(str(a['version']))}</td>"
                   f"<td>{e(str(a.get('commit') or ''))}</td><td>{e(str(a.get('branch') or ''))}</td></tr>"
                   for a in release.artifacts)
    change = (f"<p>Now in {e(record['stage'])}: release {e(str(now_there.get('releaseId')))} "
              f"(version {e(str(now_there.get('version')))}). This release brings "
              f"{e(', '.join(str(a['version']) for a in release.artifacts))}.</p>" if now_there else
              f"<p>Nothing Slipway knows of runs in {e(record['stage'])} yet.</p>")
    votes = "".join(f"<li>{e(v.by)}: {e(v.decision)} {e(v.comment)}</li>" for v in approval.votes) if approval \
        else ""
    state = approval.status if approval else "unknown"
    form = ""
    if approval is not None and approval.status == "pending" and dep is not None and dep == run.current:  # type: ignore[union-attr]
        form = (f"<form method='post'><input type='hidden' name='etag' value='{e(etag)}'>"
                f"<p><label>Comment<br><textarea name='comment' rows='3' cols='60'></textarea></label></p>"
                f"<button name='decision' value='approve'>Approve</button>"
                f"<button name='decision' value='reject'>Reject</button></form>"
                f"<p>This link is for {e(record['approver'])}; you decide signed in as them.</p>"
                f"{_sign_in_hint(req, record['approver'])}")
    body = (f"<p><b>{e(release.name)}</b> of {e(str(release.definition.get('name')))}, requested by "
            f"{e(release.created_by)}: {e(record['kind'])}-deployment approval of stage "
            f"<b>{e(record['stage'])}</b> (attempt {record['attempt']}) is <b>{e(state)}</b>.</p>"
            f"<table><tr><th>artifact</th><th>version</th><th>commit</th><th>branch</th></tr>{rows}</table>"
            f"{change}<p>Gates: none configured.</p><ul>{votes}</ul>{form}")
    return _page(200, f"Approve {release.name} to {record['stage']}?", body)


def _act(req: func.HttpRequest, record: dict[str, Any], link_etag: str) -> func.HttpResponse:
    deps = bootstrap.deps()
    form = {k: v[0] for k, v in parse_qs((req.get_body() or b"")[:65536].decode(errors="replace")).items()}
    try:
        same_origin(req)
    except Invalid:
        return _page(403, "Not decided", "<p>Decisions are accepted from this site's own page only.</p>")
    try:
        who = principal_of(req, deps.settings)
        require(who, READER, "decide approvals")
    except (Unauthenticated, Forbidden) as exc:
        return _page(401, "Sign in to decide", f"<p>{html.escape(str(exc))}</p>")
    if not who.is_(record["approver"]):
        return _page(403, "This link is for someone else",
                     f"<p>It was sent to {html.escape(record['approver'])}; you are {html.escape(who.name)}.</p>")
    decision = form.get("decision")
    if decision not in ("approve", "reject") or not form.get("etag"):
        return _page(400, "Choose approve or reject", "<p>Go back and use the form.</p>")
    try:
        approvals.decide(deps, record["releaseId"], record["stage"], record["kind"], who, decision,
                         clip(form.get("comment", "")), attempt=record["attempt"], if_match=form["etag"])
    except PreconditionFailed:
        return _page(412, "The release changed", "<p>Open the link again to see it as it is now.</p>")
    except (Conflict, Forbidden, Invalid, NotFound) as exc:
        return _page(409, "Not decided", f"<p>{html.escape(str(exc))}</p>")
    try:
        deps.store.use_link(key_hash(req.route_params["token"]), link_etag)
    except ConcurrentChange:
        pass  # decided anyway: the approval itself refuses a second vote
    word = "Approved" if decision == "approve" else "Rejected"
    return _page(200, word, f"<p>{word} as {html.escape(who.name)}. Thank you.</p>")

"""The dashboard: server-rendered pages at the site root, for people in a browser.

One catch-all route; the API's own routes (`api/...`) are more specific and win. Every page
checks the caller as the API does (App Service authentication's principal, or the local stack's
development identity) and a GET never changes anything: the forms POST, from this site only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func

from functions.http import KNOWN, cursor_param, problem, status_of
from functions.http import page as paged_answer
from functions.identity import (
    ACTING_AS_COOKIE,
    format_acting_as,
    parse_acting_as,
    presented_nothing,
    principal_of,
)
from functions.lazy import lazy
from functions.web import diagram
from functions.web.guard import same_origin
from functions.web.render import render, static
from shared import bootstrap
from shared.domain.access import ADMIN, APP_ROLES, READER, RELEASE_MANAGER, Principal, Unauthenticated, require
from shared.domain.errors import FieldError, Invalid
from shared.domain.stage_order import in_pipeline_order, pipeline_order
from shared.domain.vocabulary import Kind, Phase

if TYPE_CHECKING:
    from shared.domain import release as release_domain
    from shared.domain import variables
    from shared.domain import waiting as waiting_domain
    from shared.schemas import actions as actions_schemas
    from shared.schemas import fields as fields_schemas
    from shared.schemas import release as release_schemas
    from shared.services import (
        approvals,
        definitions,
        delivery_metrics,
        log_archive,
        releases,
        retention,
        what_runs_where,
    )
    from shared.services import views as views_service
else:
    variables = lazy("shared.domain.variables")
    release_domain = lazy("shared.domain.release")
    waiting_domain = lazy("shared.domain.waiting")
    actions_schemas = lazy("shared.schemas.actions")
    fields_schemas = lazy("shared.schemas.fields")
    release_schemas = lazy("shared.schemas.release")
    approvals = lazy("shared.services.approvals")
    definitions = lazy("shared.services.definitions")
    delivery_metrics = lazy("shared.services.delivery_metrics")
    log_archive = lazy("shared.services.log_archive")
    releases = lazy("shared.services.releases")
    retention = lazy("shared.services.retention")
    what_runs_where = lazy("shared.services.what_runs_where")
    views_service = lazy("shared.services.views")

bp = func.Blueprint()
Handler = Callable[[func.HttpRequest, Principal, dict[str, str]], func.HttpResponse]
PAGES: list[tuple[re.Pattern[str], Handler]] = []
FORMS: list[tuple[re.Pattern[str], Handler]] = []


def page(pattern: str, table: list[tuple[re.Pattern[str], Handler]] = PAGES) -> Callable[[Handler], Handler]:
    """Register a page; `\\d+` in its pattern matches 1 to 10 ASCII digits only (never `²`, never a
    number too long to be an id)."""
    def register(handler: Handler) -> Handler:
        table.append((re.compile(pattern.replace(r"\d+", r"\d{1,10}"), re.ASCII), handler))
        return handler

    return register


def form(pattern: str) -> Callable[[Handler], Handler]:
    return page(pattern, FORMS)


@bp.route(route="{*path}", methods=["GET", "HEAD", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    path = (req.route_params.get("path") or "").strip("/")
    if path == "api" or path.startswith("api/"):
        return problem(404, "Not found", f"no API route /{path}")
    if path.startswith("static/"):
        return static(path.removeprefix("static/")) or _error(404, "Not found", "No such file.")
    return dispatch(req, path, PAGES, FORMS, f"/{path}")


def dispatch(req: func.HttpRequest, path: str, pages: list[tuple[re.Pattern[str], Handler]],
             forms: list[tuple[re.Pattern[str], Handler]], shown: str) -> func.HttpResponse:
    """The handler whose pattern matches `path` (a form for a POST), after sign-in, the reader role and, for a POST,
    the same-origin check; domain errors as error pages; 404 naming `shown` when nothing matches."""
    for pattern, handler in forms if req.method == "POST" else pages:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        try:
            who = principal_of(req, bootstrap.deps().settings)
        except Unauthenticated as exc:
            return _sign_in(req, str(exc))
        try:
            require(who, READER, "read the dashboard")
            if req.method == "POST":
                same_origin(req)
            return handler(req, who, match.groupdict())
        except KNOWN as exc:
            status, title = status_of(exc)
            return _error(status, title, str(exc), errors=getattr(exc, "errors", None))
    return _error(404, "Not found", f"Nothing is at {shown}.")


SIGN_IN = "/.auth/login/aad"
"""App Service authentication's sign-in endpoint for Microsoft Entra ID."""


def _sign_in(req: func.HttpRequest, why: str) -> func.HttpResponse:
    """An anonymous browser is sent to sign in (App Service authentication runs with
    `unauthenticatedClientAction: AllowAnonymous`, so that the app decides); a forged or broken
    identity, or a POST, gets a 401 page."""
    settings = bootstrap.deps().settings
    if req.method in ("GET", "HEAD") and settings.easy_auth and presented_nothing(req):
        back = urlsplit(req.url)
        target = back.path + (f"?{back.query}" if back.query else "")
        return func.HttpResponse(status_code=302, headers={"Location": f"{SIGN_IN}?post_login_redirect_uri="
                                                                       f"{quote(target, safe='')}",
                                                           "Cache-Control": "no-store"})
    return _error(401, "Sign in", why)


def _error(status: int, title: str, detail: str, errors: list[FieldError] | None = None) -> func.HttpResponse:
    return render("error.html", status, title=title, detail=detail, errors=errors or [], who=None)


def _digits(text: str, field: str, *, low: int = 0, high: int = 2**31 - 1) -> int:
    """A whole number written in ASCII digits within [low, high], or a 400 naming the field."""
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and low <= int(text) <= high):
        raise Invalid([FieldError(field, f"a whole number from {low} to {high}")])
    return int(text)


def _number(req: func.HttpRequest, field: str, default: int | None, *, low: int = 0,
            high: int = 2**31 - 1) -> int | None:
    text = req.params.get(field)
    return default if text is None or text == "" else _digits(text, field, low=low, high=high)


def _fields(req: func.HttpRequest) -> dict[str, str]:
    raw = (req.get_body() or b"")[:65536].decode(errors="replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _see_other(location: str) -> func.HttpResponse:
    return func.HttpResponse(status_code=303, headers={"Location": location, "Cache-Control": "no-store"})


# -- pages


@page(r"")
def pipelines(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    items, _next = definitions.list_page(deps, cursor=None, limit=200)
    rows = []
    for item in items:
        latest = releases.newest(deps, item["id"], limit=1)
        first = latest[0] if latest else None
        rows.append({**item, "latest": first, "running": first is not None and is_running(first),
                     "stages": in_pipeline_order(first.definition["stages"], first.stages) if first else []})
    return render("pipelines.html", who=who, pipelines=rows)


@page(r"pipelines/(?P<id>\d+)")
def pipeline(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    definition = definitions.get(deps, int(route["id"]))
    cursor = cursor_param(req)
    items, nxt = releases.newest_page(deps, int(route["id"]), limit=30, cursor=cursor)
    latest = items if cursor is None else releases.newest(deps, int(route["id"]), limit=1)
    statuses = {n: r.status for n, r in latest[0].stages.items()} if latest else {}
    order = pipeline_order(definition["stages"])
    preview = waiting_domain.preview
    rows = [{"release": r, "stages": [(n, r.stages[n].status, preview(r, n)) if n in r.stages else (n, None, None)
                                      for n in order],
             "pending": _pending(r), "running": is_running(r)} for r in items]
    return render("pipeline.html", who=who, definition=definition, diagram=diagram.layout(definition, statuses),
                  box=diagram, releases=rows, can_create=who.has(RELEASE_MANAGER), can_edit=who.has(ADMIN), order=order,
                  settable=variables.settable(definition),
                  older=paged_answer([], nxt)["continuationToken"], paged=cursor is not None)


MOVING = (Phase.QUEUED, Phase.PRE_GATE, Phase.STEPS, Phase.POST_GATE)
"""Phases in which a deployment goes on by itself; the others wait for a person or a time."""


def moving(release: release_domain.Release) -> set[str]:
    """The stages of `release` that are running now: queued or deploying, not waiting for an approval,
    an intervention, a deferral or a deployment window."""
    if release.status != "active":
        return set()
    return {name for name, run in release.stages.items() if run.status in ("inProgress", "queued")
            and run.current is not None and run.current.phase in MOVING}


def is_running(release: release_domain.Release) -> bool:
    """Only a release with a running stage gets a running mark."""
    return bool(moving(release))


def _pending(release: release_domain.Release) -> dict[str, list[str]]:
    """Per stage, who a pending approval waits for."""
    out: dict[str, list[str]] = {}
    for name, run in release.stages.items():
        dep = run.current
        for approval in (dep.approvals.values() if dep else []):
            if approval.status == "pending":
                out.setdefault(name, []).extend(approval.waiting_for())
    return out


@page(r"releases/(?P<id>\d+)")
def release_page(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    release, etag = releases.read(deps, int(route["id"]))
    running = releases.running(deps, release)
    view = views_service.release_view(release, base="", running=running,
                        retention=None if req.params.get("part") == "live" else
                        retention.verdict(deps, release, running).to_json())
    context = dict(who=who, release=release, view=view, etag=etag, events=releases.events(deps, release.id),
                   previews={n: waiting_domain.preview(release, n, deps.clock.now()) for n in release.stages},
                   can_deploy=who.has(RELEASE_MANAGER), can_admin=who.has(ADMIN), quote=quote,
                   running=is_running(release), moving=moving(release),
                   live=req.params.get("part") == "live")
    return render("release_live.html" if context["live"] else "release.html", **context)


@page(r"releases/(?P<id>\d+)/stages/(?P<stage>[^/]+)/deployments/(?P<attempt>\d+)/steps/(?P<step>\d+)/log")
def step_log(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    stage, attempt = route["stage"], int(route["attempt"])
    release, step, text = releases.step_log(bootstrap.deps(), int(route["id"]), stage, attempt, int(route["step"]))
    if req.params.get("download") or req.params.get("raw"):
        start = _number(req, "from", 0, high=2**40) or 0
        encoded = text.encode()
        headers = {"Cache-Control": "no-store", "X-Log-Length": str(len(encoded)), "X-Step-Status": step.status,
                   "X-Content-Type-Options": "nosniff"}
        if req.params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{_file_name(release, stage, attempt, step)}"'
        return func.HttpResponse(encoded[start:], status_code=200, mimetype="text/plain", charset="utf-8",
                                 headers=headers)
    return render("log.html", who=who, release=release, stage=stage, attempt=attempt, step=step, text=text,
                  quote=quote)


def _file_name(release: release_domain.Release, stage: str, attempt: int, step: Any) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{release.name}-{stage}-{attempt}-{step.index}-{step.name}")
    return safe[:150] + ".log"


@page(r"releases/(?P<id>\d+)/logs\.zip")
def logs_zip(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    """Every step log of every attempt of the release, one file each."""
    deps = bootstrap.deps()
    release = releases.get(deps, int(route["id"]))
    return func.HttpResponse(log_archive.zip_of(deps, release), status_code=200, mimetype="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{log_archive.file_name(release)}"',
                                      "Cache-Control": "no-store"})


@page(r"pipelines/(?P<id>\d+)/environments")
def environments_page(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    """What runs where, and two releases side by side (artifacts, versions and commits)."""
    deps = bootstrap.deps()
    definition_id = int(route["id"])
    where = what_runs_where.what_runs_where(deps, definition_id, verify=req.params.get("verify") == "true")
    compare = None
    a, b = req.params.get("a", ""), req.params.get("b", "")
    if a or b:
        left = releases.get(deps, _digits(a, "a", low=1))
        right = releases.get(deps, _digits(b, "b", low=1))
        aliases = sorted({x["alias"] for x in left.artifacts} | {x["alias"] for x in right.artifacts})
        pick = {r.id: {x["alias"]: x for x in r.artifacts} for r in (left, right)}
        compare = {"left": left, "right": right,
                   "rows": [(alias, pick[left.id].get(alias), pick[right.id].get(alias)) for alias in aliases]}
    return render("environments.html", who=who, definition=definitions.get(deps, definition_id), where=where,
                  compare=compare, a=a, b=b)


@page(r"approvals")
def inbox(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    mine = req.params.get("all") != "1"
    items, _next = approvals.pending(deps, who=who if mine else None, definition_id=None, status="pending",
                                     cursor=None, limit=100)
    etags = {}
    for item in items:
        if item["releaseId"] not in etags:
            etags[item["releaseId"]] = releases.read(deps, item["releaseId"])[1]
    return render("approvals.html", who=who, items=items, etags=etags, mine=mine, quote=quote)


@page(r"metrics")
def metrics_page(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    days = _number(req, "days", 30, low=1, high=366) or 30
    items, _next = definitions.list_page(deps, cursor=None, limit=200)
    until = deps.clock.now()
    since = until - timedelta(days=days)
    results = [(item, delivery_metrics.for_definition(deps, item["id"], since=since, until=until)) for item in items]
    return render("metrics.html", who=who, results=results, days=days)


@page(r"dev/acting-as")
def acting_as_page(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    """Development mode only: choose whom to act as (an approver from a mail link, a release manager)."""
    _development_only()
    return render("acting_as.html", who=who, roles=list(APP_ROLES), back=_local_path(req.params.get("back", "/")),
                  suggested=req.params.get("name", ""))


def _development_only() -> None:
    from shared.domain.errors import NotFound

    if bootstrap.deps().settings.auth_mode != "development":
        raise NotFound("acting as someone else is for the local stack's development mode only")


def _local_path(value: str) -> str:
    """Only a path of this site is a place to go back to."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


# -- forms (POST; each answers 303 to the page that shows the outcome)


@form(r"dev/acting-as")
def act_as(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    """Set (or, with an empty name, clear) the acting-as cookie; development mode only."""
    _development_only()
    fields = _fields(req)
    back = _local_path(fields.get("back", "/"))
    name = fields.get("name", "").strip()
    response = _see_other(back)
    if not name:
        response.headers["Set-Cookie"] = f"{ACTING_AS_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        return response
    roles = [r for r in APP_ROLES if fields.get(f"role:{r}") == "on"]
    groups = [g.strip() for g in fields.get("groups", "").split(",") if g.strip()]
    try:
        value = format_acting_as(name, roles, groups)
        parse_acting_as(value)
    except Unauthenticated as exc:
        raise Invalid([FieldError("name", str(exc))]) from None
    response.headers["Set-Cookie"] = (f"{ACTING_AS_COOKIE}={quote(value, safe='@.')}; Path=/; HttpOnly; "
                                      "SameSite=Lax")
    return response



@form(r"pipelines/(?P<id>\d+)/releases")
def create_release(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    require(who, RELEASE_MANAGER, "create releases")
    fields = _fields(req)
    artifacts = [{"alias": k.removeprefix("version:"), "version": v.strip()}
                 for k, v in fields.items() if k.startswith("version:") and v.strip()]
    given = {k.removeprefix("var:"): v for k, v in fields.items() if k.startswith("var:") and v != ""}
    body = release_schemas.parse(release_schemas.ReleaseIn, {"definitionId": int(route["id"]),
                                                             "description": fields.get("description", ""),
                             "artifacts": artifacts, "debug": fields.get("debug") == "true", "variables": given})
    release, _created = releases.create(bootstrap.deps(), body, by=who.name,
                                        client_key=fields.get("idempotencyKey") or None)
    return _see_other(f"/releases/{release.id}")


@form(r"releases/(?P<id>\d+)/stages/(?P<stage>[^/]+)/deploy")
def deploy(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    require(who, RELEASE_MANAGER, "deploy stages")
    fields = _fields(req)
    body = release_schemas.parse(actions_schemas.DeployIn, {k: v for k in ("reason", "breakGlass", "notBefore")
                                                            if (v := fields.get(k, "").strip())})
    releases.deploy_stage(bootstrap.deps(), int(route["id"]), route["stage"], body, by=who.name, admin=who.has(ADMIN))
    return _see_other(f"/releases/{route['id']}")


@form(r"releases/(?P<id>\d+)/stages/(?P<stage>[^/]+)/gates/(?P<kind>pre|post)/ignore")
def ignore_gate(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    comment = fields_schemas.clip(_fields(req).get("comment", ""))
    body = release_schemas.parse(actions_schemas.IgnoreGateIn, {"comment": comment})
    releases.ignore_gate(bootstrap.deps(), int(route["id"]), route["stage"], Kind(route["kind"]), who, body.comment)
    return _see_other(f"/releases/{route['id']}")


@form(r"releases/(?P<id>\d+)/stages/(?P<stage>[^/]+)/interventions/(?P<step>\d{1,4})")
def intervene(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    fields = _fields(req)
    decision = fields.get("decision")
    if decision not in ("resume", "reject"):
        raise Invalid([FieldError("decision", "resume or reject")])
    if not fields.get("etag"):
        raise Invalid([FieldError("etag", "the page's version of the release; reload the page")])
    attempt = _digits(fields.get("attempt", ""), "attempt", low=1, high=10**6) if fields.get("attempt") else None
    approvals.intervene(bootstrap.deps(), int(route["id"]), route["stage"], int(route["step"]), who, decision,
                        fields_schemas.clip(fields.get("comment", "")), attempt=attempt, if_match=fields["etag"])
    return _see_other(f"/releases/{route['id']}")


@form(r"releases/(?P<id>\d+)/stages/(?P<stage>[^/]+)/approvals/(?P<kind>pre|post)")
def decide(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    fields = _fields(req)
    decision = fields.get("decision")
    if decision not in ("approve", "reject"):
        raise Invalid([FieldError("decision", "approve or reject")])
    if not fields.get("etag"):
        raise Invalid([FieldError("etag", "the page's version of the release; reload the page")])
    attempt = _digits(fields.get("attempt", ""), "attempt", low=1, high=10**6) if fields.get("attempt") else None
    approvals.cast_vote(bootstrap.deps(), int(route["id"]), route["stage"], route["kind"], who, decision,
                     fields_schemas.clip(fields.get("comment", "")), attempt=attempt, if_match=fields["etag"])
    back = fields.get("back", "")
    return _see_other(back if back in ("/approvals",) else f"/releases/{route['id']}")

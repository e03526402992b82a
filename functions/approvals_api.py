"""HTTP API: approve, reject, override, defer, reassign; the approvals inbox; decisions in bulk; resume or
reject a manual intervention."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import KNOWN, api, authorize, body_json, cursor_param, int_param, json_response, page, status_of
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN, READER
from shared.domain.errors import (
    FieldError,
    Invalid,
    PreconditionRequired,
)

if TYPE_CHECKING:
    from shared.domain import release as release_domain
    from shared.schemas import approval as approval_schemas
    from shared.schemas import release as release_schemas
    from shared.services import approvals, releases
    from shared.services import views as views_service
else:
    release_domain = lazy("shared.domain.release")
    approval_schemas = lazy("shared.schemas.approval")
    release_schemas = lazy("shared.schemas.release")
    approvals = lazy("shared.services.approvals")
    releases = lazy("shared.services.releases")
    views_service = lazy("shared.services.views")

bp = func.Blueprint()
BASE = "api/releases/{releaseId:int}/stages/{stage}"


def _if_match(req: func.HttpRequest) -> str:
    value = req.headers.get("If-Match")
    if not value:
        raise PreconditionRequired("send If-Match with the release's ETag (from GET /releases/{id})")
    return str(value)


def _where(req: func.HttpRequest) -> tuple[int, str]:
    """The release id and stage name the route names."""
    return int(req.route_params["releaseId"]), req.route_params["stage"]


def _answer(release: release_domain.Release) -> func.HttpResponse:
    return json_response(views_service.release_view(release, running=releases.running(bootstrap.deps(), release)))


@bp.route(route=BASE + "/approvals/{kind}", methods=["POST"])
@api
def decide_approval(req: func.HttpRequest) -> func.HttpResponse:
    """Approve or reject a pending approval as one of its approvers."""
    who = authorize(req, READER, "decide approvals")
    body = release_schemas.parse(approval_schemas.DecisionIn, body_json(req))
    release = approvals.cast_vote(bootstrap.deps(), *_where(req), req.route_params["kind"], who, body.decision,
                               body.comment, attempt=body.attempt, if_match=_if_match(req))
    return _answer(release)


@bp.route(route=BASE + "/interventions/{step:int}", methods=["POST"])
@api
def decide_intervention(req: func.HttpRequest) -> func.HttpResponse:
    """Resume or reject a manual-intervention step (its index in the stage) as one of its assignees."""
    who = authorize(req, READER, "decide manual interventions")
    body = release_schemas.parse(approval_schemas.InterventionIn, body_json(req))
    release = approvals.intervene(bootstrap.deps(), *_where(req), int(req.route_params["step"]), who, body.decision,
                                  body.comment, attempt=body.attempt, if_match=_if_match(req))
    return _answer(release)


@bp.route(route=BASE + "/approvals/{kind}/override", methods=["POST"])
@api
def override_approval(req: func.HttpRequest) -> func.HttpResponse:
    who = authorize(req, ADMIN, "override approvals")
    body = release_schemas.parse(approval_schemas.OverrideIn, body_json(req))
    release = approvals.cast_vote(bootstrap.deps(), *_where(req), req.route_params["kind"], who, body.decision,
                               body.reason, attempt=body.attempt, if_match=_if_match(req), override=True)
    return _answer(release)


@bp.route(route=BASE + "/approvals/{kind}/reassign", methods=["POST"])
@api
def reassign_approval(req: func.HttpRequest) -> func.HttpResponse:
    who = authorize(req, READER, "reassign approvals")
    body = release_schemas.parse(approval_schemas.ReassignIn, body_json(req))
    release = approvals.reassign(bootstrap.deps(), *_where(req), req.route_params["kind"], who, body.to,
                                 body.comment, attempt=body.attempt, if_match=_if_match(req))
    return _answer(release)


@bp.route(route=BASE + "/defer", methods=["POST"])
@api
def defer_deployment(req: func.HttpRequest) -> func.HttpResponse:
    who = authorize(req, READER, "defer deployments")
    body = release_schemas.parse(approval_schemas.DeferIn, body_json(req))
    release = approvals.defer(bootstrap.deps(), *_where(req), who, body.until, body.comment, attempt=body.attempt,
                              if_match=_if_match(req))
    return _answer(release)


@bp.route(route="api/approvals", methods=["GET"])
@api
def list_approvals(req: func.HttpRequest) -> func.HttpResponse:
    """Pending approvals (`?mine=true` for the caller's own; `status`, `definitionId` filters)."""
    who = authorize(req, READER, "read approvals")
    mine = (req.params.get("mine") or "").lower() in ("1", "true", "yes")
    status = req.params.get("status", "pending")
    if status not in ("pending", "approved", "rejected", "canceled", "skipped", "all"):
        raise Invalid([FieldError("status", "must be pending, approved, rejected, canceled, skipped or all")])
    items, nxt = approvals.pending(bootstrap.deps(), who=who if mine else None,
                                   definition_id=int_param(req, "definitionId"),
                                   status=None if status == "all" else status, cursor=cursor_param(req),
                                   limit=int_param(req, "top", 50, high=200) or 50)
    return json_response(page(items, nxt))


@bp.route(route="api/approvals/batch", methods=["POST"])
@api
def batch_decide(req: func.HttpRequest) -> func.HttpResponse:
    """Approve or reject several approvals at once; each item carries its release's ETag."""
    who = authorize(req, READER, "decide approvals")
    body = release_schemas.parse(approval_schemas.BatchIn, body_json(req))
    deps, results = bootstrap.deps(), []
    for item in body.items:
        try:
            approvals.cast_vote(deps, item.releaseId, item.stage, item.kind, who, body.decision, body.comment,
                             attempt=item.attempt, if_match=item.etag)
            results.append({**item.model_dump(), "status": 200})
        except KNOWN as exc:
            results.append({**item.model_dump(), "status": status_of(exc)[0], "detail": str(exc)})
    return json_response({"count": len(results), "value": results})


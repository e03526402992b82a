"""HTTP API: release definitions and their revisions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import (
    api,
    authorize,
    body_json,
    bool_param,
    cursor_param,
    int_param,
    json_response,
    page,
    route_int,
)
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN, READER
from shared.domain.errors import FieldError, Invalid

if TYPE_CHECKING:
    from shared.domain import ado_import
    from shared.services import definition_import, definitions, delivery_metrics, what_runs_where
    from shared.services import definitions as definitions_service
else:
    ado_import = lazy("shared.domain.ado_import")
    definition_import = lazy("shared.services.definition_import")
    definitions = lazy("shared.services.definitions")
    delivery_metrics = lazy("shared.services.delivery_metrics")
    what_runs_where = lazy("shared.services.what_runs_where")
    definitions_service = lazy("shared.services.definitions")

bp = func.Blueprint()


def _with_etag(body: dict, status: int = 200) -> func.HttpResponse:  # type: ignore[type-arg]
    return json_response(body, status, headers={"ETag": definitions_service.etag_of(body["revision"])})


@bp.route(route="api/definitions", methods=["GET", "POST"])
@api
def definitions_collection(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    if req.method == "POST":
        who = authorize(req, ADMIN, "create definitions")
        if bool_param(req, "dryRun"):
            return json_response(definitions.preview(deps, body_json(req)))
        created = definitions.create(deps, body_json(req), by=who.name)
        resp = _with_etag(created, 201)
        resp.headers["Location"] = f"/api/definitions/{created['id']}"
        return resp
    authorize(req, READER, "read definitions")
    name = req.params.get("name")
    if name is not None and not 1 <= len(name) <= NAME_MAX:
        raise Invalid([FieldError("name", f"a definition name of 1 to {NAME_MAX} characters")])
    items, nxt = definitions.list_page(deps, cursor=cursor_param(req), limit=int_param(req, "top", 50, high=200) or 50,
                                       name=name)
    return json_response(page(items, nxt))


TARGET_PARAMS = ("subscriptionId", "resourceGroup", "site")
NAME_MAX = 128  # LongName


@bp.route(route="api/schemas/definition.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def definition_schema(req: func.HttpRequest) -> func.HttpResponse:
    """The definition's JSON Schema, for editors (YAML and JSON language servers) and offline
    validation; public like the API document."""
    return json_response(definitions.json_schema())


@bp.route(route="api/definitions/import", methods=["POST"])
@api
def import_definition(req: func.HttpRequest) -> func.HttpResponse:
    """An Azure DevOps classic release definition (its REST GET or the portal's export) in, a Slipway
    definition and the migration report out; `dryRun=true` saves nothing, `strict=true` refuses tasks
    Slipway cannot run instead of replacing them by manual interventions."""
    who = authorize(req, ADMIN, "import definitions")
    target = {name: req.params[name] for name in TARGET_PARAMS if req.params.get(name)}
    if target and len(target) < len(TARGET_PARAMS):
        missing = next(name for name in TARGET_PARAMS if name not in target)
        raise Invalid([FieldError(missing, "a default target needs subscriptionId, resourceGroup and site")])
    name = req.params.get("name") or None
    options = ado_import.ImportOptions(strict=bool_param(req, "strict"), target=target or None, name=name)
    dry_run = bool_param(req, "dryRun")
    answer = definition_import.run(bootstrap.deps(), body_json(req), options, dry_run=dry_run, by=who.name)
    if dry_run:
        return json_response(answer)
    resp = json_response(answer, 201, headers={"ETag": definitions_service.etag_of(answer["definition"]["revision"])})
    resp.headers["Location"] = f"/api/definitions/{answer['definition']['id']}"
    return resp


@bp.route(route="api/definitions/{definitionId:int}", methods=["GET", "PUT", "DELETE"])
@api
def definition_item(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    definition_id = route_int(req, "definitionId")
    if_match = req.headers.get("If-Match")
    if req.method == "PUT":
        who = authorize(req, ADMIN, "change definitions")
        if bool_param(req, "dryRun"):
            return json_response(definitions.preview(deps, body_json(req), definition_id))
        updated, _ = definitions.update(deps, definition_id, body_json(req), by=who.name, if_match=if_match)
        return _with_etag(updated)
    if req.method == "DELETE":
        who = authorize(req, ADMIN, "delete definitions")
        definitions.delete(deps, definition_id, by=who.name, if_match=if_match)
        return func.HttpResponse(status_code=204)
    authorize(req, READER, "read definitions")
    return _with_etag(definitions.get(deps, definition_id))


@bp.route(route="api/definitions/{definitionId:int}/revisions", methods=["GET"])
@api
def definition_revisions(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, READER, "read definitions")
    items = definitions.revisions(bootstrap.deps(), route_int(req, "definitionId"))
    return json_response(page(items, None))


@bp.route(route="api/definitions/{definitionId:int}/revisions/{revision:int}", methods=["GET"])
@api
def definition_revision(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, READER, "read definitions")
    body = definitions.get(bootstrap.deps(), route_int(req, "definitionId"), route_int(req, "revision"))
    return json_response(body)


@bp.route(route="api/definitions/{definitionId:int}/stages/{stage}/clone", methods=["POST"])
@api
def clone_stage(req: func.HttpRequest) -> func.HttpResponse:
    """The body (and its `name`) is optional: without one the copy is named as Azure DevOps names it,
    "Copy of <stage>" (then "(2)", "(3)"... when taken)."""
    who = authorize(req, ADMIN, "change definitions")
    body = body_json(req) if (req.get_body() or b"").strip() else {}
    if not isinstance(body, dict):
        raise Invalid([FieldError("body", "a JSON object, e.g. {\"name\": \"QA\"}, or no body")])
    if unknown := sorted(set(body) - {"name"}):
        raise Invalid([FieldError(field, "unknown field (only name)") for field in unknown])
    updated = definitions.clone_stage(bootstrap.deps(), route_int(req, "definitionId"), req.route_params["stage"],
                                      body.get("name"), by=who.name, if_match=req.headers.get("If-Match"))
    return _with_etag(updated, 201)


@bp.route(route="api/definitions/{definitionId:int}/environments", methods=["GET"])
@api
def definition_environments(req: func.HttpRequest) -> func.HttpResponse:
    """What runs where; `?verify=true` also reads every slot to show drift."""
    authorize(req, READER, "read what runs where")
    verify = (req.params.get("verify") or "").lower() in ("1", "true", "yes")
    return json_response(what_runs_where.what_runs_where(bootstrap.deps(), route_int(req, "definitionId"),
                                                      verify=verify))


@bp.route(route="api/definitions/{definitionId:int}/metrics", methods=["GET"])
@api
def definition_metrics(req: func.HttpRequest) -> func.HttpResponse:
    """Delivery metrics over the last `days` (default 30): frequency, lead time, change failure
    rate, time to restore, and waits apart from execution; `stage` keeps one stage."""
    authorize(req, READER, "read delivery metrics")
    deps = bootstrap.deps()
    days = int_param(req, "days", 30, high=366) or 30
    stage = req.params.get("stage") or None
    if stage is not None and len(stage) > 64:
        raise Invalid([FieldError("stage", "a stage name of at most 64 characters")])
    until = deps.clock.now()
    since = until - timedelta(days=days)
    return json_response(delivery_metrics.for_definition(deps, route_int(req, "definitionId"), since=since, until=until,
                                                 stage=stage))

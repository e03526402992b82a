"""HTTP API: releases, their stages, history and step logs; the artifact webhook."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from functions.http import api, authorize, body_json, cursor_param, int_param, json_response, page, route_int
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN, READER, RELEASE_MANAGER
from shared.domain.errors import FieldError, Invalid, NotFound
from shared.domain.vocabulary import Kind

if TYPE_CHECKING:
    from shared.domain import release as release_domain
    from shared.domain import waiting as waiting_domain
    from shared.schemas import actions as actions_schemas
    from shared.schemas import release as release_schemas
    from shared.services import log_archive, releases, retention
    from shared.services import views as views_service
else:
    release_domain = lazy("shared.domain.release")
    waiting_domain = lazy("shared.domain.waiting")
    actions_schemas = lazy("shared.schemas.actions")
    release_schemas = lazy("shared.schemas.release")
    log_archive = lazy("shared.services.log_archive")
    releases = lazy("shared.services.releases")
    retention = lazy("shared.services.retention")
    views_service = lazy("shared.services.views")

bp = func.Blueprint()


def _view(release: release_domain.Release) -> dict[str, Any]:
    """A release as every answer shows it, with what runs in each stage's slot now (as GET shows it)."""
    return views_service.release_view(release, running=releases.running(bootstrap.deps(), release))


@bp.route(route="api/releases", methods=["GET", "POST"])
@api
def releases_collection(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    if req.method == "POST":
        who = authorize(req, RELEASE_MANAGER, "create releases")
        body = release_schemas.parse(release_schemas.ReleaseIn, body_json(req))
        key = req.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 200:
            raise Invalid([FieldError("Idempotency-Key", "must be 1 to 200 characters")])
        release, created = releases.create(deps, body, by=who.name, client_key=key)
        return json_response(_view(release), 201 if created else 200,
                             headers={"Location": f"/api/releases/{release.id}"})
    authorize(req, READER, "read releases")
    status = req.params.get("status")
    if status not in (None, "active", "abandoned"):
        raise Invalid([FieldError("status", "must be active or abandoned")])
    since = req.params.get("createdSince")
    if since:
        try:
            since = datetime.fromisoformat(since.replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise Invalid([FieldError("createdSince", "must be an ISO-8601 time")]) from None
    items, nxt = releases.list_page(deps, definition_id=int_param(req, "definitionId"), status=status, since=since,
                                    cursor=cursor_param(req), limit=int_param(req, "top", 50, high=200) or 50)
    return json_response(page([views_service.release_summary(r) for r in items], nxt))


@bp.route(route="api/releases/{releaseId:int}", methods=["GET"])
@api
def release_item(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, READER, "read releases")
    deps = bootstrap.deps()
    release, etag = releases.read(deps, route_int(req, "releaseId"))
    running = releases.running(deps, release)
    view = views_service.release_view(release, running=running,
                                      retention=retention.verdict(deps, release, running).to_json())
    return json_response(view, headers={"ETag": etag})


@bp.route(route="api/releases/{releaseId:int}/retain", methods=["POST"])
@api
def retain_release(req: func.HttpRequest) -> func.HttpResponse:
    """Keep a release forever (Azure DevOps' `keepForever`), or hand it back to retention."""
    who = authorize(req, RELEASE_MANAGER, "keep releases forever")
    body = release_schemas.parse(release_schemas.RetainIn, body_json(req))
    verdict = retention.retain(bootstrap.deps(), route_int(req, "releaseId"), by=who.name,
                              keep_forever=body.keepForever, comment=body.comment)
    return json_response({"releaseId": route_int(req, "releaseId"), "keepForever": body.keepForever,
                          "retention": verdict.to_json()})


@bp.route(route="api/releases/{releaseId:int}/abandon", methods=["POST"])
@api
def abandon_release(req: func.HttpRequest) -> func.HttpResponse:
    who = authorize(req, RELEASE_MANAGER, "abandon releases")
    body = release_schemas.parse(actions_schemas.AbandonIn, body_json(req) if req.get_body() else {})
    release = releases.abandon(bootstrap.deps(), route_int(req, "releaseId"), by=who.name, comment=body.comment)
    return json_response(_view(release))


@bp.route(route="api/releases/{releaseId:int}/stages/{stage}/deploy", methods=["POST"])
@api
def deploy_stage(req: func.HttpRequest) -> func.HttpResponse:
    """Deploy now; `{"reason": "rollback"}` marks an earlier release deployed again."""
    who = authorize(req, RELEASE_MANAGER, "deploy stages")
    body = release_schemas.parse(actions_schemas.DeployIn, body_json(req) if req.get_body() else {})
    release = releases.deploy_stage(bootstrap.deps(), route_int(req, "releaseId"), req.route_params["stage"],
                                    body, by=who.name, admin=who.has(ADMIN))
    return json_response(_view(release), 202)


@bp.route(route="api/releases/{releaseId:int}/stages/{stage}/gates/{kind}/ignore", methods=["POST"])
@api
def ignore_gate(req: func.HttpRequest) -> func.HttpResponse:
    """An admin lets the deployment past a running gate; the comment is required and audited."""
    who = authorize(req, ADMIN, "ignore gates")
    body = release_schemas.parse(actions_schemas.IgnoreGateIn, body_json(req))
    kind = req.route_params["kind"]
    if kind not in tuple(Kind):
        raise NotFound(f"no gate kind '{kind}' (pre or post)")
    release = releases.ignore_gate(bootstrap.deps(), route_int(req, "releaseId"), req.route_params["stage"],
                                   Kind(kind), who, body.comment)
    return json_response(_view(release))


@bp.route(route="api/releases/{releaseId:int}/stages/{stage}", methods=["GET"])
@api
def stage_preview(req: func.HttpRequest) -> func.HttpResponse:
    """When the stage deploys next and what it waits for (trigger, queue, approval, deferral, window)."""
    authorize(req, READER, "read releases")
    release = releases.get(bootstrap.deps(), route_int(req, "releaseId"))
    stage = req.route_params["stage"]
    if stage not in release.stages:
        raise NotFound(f"release {release.id} has no stage '{stage}'")
    return json_response(waiting_domain.preview(release, stage, bootstrap.deps().clock.now()))


@bp.route(route="api/releases/{releaseId:int}/events", methods=["GET"])
@api
def release_events(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, READER, "read releases")
    return json_response(page(releases.events(bootstrap.deps(), route_int(req, "releaseId")), None))


@bp.route(route="api/releases/{releaseId:int}/stages/{stage}/deployments/{attempt:int}/steps/{step:int}/log",
          methods=["GET"])
@api
def step_log(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, READER, "read logs")
    _, _, text = releases.step_log(bootstrap.deps(), route_int(req, "releaseId"), req.route_params["stage"],
                                   route_int(req, "attempt"), route_int(req, "step"))
    return func.HttpResponse(text, status_code=200, mimetype="text/plain", charset="utf-8")


@bp.route(route="api/releases/{releaseId:int}/logs", methods=["GET"])
@api
def release_logs(req: func.HttpRequest) -> func.HttpResponse:
    """Every step log of the release as one zip."""
    authorize(req, READER, "read logs")
    deps = bootstrap.deps()
    release = releases.get(deps, route_int(req, "releaseId"))
    disposition = f'attachment; filename="{log_archive.file_name(release)}"'
    return func.HttpResponse(log_archive.zip_of(deps, release), status_code=200, mimetype="application/zip",
                             headers={"Content-Disposition": disposition})


@bp.route(route="api/artifacts", methods=["POST"])
@api
def artifact_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """A build finished: register its version and release it where continuous deployment asks."""
    who = authorize(req, RELEASE_MANAGER, "register builds")
    hook = release_schemas.parse(release_schemas.ArtifactWebhookIn, body_json(req))
    created = releases.from_build(bootstrap.deps(), hook, by=who.name)
    return json_response({"source": hook.source, "version": hook.version,
                          "releases": [views_service.release_summary(r) for r in created]}, 201 if created else 200)


@bp.route(route="api/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Up, and which plugins failed to load (their step and signal types are refused at save)."""
    from shared import plugins

    registry = plugins.current()
    failed = [{"group": f.group, "name": f.name, "entryPoint": f.value, "reason": f.reason}
              for f in registry.failures]
    return json_response({"status": "ok", "plugins": {
        "steps": sorted(n for n, k in registry.steps.kinds.items() if not k.builtin),
        "signals": sorted(n for n, k in registry.signals.kinds.items() if not k.builtin), "failed": failed}})


@bp.route(route="api/openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    from shared.openapi import document

    return json_response(document())


"""Native build webhooks: a platform's own delivery becomes a registered build and its releases.

The routes are anonymous to Slipway's sign-in: each platform proves its delivery as it signs it (GitHub's
`X-Hub-Signature-256`). A delivery that fails the check is a 401 before its body is read, and nothing is stored.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import azure.functions as func

from functions.dashboard import page as dashboard_page
from functions.http import MAX_BODY, api, authorize, body_json, json_response, page
from functions.lazy import lazy
from functions.web.render import render
from shared import bootstrap
from shared.config import Settings
from shared.domain.access import READER, Principal, Unauthenticated
from shared.domain.build_hooks.signatures import basic_auth_valid, github_signature_valid, shared_token_valid
from shared.domain.errors import FieldError, Invalid

if TYPE_CHECKING:
    from shared.adapters import github_artifacts as github_artifacts_adapter
    from shared.services.build_hooks import acr as acr_hooks
    from shared.services.build_hooks import azure_devops as ado_hooks
    from shared.services.build_hooks import deliveries
    from shared.services.build_hooks import github as github_hooks
else:
    github_artifacts_adapter = lazy("shared.adapters.github_artifacts")
    acr_hooks = lazy("shared.services.build_hooks.acr")
    ado_hooks = lazy("shared.services.build_hooks.azure_devops")
    deliveries = lazy("shared.services.build_hooks.deliveries")
    github_hooks = lazy("shared.services.build_hooks.github")

bp = func.Blueprint()
DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
EVENT = re.compile(r"^[a-z_]{1,50}$")
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,300}$")


@functools.cache
def _github(settings: Settings) -> github_artifacts_adapter.GitHubArtifacts:
    return github_artifacts_adapter.GitHubArtifacts(settings)


@bp.route(route="api/hooks/github", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def github_hook(req: func.HttpRequest) -> func.HttpResponse:
    """A GitHub webhook delivery (content type `application/json`)."""
    deps = bootstrap.deps()
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY:  # GitHub caps payloads at 25 MB; no build event comes near this
        raise Invalid([FieldError("body", f"larger than {MAX_BODY} bytes")])
    if not github_signature_valid(deps.settings.github_webhook_secret, raw, req.headers.get("X-Hub-Signature-256")):
        raise Unauthenticated("the delivery's X-Hub-Signature-256 is missing or does not match the webhook secret")
    delivery = req.headers.get("X-GitHub-Delivery") or ""
    if not DELIVERY_ID.match(delivery):
        raise Invalid([FieldError("X-GitHub-Delivery", "the delivery's id is required (GitHub sends a GUID)")])
    event = req.headers.get("X-GitHub-Event") or ""
    if not EVENT.match(event):
        raise Invalid([FieldError("X-GitHub-Event", "the event's name is required")])
    try:
        status, answer = github_hooks.receive(deps, _github(deps.settings), deps.settings.github_token,
                                              github_hooks.Delivery(delivery, event, body_json(req)))
    except github_hooks.DownloadFailed as exc:
        return json_response({"delivery": delivery, "reason": str(exc)}, 502)
    return json_response(answer, status)


@bp.route(route="api/hooks/acr", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def acr_hook(req: func.HttpRequest) -> func.HttpResponse:
    """An Azure Container Registry webhook delivery. ACR does not sign deliveries; it sends the custom headers the
    webhook was configured with (learn.microsoft.com/azure/container-registry/container-registry-webhook: "Custom
    headers ... in key: value format"), so the webhook carries `X-Slipway-Webhook-Token: <secret>`."""
    deps = bootstrap.deps()
    if not shared_token_valid(deps.settings.acr_webhook_token, req.headers.get("X-Slipway-Webhook-Token")):
        raise Unauthenticated("the delivery's X-Slipway-Webhook-Token is missing or wrong")
    payload = body_json(req)
    delivery = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(delivery, str) or not DELIVERY_ID.match(delivery):
        raise Invalid([FieldError("id", "the event's id is required")])
    status, answer = acr_hooks.receive(deps, delivery, payload)
    return json_response(answer, status)


@bp.route(route="api/hooks/azure-devops", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def azure_devops_hook(req: func.HttpRequest) -> func.HttpResponse:
    """An Azure DevOps service hook delivery (Web Hooks consumer: `build.complete`, or Pipelines' "Run state
    changed" `ms.vss-pipelines.run-state-changed-event`), authenticated by basic
    authentication or the `X-Slipway-Webhook-Token` header (the subscription's "HTTP headers")."""
    deps = bootstrap.deps()
    settings = deps.settings
    if not (basic_auth_valid(settings.azure_devops_hook_user, settings.azure_devops_hook_password,
                             req.headers.get("Authorization"))
            or shared_token_valid(settings.azure_devops_hook_password, req.headers.get("X-Slipway-Webhook-Token"))):
        raise Unauthenticated("the delivery's basic authentication or X-Slipway-Webhook-Token is missing or wrong")
    payload = body_json(req)
    delivery = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(delivery, str) or not DELIVERY_ID.match(delivery):
        raise Invalid([FieldError("id", "the event's id is required")])
    try:
        status, answer = ado_hooks.receive(deps, delivery, payload)
    except ado_hooks.DownloadFailed as exc:
        return json_response({"delivery": delivery, "reason": str(exc)}, 502)
    return json_response(answer, status)


@bp.route(route="api/hooks/deliveries", methods=["GET"])
@api
def hook_deliveries(req: func.HttpRequest) -> func.HttpResponse:
    """The latest deliveries of one source (`github:{owner}/{repo}`), newest first, with what became of them."""
    authorize(req, READER, "read build deliveries")
    source = req.params.get("source") or ""
    if not SOURCE.match(source):
        raise Invalid([FieldError("source", "a source is required, e.g. github:contoso/tailspin")])
    return json_response(page(deliveries.recent(bootstrap.deps(), source), None))


@dashboard_page(r"builds/deliveries")
def deliveries_page(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    """Every source's latest deliveries (`?source=` one source's, all of them that are kept)."""
    deps = bootstrap.deps()
    source = req.params.get("source")
    if source:
        if not SOURCE.match(source):
            raise Invalid([FieldError("source", "not a source, e.g. github:contoso/tailspin")])
        lists = [(source, deliveries.recent(deps, source))]
    else:
        lists = deliveries.every_source(deps, 10)
    return render("build_deliveries.html", who=who, lists=lists)

"""The Azure DevOps-compatible Release REST surface, under `ado/{organization}/…`: what the official
`azure-devops` client (ReleaseClient 7.1), PowerShell modules and curl scripts call, answered by
Slipway (../shared/ado-samples/CLIENT.md says what they send and need).

Three routes take everything under `ado/`: the organization's `_apis` (location discovery, resource
areas), a project's `_apis` (the Release resources, dispatched here case-insensitively, as Azure
DevOps matches its routes) and anything else (an Azure DevOps-shaped 404). Every request is
authenticated first: `Authorization: Basic base64(user:PAT)` with a Slipway-issued personal access
token (the user part ignored, as Azure DevOps ignores it), or whatever the /api accepts
(`functions/identity.py`). Each call then needs the role its /api counterpart needs. The api-version is
read from `Accept` (or the query) only to refuse one above 7.1. Errors answer in Azure DevOps' shape.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func

from functions.http import KNOWN, body_json, decode_cursor, encode_cursor, status_of
from functions.identity import principal_of
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN, READER, RELEASE_MANAGER, Principal, Unauthenticated, require
from shared.domain.errors import FieldError, Invalid, NotFound
from shared.redaction import redact

if TYPE_CHECKING:
    from shared.services import access_tokens
    from shared.services import deps as deps_service
    from shared.services.ado_compat import actions, bodies, errors, locations, reads, refs, statuses
else:
    access_tokens = lazy("shared.services.access_tokens")
    actions = lazy("shared.services.ado_compat.actions")
    bodies = lazy("shared.services.ado_compat.bodies")
    errors = lazy("shared.services.ado_compat.errors")
    locations = lazy("shared.services.ado_compat.locations")
    reads = lazy("shared.services.ado_compat.reads")
    refs = lazy("shared.services.ado_compat.refs")
    statuses = lazy("shared.services.ado_compat.statuses")
    deps_service = lazy("shared.services.deps")

logger = logging.getLogger(__name__)
bp = func.Blueprint()
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_VERSION = (7, 1)
VERSION = re.compile(r"^(\d+)\.(\d+)(?:-preview(?:\.\d+)?)?$")
INT = "{int}"
MAX_ID = 2**53
"""Ids this surface issues stay below 2^53 (shared/services/ado_compat/ids.py)."""


class MethodNotAllowed(Exception):
    """The resource exists on this surface, but not with that method (HTTP 405)."""


@dataclass(frozen=True)
class Call:
    """One request on the surface: who, where, and the numbers its path names."""

    req: func.HttpRequest
    deps: deps_service.Deps
    who: Principal
    site: refs.Site
    ids: tuple[int, ...]


def ado(handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Answer Slipway's errors in Azure DevOps' shape, with the /api's statuses (an Idempotency-Key clash,
    422 there, cannot happen here: 400); anything unexpected is logged and answered 500 without details."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except MethodNotAllowed as exc:
            return _error(405, str(exc))
        except KNOWN as exc:
            status = status_of(exc)[0]
            return _error(400 if status == 422 else status, str(exc))
        except Exception:
            logger.exception("unexpected error in %s %s", req.method, redact(req.url))
            return _error(500, "Slipway could not complete the request; it was logged.")

    return wrapper


def _error(status: int, message: str) -> func.HttpResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Slipway"'} if status == 401 else None
    return _json(errors.wrapped(status, message), status, headers)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data), status_code=status, headers=headers, mimetype="application/json",
                             charset="utf-8")


def _listed(items: list[dict[str, Any]], cursor: Any = None) -> func.HttpResponse:
    headers = {"x-ms-continuationtoken": encode_cursor(cursor)} if cursor else None
    return _json({"count": len(items), "value": items}, headers=headers)


# -- who, where, which version


def caller(req: func.HttpRequest, deps: deps_service.Deps) -> Principal:
    scheme, _, credentials = str(req.headers.get("Authorization") or "").partition(" ")
    if scheme.casefold() != "basic":
        return principal_of(req, deps.settings, keys=deps.function_keys)
    try:
        pair = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("the Basic credentials are not base64 of user:token") from None
    _, colon, token = pair.partition(":")
    return access_tokens.principal(deps, token if colon else pair)


def _site(req: func.HttpRequest) -> refs.Site:
    parts = urlsplit(req.url)
    project = str(req.route_params.get("project") or "")
    # ASP.NET routing decodes a path segment except its %2F (which the client sends for a '/')
    project = project.replace("%2F", "/").replace("%2f", "/")
    return refs.Site(f"{parts.scheme}://{parts.netloc}", str(req.route_params.get("organization") or ""), project)


def _check_version(req: func.HttpRequest) -> None:
    """api-version from `Accept` (what the official client sends) or the query; only 7.1 and below."""
    accept = str(req.headers.get("Accept") or "")
    found = re.search(r"api-version=([^;,\s]+)", accept)
    version = found[1] if found else req.params.get("api-version")
    if not version:
        return
    parsed = VERSION.match(version)
    if parsed is None:
        raise Invalid([FieldError("api-version", f"'{version[:40]}' is not an API version such as 7.1-preview.8")])
    if (int(parsed[1]), int(parsed[2])) > MAX_VERSION:
        raise Invalid([FieldError("api-version", f"{version} is out of range: the latest this server answers "
                                                 "is 7.1")])


def _call(req: func.HttpRequest, numbers: tuple[int, ...] = ()) -> Call:
    deps = bootstrap.deps()
    who = caller(req, deps)
    _check_version(req)
    return Call(req, deps, who, _site(req), numbers)


# -- the routes


@bp.route(route="ado/{organization}/_apis/{*rest}", methods=METHODS)
@ado
def ado_organization(req: func.HttpRequest) -> func.HttpResponse:
    """Location discovery (`OPTIONS _apis`) and the resource areas `Connection` looks the Release area up in."""
    call = _call(req)
    path = [p.casefold() for p in str(req.route_params.get("rest") or "").split("/") if p]
    if not path:
        if req.method != "OPTIONS":
            raise MethodNotAllowed(f"{req.method} _apis: only OPTIONS (location discovery)")
        found = locations.locations()
        return _json({"count": len(found), "value": found})
    if path[0] == "resourceareas" and len(path) <= 2:
        if req.method != "GET":
            raise MethodNotAllowed(f"{req.method} _apis/ResourceAreas: only GET")
        area = locations.release_area(call.site.base + "/")
        if len(path) == 1:
            return _json({"count": 1, "value": [area]})
        if path[1] == locations.RELEASE_AREA:
            return _json(area)
        raise NotFound(f"Slipway serves only the Release resource area ({locations.RELEASE_AREA})")
    raise NotFound(f"Slipway does not serve _apis/{'/'.join(path)}")


@bp.route(route="ado/{organization}/{project}/_apis/{*rest}", methods=METHODS)
@ado
def ado_project(req: func.HttpRequest) -> func.HttpResponse:
    """The Release resources of a project (any project name is accepted, and echoed)."""
    call = _call(req)
    path = [p for p in str(req.route_params.get("rest") or "").split("/") if p]
    if not path or path[0].casefold() != "release":
        raise NotFound(f"Slipway serves the Release area only, not _apis/{'/'.join(path)}")
    for template, handlers in ROUTES:
        numbers = _match(template, path[1:])
        if numbers is None:
            continue
        handler = handlers.get(req.method or "")
        if handler is None:
            raise MethodNotAllowed(f"{req.method} {'/'.join(path)} is not supported here "
                                   f"(only {', '.join(handlers)}): use Slipway's own API for the rest")
        return handler(Call(req, call.deps, call.who, call.site, numbers))
    raise NotFound(f"Slipway does not serve _apis/{'/'.join(path)}")


@bp.route(route="ado/{*path}", methods=METHODS)
@ado
def ado_elsewhere(req: func.HttpRequest) -> func.HttpResponse:
    """Anything else under ado/: Azure DevOps' clients call `{organization}/_apis` and `{project}/_apis`."""
    _call(req)
    raise NotFound("not an Azure DevOps API path: use ado/{organization}/{project}/_apis/Release/...")


def _match(template: tuple[str, ...], path: list[str]) -> tuple[int, ...] | None:
    if len(template) != len(path):
        return None
    numbers = []
    for want, got in zip(template, path, strict=True):
        if want == INT:
            if not got.isdigit() or not got.isascii() or len(got) > 16 or int(got) >= MAX_ID:
                return None
            numbers.append(int(got))
        elif want != got.casefold():
            return None
    return tuple(numbers)


# -- query parameters


def _int(call: Call, *names: str, default: int | None = None, high: int = 2**31 - 1) -> int | None:
    name = next((n for n in names if call.req.params.get(n) not in (None, "")), None)
    if name is None:
        return default
    raw = str(call.req.params[name])
    if not raw.isdigit() or len(raw) > 16 or not 1 <= int(raw) <= high:
        raise Invalid([FieldError(name, f"must be an integer from 1 to {high}")])
    return int(raw)


def _bool(call: Call, name: str) -> bool:
    raw = str(call.req.params.get(name) or "false").casefold()
    if raw not in ("true", "false"):
        raise Invalid([FieldError(name, "must be true or false")])
    return raw == "true"


def _top(call: Call) -> int:
    return _int(call, "$top", "top", default=50, high=100) or 50


def _cursor(call: Call) -> dict[str, str] | None:
    """A continuation token this surface issued (an Azure DevOps number, which only starts a list, reads
    from the start)."""
    raw = str(call.req.params.get("continuationToken") or "")
    if not raw or raw.isdigit():
        return None
    return decode_cursor(raw)


def _expands(call: Call, what: str) -> bool:
    return what in str(call.req.params.get("$expand") or "").casefold()


def _body(call: Call, model: type[bodies.M]) -> bodies.M:
    return bodies.parse(model, body_json(call.req))


# -- definitions and releases


def list_definitions(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read definitions")
    items, nxt = reads.definitions_page(call.deps, call.site, search=call.req.params.get("searchText") or None,
                                        exact=_bool(call, "isExactNameMatch"), top=_top(call), cursor=_cursor(call),
                                        expand=_expands(call, "environments"))
    return _listed(items, nxt)


def get_definition(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read definitions")
    return _json(reads.definition(call.deps, call.site, call.ids[0]))


RELEASE_STATUSES = {"active": "active", "abandoned": "abandoned", "undefined": None}


def list_releases(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    raw = (call.req.params.get("statusFilter") or "undefined").casefold()
    if raw == "draft":
        return _listed([])  # Slipway has no drafts
    if raw not in RELEASE_STATUSES:
        raise Invalid([FieldError("statusFilter", "must be active, abandoned, draft or undefined")])
    items, nxt = reads.releases_page(call.deps, call.site, definition_id=_int(call, "definitionId"),
                                     status=RELEASE_STATUSES[raw], search=call.req.params.get("searchText") or None,
                                     top=_top(call), cursor=_cursor(call), expand=_expands(call, "environments"))
    return _listed(items, nxt)


def create_release(call: Call) -> func.HttpResponse:
    require(call.who, RELEASE_MANAGER, "create releases")
    body = _body(call, bodies.ReleaseStartIn)
    return _json(actions.create_release(call.deps, call.site, body, call.who))


def get_release(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    return _json(reads.release(call.deps, call.site, call.ids[0]))


def get_environment(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    return _json(reads.environment(call.deps, call.site, *call.ids))


def update_environment(call: Call) -> func.HttpResponse:
    """`status: inProgress` deploys the stage (answered as Azure DevOps does: the environment, queued or
    in progress)."""
    require(call.who, RELEASE_MANAGER, "deploy stages")
    body = _body(call, bodies.EnvironmentUpdateIn)
    return _json(actions.deploy_environment(call.deps, call.site, call.ids[0], call.ids[1], body, call.who))


# -- approvals, gates, manual interventions


def list_approvals(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read approvals")
    status = (call.req.params.get("statusFilter") or "pending").casefold()
    known = {s.casefold(): s for s in statuses.APPROVAL_FILTER}
    if status not in known and status not in ("all", "undefined"):
        raise Invalid([FieldError("statusFilter", f"must be one of {', '.join(sorted(statuses.APPROVAL_FILTER))}")])
    kind = (call.req.params.get("typeFilter") or "all").casefold()
    if kind not in ("predeploy", "postdeploy", "all", "undefined"):
        raise Invalid([FieldError("typeFilter", "must be preDeploy, postDeploy or all")])
    raw_ids = [i.strip() for i in str(call.req.params.get("releaseIdsFilter") or "").split(",") if i.strip()]
    if any(not i.isdigit() or len(i) > 10 or not 1 <= int(i) < 2**31 for i in raw_ids) or len(raw_ids) > 50:
        raise Invalid([FieldError("releaseIdsFilter", "release ids separated by commas (at most 50)")])
    found = reads.approvals(call.deps, call.site, call.who,
                            assigned_to=call.req.params.get("assignedToFilter") or None,
                            status=known.get(status, "all"), release_ids=[int(i) for i in raw_ids],
                            kind={"predeploy": "preDeploy", "postdeploy": "postDeploy"}.get(kind),
                            top=_int(call, "top", "$top", default=50, high=100) or 50,
                            my_groups=_bool(call, "includeMyGroupApprovals"))
    return _listed(found)


def get_approval(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read approvals")
    return _json(reads.approval(*reads.approval_parts(call.deps, call.site, call.ids[0])))


def update_approval(call: Call) -> func.HttpResponse:
    """Approve, reject or reassign as the caller (its eligibility is the approval's rules, as on /api)."""
    require(call.who, READER, "decide approvals")
    body = _body(call, bodies.ApprovalUpdateIn)
    return _json(actions.update_approval(call.deps, call.site, call.ids[0], body, call.who))


def update_gate(call: Call) -> func.HttpResponse:
    require(call.who, ADMIN, "ignore gates")
    body = _body(call, bodies.GateUpdateIn)
    return _json(actions.update_gate(call.deps, call.site, call.ids[0], body, call.who))


def list_interventions(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    return _listed(reads.interventions(call.deps, call.site, call.ids[0]))


def get_intervention(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    return _json(reads.intervention_view(*reads.intervention_parts(call.deps, call.site, *call.ids)))


def update_intervention(call: Call) -> func.HttpResponse:
    require(call.who, READER, "decide manual interventions")
    body = _body(call, bodies.InterventionUpdateIn)
    return _json(actions.update_intervention(call.deps, call.site, call.ids[0], call.ids[1], body, call.who))


# -- deployments and logs


def list_deployments(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read releases")
    names = {n.strip().casefold() for n in str(call.req.params.get("deploymentStatus") or "").split(",") if n.strip()}
    known = {s.casefold(): s for s in statuses.DEPLOYMENT_FILTER}
    if names - set(known) - {"all", "undefined"}:
        raise Invalid([FieldError("deploymentStatus", f"must name {', '.join(sorted(statuses.DEPLOYMENT_FILTER))} "
                                                      "or all")])
    wanted = None if not names or names & {"all", "undefined"} else {known[n] for n in names}
    found = reads.deployments(call.deps, call.site, definition_id=_int(call, "definitionId"),
                              environment_id=_int(call, "definitionEnvironmentId", high=MAX_ID - 1),
                              status=wanted, latest_only=_bool(call, "latestAttemptsOnly"), top=_top(call))
    return _listed(found)


def release_logs(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read logs")
    archive, name = reads.logs(call.deps, call.ids[0])
    return func.HttpResponse(archive, status_code=200, mimetype="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def task_log(call: Call) -> func.HttpResponse:
    require(call.who, READER, "read logs")
    release, environment, phase, task = call.ids
    text = reads.task_log(call.deps, call.site, release, environment, phase, task,
                          start=_int(call, "startLine"), end=_int(call, "endLine"))
    return func.HttpResponse(text, status_code=200, mimetype="text/plain", charset="utf-8")


ROUTES: list[tuple[tuple[str, ...], dict[str, Callable[[Call], func.HttpResponse]]]] = [
    (("definitions",), {"GET": list_definitions}),
    (("definitions", INT), {"GET": get_definition}),
    (("releases",), {"GET": list_releases, "POST": create_release}),
    (("releases", INT), {"GET": get_release}),
    (("releases", INT, "environments", INT), {"GET": get_environment, "PATCH": update_environment}),
    (("releases", INT, "environments", INT, "deployphases", INT, "tasks", INT, "logs"), {"GET": task_log}),
    (("releases", INT, "logs"), {"GET": release_logs}),
    (("releases", INT, "manualinterventions"), {"GET": list_interventions}),
    (("releases", INT, "manualinterventions", INT), {"GET": get_intervention, "PATCH": update_intervention}),
    (("approvals",), {"GET": list_approvals}),
    (("approvals", INT), {"GET": get_approval, "PATCH": update_approval}),
    (("deployments",), {"GET": list_deployments}),
    (("gates", INT), {"PATCH": update_gate}),
]
"""Paths under `_apis/Release/` (compared without case, as Azure DevOps' routing does) and their methods."""

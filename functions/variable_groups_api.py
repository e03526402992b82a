"""HTTP API: variable groups, shared by definitions (admins change them, readers read them; a value
that is a Key Vault reference is a reference, never a secret's value)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import azure.functions as func

from functions.http import api, authorize, body_json, json_response, page
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN, READER
from shared.domain.errors import PreconditionRequired

if TYPE_CHECKING:
    from shared.services import definitions, variable_groups
else:
    definitions = lazy("shared.services.definitions")
    variable_groups = lazy("shared.services.variable_groups")

bp = func.Blueprint()


def _with_etag(body: dict[str, Any], etag: str, status: int = 200) -> func.HttpResponse:
    return json_response(body, status, headers={"ETag": etag})


@bp.route(route="api/variable-groups", methods=["GET", "POST"])
@api
def variable_groups_collection(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    if req.method == "POST":
        who = authorize(req, ADMIN, "create variable groups")
        created, etag = variable_groups.put(deps, body_json(req), by=who.name)
        resp = _with_etag(created, etag, 201)
        resp.headers["Location"] = f"/api/variable-groups/{quote(created['name'], safe='')}"
        return resp
    authorize(req, READER, "read variable groups")
    return json_response(page(variable_groups.listed(deps), None))


@bp.route(route="api/variable-groups/{name}", methods=["GET", "PUT", "DELETE"])
@api
def variable_group_item(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    name = req.route_params.get("name", "")
    if req.method == "GET":
        authorize(req, READER, "read variable groups")
        return _with_etag(*variable_groups.get(deps, name))
    who = authorize(req, ADMIN, "change variable groups")
    if_match = req.headers.get("If-Match")
    if not if_match:
        raise PreconditionRequired("send If-Match with the group's ETag (from GET /variable-groups/{name})")
    if req.method == "PUT":
        return _with_etag(*variable_groups.put(deps, body_json(req), by=who.name, name=name, if_match=if_match))
    users = [f"definition {d['id']} ({d['name']})" for d in _all_definitions(deps)
             if any(g.casefold() == name.casefold() for _, g in variable_groups.linked(d))]
    variable_groups.delete(deps, name, if_match=if_match, linked_by=users)
    return func.HttpResponse(status_code=204)


def _all_definitions(deps: Any) -> list[dict[str, Any]]:
    items, cursor = definitions.list_page(deps, cursor=None, limit=200)
    found = [definitions.get(deps, int(i["id"])) for i in items]
    while cursor:
        items, cursor = definitions.list_page(deps, cursor=cursor, limit=200)
        found += [definitions.get(deps, int(i["id"])) for i in items]
    return found

"""HTTP API: personal access tokens for the Azure DevOps-compatible surface (admins issue, list, revoke).

A token is answered once, when it is issued (`Cache-Control: no-store`); lists never show it nor its hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api, authorize, body_json, json_response, page
from functions.lazy import lazy
from shared import bootstrap
from shared.domain.access import ADMIN

if TYPE_CHECKING:
    from shared.schemas import access_token as access_token_schemas
    from shared.schemas import release as release_schemas
    from shared.services import access_tokens
else:
    access_token_schemas = lazy("shared.schemas.access_token")
    release_schemas = lazy("shared.schemas.release")
    access_tokens = lazy("shared.services.access_tokens")

bp = func.Blueprint()


@bp.route(route="api/tokens", methods=["GET", "POST"])
@api
def tokens_collection(req: func.HttpRequest) -> func.HttpResponse:
    deps = bootstrap.deps()
    if req.method == "POST":
        who = authorize(req, ADMIN, "issue access tokens")
        asked = release_schemas.parse(access_token_schemas.AccessTokenIn, body_json(req))
        record, token = access_tokens.issue(deps, asked, by=who.name)
        return json_response({**record, "token": token}, 201,
                             headers={"Location": f"/api/tokens/{record['id']}", "Cache-Control": "no-store"})
    authorize(req, ADMIN, "list access tokens")
    return json_response(page(access_tokens.listed(deps), None))


@bp.route(route="api/tokens/{tokenId}", methods=["DELETE"])
@api
def revoke_token(req: func.HttpRequest) -> func.HttpResponse:
    """Revoke a token: the next call with it is refused (401); its record stays, marked revoked."""
    who = authorize(req, ADMIN, "revoke access tokens")
    access_tokens.revoke(bootstrap.deps(), req.route_params.get("tokenId", ""), by=who.name)
    return func.HttpResponse(status_code=204)

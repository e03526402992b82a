"""The URL an http-request step gives the service it calls, to post its result to (anonymous to the
host and to Slipway's sign-in: the single-use token in the URL is the credential)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api, body_json, json_response, problem
from functions.lazy import lazy
from shared import bootstrap

if TYPE_CHECKING:
    from shared.schemas import callback as callback_schemas
    from shared.schemas import release as release_schemas
    from shared.services import callbacks
else:
    callback_schemas = lazy("shared.schemas.callback")
    release_schemas = lazy("shared.schemas.release")
    callbacks = lazy("shared.services.callbacks")

bp = func.Blueprint()


@bp.route(route="api/callbacks/{token}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def step_callback(req: func.HttpRequest) -> func.HttpResponse:
    """A called service posts its result, once."""
    token = req.route_params.get("token", "")
    if not 20 <= len(token) <= 100:
        return problem(404, "Not found", "no such callback")
    raw = body_json(req)
    body = release_schemas.parse(callback_schemas.CallbackIn, raw)
    try:
        became = callbacks.receive(bootstrap.deps(), token, raw, body)
    except callbacks.Gone as exc:
        return problem(410, "Gone", str(exc))
    return json_response({"accepted": True, "step": became})

"""HTTP plumbing shared by the API functions: JSON in and out, RFC 7807 problems, paging, who calls.

Every domain error maps to a 4xx problem naming the field; anything unexpected is logged and
answered with a generic 500 problem that carries no stack trace.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from functions.identity import principal_of
from shared import bootstrap
from shared.domain.access import Forbidden, Principal, Unauthenticated, require
from shared.domain.errors import (
    Conflict,
    FieldError,
    Invalid,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from shared.redaction import redact

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
MAX_BODY = 1024 * 1024


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data, indent=None), status_code=status, headers=headers,
                             mimetype="application/json", charset="utf-8")


def problem(status: int, title: str, detail: str, errors: list[FieldError] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=PROBLEM, charset="utf-8")


ANSWERS: dict[type[Exception], tuple[int, str]] = {
    Invalid: (400, "Invalid request"),
    Unauthenticated: (401, "Unauthenticated"),
    Forbidden: (403, "Forbidden"),
    NotFound: (404, "Not found"),
    Conflict: (409, "Conflict"),
    PreconditionFailed: (412, "Precondition failed"),
    PreconditionRequired: (428, "Precondition required"),
    Unprocessable: (422, "Unprocessable request"),
}
"""How each domain error is answered."""
KNOWN = tuple(ANSWERS)


def status_of(exc: Exception) -> tuple[int, str]:
    return next(answer for kind, answer in ANSWERS.items() if isinstance(exc, kind))


def problem_for(exc: Exception) -> func.HttpResponse:
    status, title = status_of(exc)
    return problem(status, title, str(exc), exc.errors if isinstance(exc, Invalid | Unprocessable) else None)


def api(handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Map domain errors to problems. Keeps the function's signature (the worker inspects it)."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except KNOWN as exc:
            return problem_for(exc)
        except Exception:
            logger.exception("unexpected error in %s %s", req.method, redact(req.url))
            return problem(500, "Internal error", "Slipway could not complete the request; it was logged.")

    return wrapper


MAX_DEPTH = 32
"""Deeper than any body Slipway accepts (a definition is 7 levels deep); a deeper one is refused
before it is parsed, so that no recursion limit is ever hit."""


def body_json(req: func.HttpRequest) -> Any:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY:
        raise Invalid([FieldError("body", f"larger than {MAX_BODY} bytes")])
    if not raw.strip():
        raise Invalid([FieldError("body", "a JSON body is required")])
    if nesting(raw) > MAX_DEPTH:
        raise Invalid([FieldError("body", f"nested deeper than {MAX_DEPTH} levels")])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid([FieldError("body", f"not valid JSON: {str(exc)[:200]}")]) from None


def nesting(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text go (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def int_param(req: func.HttpRequest, name: str, default: int | None = None, *, low: int = 1,
              high: int = 2**31 - 1) -> int | None:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid([FieldError(name, "must be an integer")]) from None
    if not low <= value <= high:
        raise Invalid([FieldError(name, f"must be between {low} and {high}")])
    return value


def bool_param(req: func.HttpRequest, name: str) -> bool:
    """`true` or `false` (any case; absent is false): anything else is a 400 naming the parameter."""
    raw = (req.params.get(name) or "false").lower()
    if raw not in ("true", "false"):
        raise Invalid([FieldError(name, "must be true or false")])
    return raw == "true"


def route_int(req: func.HttpRequest, name: str) -> int:
    try:
        return int(req.route_params[name])
    except (KeyError, ValueError):
        raise NotFound(f"no such {name}") from None


def cursor_param(req: func.HttpRequest) -> dict[str, str] | None:
    raw = req.params.get("continuationToken")
    return decode_cursor(raw) if raw else None


def decode_cursor(raw: str) -> dict[str, str]:
    """A continuation token this app issued (`encode_cursor`), or a 400 naming `continuationToken`."""
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise Invalid([FieldError("continuationToken", "not a token this API issued")])


def encode_cursor(cursor: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def page(items: list[Any], cursor: Any) -> dict[str, Any]:
    return {"count": len(items), "value": items, "continuationToken": encode_cursor(cursor) if cursor else None}


def authorize(req: func.HttpRequest, role: str, action: str) -> Principal:
    """Who is asking, refused (401/403) unless they hold `role`."""
    deps = bootstrap.deps()
    who = principal_of(req, deps.settings, keys=deps.function_keys)
    require(who, role, action)
    return who

"""Who is calling: App Service authentication's principal, a function key, or the local stack's
development identity.

In Azure, App Service authentication (Easy Auth) validates the caller's sign-in or Entra bearer
token and passes the principal in `X-MS-CLIENT-PRINCIPAL` (base64 JSON with the name, roles and
groups claims); it strips those headers from outside requests, so they can be trusted. A request
with a function key and no principal is automation. In `development` mode (the local stack only)
a request without a principal acts as the configured development identity, clearly named so.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import azure.functions as func

from shared.config import Settings
from shared.domain.access import ADMIN, READER, RELEASE_MANAGER, Principal, Unauthenticated, grant

ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
GROUP_CLAIMS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
NAME_CLAIMS = ("preferred_username", "upn", "email", "name",
               "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
               "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")


def principal_of(req: func.HttpRequest, settings: Settings, *, keys_checked: bool = True) -> Principal:
    """`keys_checked`: the route's auth level makes the host check function keys. The dashboard's
    routes are anonymous (a browser has no key), so there a key header proves nothing."""
    grants = {ADMIN: settings.admins.split(","), RELEASE_MANAGER: settings.release_managers.split(","),
              READER: settings.readers.split(",")}
    header = req.headers.get("X-MS-CLIENT-PRINCIPAL")
    if header:
        name, groups, claimed = _decode(header, req.headers.get("X-MS-CLIENT-PRINCIPAL-NAME"))
        return Principal(name, groups, grant(name, groups, claimed, grants), "user")
    if keys_checked and (req.headers.get("x-functions-key") or req.params.get("code")):
        roles = frozenset(r.strip() for r in settings.key_roles.split(",") if r.strip())
        return Principal("automation (function key)", frozenset(), roles, "automation")
    if settings.auth_mode == "development":
        name = settings.dev_identity
        return Principal(name, frozenset(), grant(name, frozenset(), {"Slipway.Admin"}, grants), "development")
    raise Unauthenticated("sign in (App Service authentication) or call with a function key")


def _decode(header: str, name_header: str | None) -> tuple[str, frozenset[str], set[str]]:
    try:
        data: dict[str, Any] = json.loads(base64.b64decode(header, validate=False))
        claims = data.get("claims") or []
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is not a valid principal") from None
    role_typ, name_typ = data.get("role_typ"), data.get("name_typ")
    by_type: dict[str, list[str]] = {}
    for claim in claims:
        if isinstance(claim, dict):
            by_type.setdefault(str(claim.get("typ")), []).append(str(claim.get("val")))
    name = name_header or next((by_type[t][0] for t in (name_typ, *NAME_CLAIMS) if t and by_type.get(t)), "")
    if not name:
        raise Unauthenticated("the principal has no name claim")
    roles = {v for t in (role_typ, *ROLE_CLAIMS) if t for v in by_type.get(t, [])}
    groups = frozenset(v for t in GROUP_CLAIMS for v in by_type.get(t, []))
    return name, groups, roles


def encode_principal(name: str, roles: list[str] | None = None, groups: list[str] | None = None) -> str:
    """The header value App Service authentication would send (for tests and local tools)."""
    claims = [{"typ": "name", "val": name}, *({"typ": "roles", "val": r} for r in roles or []),
              *({"typ": "groups", "val": g} for g in groups or [])]
    body = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(body).encode()).decode()

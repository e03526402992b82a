"""Who is calling: App Service authentication's principal, a function key, or, on the local stack
only, the development identity or whoever a developer chose to act as.

- **App Service authentication** (Easy Auth) validates a browser's sign-in or an Entra bearer token
  (a pipeline's workload identity) and passes the claims in `X-MS-CLIENT-PRINCIPAL`. The platform
  strips that header from outside requests, so it is trusted only when authentication is on
  (`WEBSITE_AUTH_ENABLED=true`, the same test the Functions host makes in
  azure-functions-host `AuthenticationLevelHandler.cs`); otherwise it is a forgery and answers 401.
  Its shape is the documented one (learn.microsoft.com, "Work with user identities in Azure App
  Service authentication": `auth_typ`, `claims` of `{typ, val}`, `name_typ`, `role_typ`); anything
  else is a 401. The person is their user principal name (`upn`, else `preferred_username`), never
  the display name (`name`) nor `X-MS-CLIENT-PRINCIPAL-NAME`; an app-only token is automation named
  by its application id. Roles come only from the roles claim types.
- **Function keys** (automation without Entra): the API's routes are anonymous to the host, so
  that an Entra token alone is enough (the host never waives keys for Easy Auth callers); a key is
  therefore checked here, against this app's host keys read through ARM (`FunctionKeysPort`).
  The dashboard's and mail links' pages never accept keys: they are for people.
- **Development mode** (the local stack): without a principal the caller is the configured
  development identity, or whoever the dashboard's "acting as" switch (a cookie) or the CLI's
  `--as` (a header) names. Both are refused outside development mode.
"""

from __future__ import annotations

import base64
import binascii
import json
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from shared.config import Settings
from shared.domain.access import ADMIN, APP_ROLES, READER, RELEASE_MANAGER, Principal, Unauthenticated, grant

if TYPE_CHECKING:
    from shared.ports import FunctionKeysPort

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
ACTING_AS_HEADER = "X-Slipway-Acting-As"
ACTING_AS_COOKIE = "slipway-acting-as"
MAX_PRINCIPAL = 64 * 1024
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
GROUP_CLAIMS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
USER_NAME_CLAIMS = ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "preferred_username")
"""The sign-in name, in order: the UPN the tenant assigns, then v2's preferred_username. Never the
display name: anyone may be able to set it (learn.microsoft.com, "ID token claims reference")."""
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
APP_ID_CLAIMS = ("appid", "azp")
OVERAGE_CLAIMS = ("_claim_names", "_claim_sources", "hasgroups")
"""Entra leaves the groups claim out past 200 groups (150 in SAML) and says so with these."""


class Request(Protocol):
    """What identity needs of a request (azure.functions.HttpRequest has it)."""

    @property
    def headers(self) -> Any: ...

    @property
    def params(self) -> Any: ...


def principal_of(req: Request, settings: Settings, *, keys: FunctionKeysPort | None = None) -> Principal:
    """The caller. `keys` checks function keys (API routes); pages for people pass None."""
    header = req.headers.get(PRINCIPAL_HEADER)
    if header is not None:
        if not settings.easy_auth:
            raise Unauthenticated(f"{PRINCIPAL_HEADER} is only accepted from App Service authentication, "
                                  "which is off: sign in or call with a key")
        return easy_auth_principal(header, settings)
    key = req.headers.get("x-functions-key") or req.params.get("code")
    if key and keys is not None:
        name = keys.verify(key)
        if name is None:
            raise Unauthenticated("the function key is not one of this app's host keys")
        roles = frozenset(r.strip() for r in settings.key_roles.split(",") if r.strip())
        return Principal(f"automation (function key '{name}')", frozenset(), roles, "automation")
    acting = req.headers.get(ACTING_AS_HEADER) or _cookie(req, ACTING_AS_COOKIE)
    if settings.auth_mode == "development":
        if acting:
            return acting_as(acting, settings)
        name = settings.dev_identity
        return Principal(name, frozenset(), grant(name, frozenset(), {"Slipway.Admin"}, _grants(settings)),
                         "development")
    if acting:
        raise Unauthenticated("acting as someone else is for the local stack's development mode only")
    raise Unauthenticated("sign in (App Service authentication), send an Entra token, or call with a function key")


def presented_nothing(req: Request) -> bool:
    """Did a person's request come with no identity at all (no principal, no acting-as)? Such a
    browser is sent to sign in; one that presented something wrong is told why instead."""
    return not (req.headers.get(PRINCIPAL_HEADER) is not None or req.headers.get(ACTING_AS_HEADER)
                or _cookie(req, ACTING_AS_COOKIE))


def _grants(settings: Settings) -> dict[str, list[str]]:
    return {ADMIN: settings.admins.split(","), RELEASE_MANAGER: settings.release_managers.split(","),
            READER: settings.readers.split(",")}


def group_names(settings: Settings) -> dict[str, str]:
    """Object id (lower case) → the names `SLIPWAY_GROUP_IDS` gives it."""
    out: dict[str, str] = {}
    for pair in settings.group_ids.split(","):
        name, _, oid = pair.partition("=")
        if name.strip() and oid.strip():
            out[oid.strip().lower()] = name.strip()
    return out


def _with_names(groups: set[str], settings: Settings) -> frozenset[str]:
    names = group_names(settings)
    return frozenset(groups | {names[g.lower()] for g in groups if g.lower() in names})


def easy_auth_principal(header: str, settings: Settings) -> Principal:
    claims = _claims(header)
    by_type: dict[str, list[str]] = {}
    for typ, val in claims:
        by_type.setdefault(typ, []).append(val)

    def first(types: tuple[str, ...]) -> str:
        return next((by_type[t][0] for t in types if by_type.get(t) and by_type[t][0].strip()), "").strip()

    claimed = {v for t in ROLE_CLAIMS for v in by_type.get(t, [])}
    groups = _with_names({v for t in GROUP_CLAIMS for v in by_type.get(t, [])}, settings)
    complete = not any(t in by_type for t in OVERAGE_CLAIMS)
    oid = first(OBJECT_ID_CLAIMS)
    user = first(USER_NAME_CLAIMS)
    if user:
        return Principal(user, groups, grant(user, groups, claimed, _grants(settings)), "user", oid, complete)
    app = first(APP_ID_CLAIMS)
    if app:
        name = f"app:{app}"
        return Principal(name, groups, grant(name, groups, claimed, _grants(settings)), "automation", oid, complete)
    raise Unauthenticated(f"the {PRINCIPAL_HEADER} principal names no user (upn, preferred_username) or app (appid)")


def _claims(header: str) -> list[tuple[str, str]]:
    """The claims of a principal header, or Unauthenticated for anything but the documented shape."""
    bad = Unauthenticated(f"{PRINCIPAL_HEADER} is not a valid principal")
    if len(header) > MAX_PRINCIPAL:
        raise bad
    try:
        data = json.loads(base64.b64decode(header.strip(), validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise bad
    out = []
    for claim in data["claims"]:
        if not isinstance(claim, dict) or not isinstance(claim.get("typ"), str) or not isinstance(claim.get("val"),
                                                                                                    str):
            raise bad
        out.append((claim["typ"], claim["val"]))
    for key in ("auth_typ", "name_typ", "role_typ"):
        if key in data and not isinstance(data[key], str | None):
            raise bad
    return out


def encode_principal(name: str, roles: list[str] | None = None, groups: list[str] | None = None, *,
                     object_id: str = "", display_name: str = "", app_id: str = "") -> str:
    """The header App Service authentication sends for a Microsoft Entra sign-in (tests, local tools).
    `app_id` without `name` is an app-only token (a pipeline's workload identity)."""
    claims = [{"typ": "name", "val": display_name or name or app_id}]
    if name:
        claims.append({"typ": "preferred_username", "val": name})
        claims.append({"typ": USER_NAME_CLAIMS[0], "val": name})
    if app_id:
        claims.append({"typ": "appid", "val": app_id})
    if object_id:
        claims.append({"typ": OBJECT_ID_CLAIMS[0], "val": object_id})
    claims += [*({"typ": "roles", "val": r} for r in roles or []), *({"typ": "groups", "val": g} for g in groups or [])]
    body = {"auth_typ": "aad", "claims": claims,
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": ROLE_CLAIMS[1]}
    return base64.b64encode(json.dumps(body).encode()).decode()


# -- development mode: act as anyone, visibly


def acting_as(value: str, settings: Settings) -> Principal:
    """`name[; roles=Slipway.Admin,…][; groups=a,b]`: who a developer acts as on the local stack."""
    name, roles, groups = parse_acting_as(value)
    grouped = _with_names(set(groups), settings)
    return Principal(name, grouped, grant(name, grouped, set(roles), _grants(settings)), "development")


def parse_acting_as(value: str) -> tuple[str, list[str], list[str]]:
    parts = [p.strip() for p in unquote(value).split(";")]
    name = parts[0]
    if not 1 <= len(name) <= 256 or any(not ch.isprintable() for ch in name):
        raise Unauthenticated("acting as: a sign-in name of 1 to 256 printable characters")
    roles: list[str] = []
    groups: list[str] = []
    for part in parts[1:]:
        key, _, values = part.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if key.strip() == "roles" and all(r in APP_ROLES for r in items):
            roles = items
        elif key.strip() == "groups" and all(len(g) <= 256 for g in items):
            groups = items
        elif part:
            raise Unauthenticated(f"acting as: '{part}' is neither roles=… ({', '.join(APP_ROLES)}) nor groups=…")
    return name, roles, groups


def format_acting_as(name: str, roles: list[str], groups: list[str]) -> str:
    text = name
    if roles:
        text += "; roles=" + ",".join(roles)
    if groups:
        text += "; groups=" + ",".join(groups)
    return text


def _cookie(req: Request, name: str) -> str | None:
    raw = req.headers.get("Cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None

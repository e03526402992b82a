"""App Service authentication (Easy Auth) in front of the local host, and a local stand-in for
Microsoft Entra ID that signs its tokens. Used when the local host runs with
`WEBSITE_AUTH_ENABLED=true`, so that Slipway's `appservice` mode can be tried and tested as it
runs in Azure. A development tool; it never ships.

What it models, from learn.microsoft.com ("Authentication and authorization in Azure App Service",
"Work with user identities in Azure App Service authentication", "Customize sign-ins and
sign-outs", "Configure Microsoft Entra authentication"):
- the `X-MS-CLIENT-PRINCIPAL*` and `X-MS-TOKEN-*` headers are stripped from every outside request
  ("external requests aren't allowed to set these headers");
- a bearer token is validated (signature, issuer, audience, lifetime): a valid one becomes the
  principal header, an invalid one answers 401; with `unauthenticatedClientAction: AllowAnonymous`
  a request without credentials goes through without a principal, and the app decides;
- browsers sign in at `/.auth/login/aad?post_login_redirect_uri=…` (here a local page where you say
  who you are, instead of Entra's), get the `AppServiceAuthSession` cookie, and `/.auth/me` shows
  their claims; `/.auth/logout` ends the session;
- the claims in the principal go through the default claim mapping (`upn`, `oid` and `tid` become
  the long URI types), with `auth_typ` aad and the documented `name_typ` and `role_typ`.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TENANT = "00000000-0000-0000-0000-00000000cafe"
AUDIENCE = "api://slipway-local"
SESSION_COOKIE = "AppServiceAuthSession"
MAPPED = {"upn": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
          "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
          "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
          "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
NAME_TYP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
ROLE_TYP = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
ROLES = ("Slipway.Admin", "Slipway.ReleaseManager", "Slipway.Reader")
Answer = tuple[int, dict[str, str], bytes]


class LocalEntra:
    """Signs RS256 access tokens as a Microsoft Entra tenant would (v2 issuer, one audience)."""

    def __init__(self, tenant: str = TENANT, audience: str = AUDIENCE) -> None:
        self.tenant, self.audience = tenant, audience
        self.issuer = f"https://login.microsoftonline.com/{tenant}/v2.0"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, *, name: str | None = None, app_id: str | None = None, roles: list[str] | None = None,
              groups: list[str] | None = None, object_id: str | None = None, lifetime: int = 3600,
              audience: str | None = None, claims: dict[str, Any] | None = None) -> str:
        """A user's token (`name`: their UPN) or an app-only token (`app_id`, a pipeline's identity)."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "aud": audience or self.audience, "iat": now, "nbf": now,
                                "exp": now + lifetime, "tid": self.tenant, "ver": "2.0",
                                "oid": object_id or str(uuid.uuid5(uuid.NAMESPACE_URL, name or app_id or "x"))}
        if name:
            body.update(upn=name, preferred_username=name, name=name.split("@")[0].title())
        if app_id:
            body.update(azp=app_id, appid=app_id, idtyp="app" if not name else "user")
        if roles:
            body["roles"] = list(roles)
        if groups:
            body["groups"] = list(groups)
        body.update(claims or {})
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": "local"})

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims; raises jwt.InvalidTokenError for a bad signature, issuer, audience or time."""
        return jwt.decode(token, self._key.public_key(), algorithms=["RS256"], audience=self.audience,
                          issuer=self.issuer, options={"require": ["exp", "iss", "aud"]})  # type: ignore[no-any-return]


class EasyAuth:
    """The front end of an app with App Service authentication on (AllowAnonymous)."""

    def __init__(self, entra: LocalEntra) -> None:
        self.entra = entra
        self._sessions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def endpoint(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        """Answers `/.auth/...` itself; None for every other path."""
        parts = urlsplit(raw_path)
        if not parts.path.startswith("/.auth/"):
            return None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/.auth/login/aad":
            back = _local(query.get("post_login_redirect_uri", "/"))
            if method == "POST":
                return self._sign_in(body, back)
            return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, _login_page(back)
        if parts.path == "/.auth/logout":
            sid = _cookie(headers, SESSION_COOKIE)
            with self._lock:
                self._sessions.pop(sid or "", None)
            return 302, {"Location": _local(query.get("post_logout_redirect_uri", "/")),
                         "Set-Cookie": f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"}, b""
        if parts.path == "/.auth/me":
            claims = self._session(headers)
            if claims is None:
                return 401, {}, b""
            data = [{"provider_name": "aad", "user_id": claims.get("upn", ""),
                     "user_claims": [{"typ": t, "val": v} for t, v in _mapped(claims)]}]
            return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()
        return 404, {}, b""

    def inbound(self, headers: dict[str, str]) -> dict[str, str] | Answer:
        """The headers the app sees: outside principal headers stripped, the caller's claims added;
        or a 401 answer for a bearer token that does not validate."""
        clean = {k: v for k, v in headers.items() if not k.lower().startswith(("x-ms-client-principal", "x-ms-token-"))}
        claims: dict[str, Any] | None = None
        authorization = next((v for k, v in clean.items() if k.lower() == "authorization"), "")
        if authorization.lower().startswith("bearer "):
            try:
                claims = self.entra.validate(authorization[7:].strip())
            except jwt.InvalidTokenError as exc:
                return 401, {"WWW-Authenticate": f'Bearer realm="{self.entra.audience}", error="invalid_token"'}, \
                    f"invalid token: {exc}".encode()
        else:
            claims = self._session(clean)
        if claims is None:
            return clean
        principal = {"auth_typ": "aad", "name_typ": NAME_TYP, "role_typ": ROLE_TYP,
                     "claims": [{"typ": t, "val": v} for t, v in _mapped(claims)]}
        clean["X-MS-CLIENT-PRINCIPAL"] = base64.b64encode(json.dumps(principal).encode()).decode()
        clean["X-MS-CLIENT-PRINCIPAL-ID"] = str(claims.get("oid", ""))
        clean["X-MS-CLIENT-PRINCIPAL-NAME"] = str(claims.get("upn") or claims.get("azp") or "")
        clean["X-MS-CLIENT-PRINCIPAL-IDP"] = "aad"
        return clean

    def _session(self, headers: dict[str, str]) -> dict[str, Any] | None:
        sid = _cookie(headers, SESSION_COOKIE)
        with self._lock:
            return self._sessions.get(sid) if sid else None

    def _sign_in(self, body: bytes, back: str) -> Answer:
        form = {k: v for k, v in parse_qs(body.decode(errors="replace")).items()}
        name = (form.get("name") or [""])[0].strip()
        if not name or len(name) > 256:
            return 400, {"Content-Type": "text/html; charset=utf-8"}, _login_page(back, "Say who you are.")
        roles = [r for r in ROLES if (form.get(f"role:{r}") or [""])[0] == "on"]
        groups = [g.strip() for g in (form.get("groups") or [""])[0].split(",") if g.strip()]
        token = self.entra.token(name=name, roles=roles, groups=groups)
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = self.entra.validate(token)
        return 302, {"Location": back, "Cache-Control": "no-store",
                     "Set-Cookie": f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"}, b""


def _mapped(claims: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((MAPPED.get(key, key), str(item)))
    return out


def _local(path: str) -> str:
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _cookie(headers: dict[str, str], name: str) -> str | None:
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), "")
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _login_page(back: str, problem: str = "") -> bytes:
    e = html.escape
    roles = "".join(f"<label><input type='checkbox' name='role:{r}'> {r}</label> " for r in ROLES)
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>Sign in (local)</title></head><body "
            f"style='font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto'>"
            f"<h1>Sign in</h1><p>The local stack's stand-in for Microsoft Entra ID: say who you are. "
            f"In Azure this is Entra's own sign-in.</p><p style='color:#b3261e'>{e(problem)}</p>"
            f"<form method='post' action='/.auth/login/aad?post_login_redirect_uri={e(quote(back, safe=''))}'>"
            f"<p><label>User principal name<br><input name='name' size='40' placeholder='tim@contoso.com'>"
            f"</label></p><p>App roles: {roles}</p><p><label>Group object ids (comma-separated)<br>"
            f"<input name='groups' size='40'></label></p><p><button>Sign in</button></p></form></body></html>")
    return text.encode()

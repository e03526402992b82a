"""Personal access tokens for the Azure DevOps-compatible surface, which its clients call with
`Authorization: Basic base64(user:PAT)`.

Admins issue and revoke them. A token is `slp_<id>_<secret>`: the id (8 base32 characters) names the
stored record, so checking a token is one point read; the secret is 32 random bytes. Only the token's
sha256 is kept, compared in constant time. A token acts as the identity it was issued for, with
exactly the roles and groups it was issued with; a revoked or expired one is refused at once. The token
is shown once, when it is issued, and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from shared.domain.access import Principal, Unauthenticated
from shared.domain.errors import Conflict, NotFound
from shared.records import ConcurrentChange
from shared.schemas.access_token import AccessTokenIn
from shared.services.deps import Deps

logger = logging.getLogger(__name__)
KIND = "pat"
TOKEN = re.compile(r"^slp_([a-z2-7]{8})_([a-z2-7]{52})$")
TOKEN_ID = re.compile(r"^[a-z2-7]{8}$")
INVALID = "the personal access token is not valid"
TRIES = 3


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(deps: Deps, body: AccessTokenIn, *, by: str) -> tuple[dict[str, Any], str]:
    """A new token: its record as lists show it, and the token (to show once)."""
    now = deps.clock.now()
    for _ in range(TRIES):
        token_id, secret = _b32(secrets.token_bytes(5)), _b32(secrets.token_bytes(32))
        token = f"slp_{token_id}_{secret}"
        record = {"id": token_id, "name": body.name, "identity": body.identity, "roles": sorted(set(body.roles)),
                  "groups": list(dict.fromkeys(body.groups)), "createdBy": by, "createdOn": now.isoformat(),
                  "expiresOn": (now + timedelta(days=body.expiresInDays)).isoformat(), "sha256": _digest(token)}
        try:
            deps.store.put_document(KIND, token_id, record, None)
        except ConcurrentChange:
            continue  # that id is taken: draw another
        logger.info("%s issued access token %s (%s) acting as %s", by, token_id, body.name, body.identity)
        return shown(record, now), token
    raise Conflict("could not draw a free token id; try again")


def shown(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A token's record as an admin reads it: never the token, nor its hash."""
    status = "revoked" if record.get("revokedOn") else \
        "expired" if now >= datetime.fromisoformat(record["expiresOn"]) else "active"
    return {**{k: v for k, v in record.items() if k != "sha256"}, "status": status}


def listed(deps: Deps) -> list[dict[str, Any]]:
    now = deps.clock.now()
    return sorted((shown(body, now) for body, _ in deps.store.documents(KIND)),
                  key=lambda t: str(t["createdOn"]), reverse=True)


def revoke(deps: Deps, token_id: str, *, by: str) -> None:
    """Revoke a token (revoking it again changes nothing); the record stays, for the audit trail."""
    for _ in range(TRIES):
        found = deps.store.document(KIND, token_id) if TOKEN_ID.fullmatch(token_id) else None
        if found is None:
            raise NotFound(f"no access token '{token_id}'")
        record, etag = found
        if record.get("revokedOn"):
            return
        try:
            deps.store.put_document(KIND, token_id, {**record, "revokedOn": deps.clock.now().isoformat(),
                                                     "revokedBy": by}, etag)
        except ConcurrentChange:
            continue
        logger.info("%s revoked access token %s (%s)", by, token_id, record.get("name"))
        return
    raise Conflict(f"access token '{token_id}' kept changing; try again")



def principal(deps: Deps, token: str) -> Principal:
    """Who a token acts as; Unauthenticated for anything but a live token this app issued."""
    match = TOKEN.fullmatch(token.strip())
    found = deps.store.document(KIND, match[1]) if match else None
    expected = str(found[0].get("sha256", "")) if found else _digest("")
    if not hmac.compare_digest(expected, _digest(token.strip())) or found is None:
        raise Unauthenticated(INVALID)
    record = found[0]
    if record.get("revokedOn"):
        raise Unauthenticated("the personal access token was revoked")
    if deps.clock.now() >= datetime.fromisoformat(record["expiresOn"]):
        raise Unauthenticated("the personal access token has expired")
    return Principal(str(record["identity"]), frozenset(record.get("groups") or []),
                     frozenset(record.get("roles") or []), "automation")

"""How each platform proves a delivery is its own, checked in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

GITHUB_PREFIX = "sha256="


def github_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` is `sha256=` + the hex HMAC-SHA256 of the raw body keyed with the webhook's secret
    (docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries: compute it over the payload as
    received and compare with a constant-time function). No secret configured: nothing is valid."""
    if not secret or not header or not header.startswith(GITHUB_PREFIX):
        return False
    expected = GITHUB_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode("ascii", "replace"))


def shared_token_valid(expected: str, given: str | None) -> bool:
    """A header carrying a secret the platform was configured to send (ACR webhooks' custom headers), compared in
    constant time. No secret configured: nothing is valid."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))


def basic_auth_valid(user: str, password: str, header: str | None) -> bool:
    """`Authorization: Basic base64(user:password)` (RFC 7617), as an Azure DevOps Web Hooks subscription sends its
    "Basic authentication username/password" (learn.microsoft.com/azure/devops/service-hooks/services/webhooks).
    Both parts compared in constant time; no password configured: nothing is valid."""
    if not password or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, sep, given_password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    same_user = hmac.compare_digest(user.encode(), given_user.encode())
    same_password = hmac.compare_digest(password.encode(), given_password.encode())
    return bool(sep) and same_user and same_password

"""Reading HTTP answers of services Slipway calls with a token of its own (GitHub, Azure DevOps)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds: delta-seconds or an HTTP date (RFC 9110, 10.2.3); None without one."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def scrub(text: str, token: str) -> str:
    """`text` without the token (a service may echo the credential it was sent)."""
    return text.replace(token, "***") if token else text

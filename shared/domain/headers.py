"""Which HTTP header names a definition may give a request (an http-request step, a REST gate signal), shared by
the step's model and the Azure DevOps import, which leaves out what the model would refuse."""

from __future__ import annotations

SENSITIVE = ("authorization", "proxy-authorization", "cookie", "x-functions-key", "x-api-key", "api-key",
             "ocp-apim-subscription-key")
"""Headers that carry credentials: their values come from Key Vault or app settings, never from the definition."""
RESERVED = ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
            "trailer", "upgrade", "idempotency-key")
"""Headers the HTTP client or Slipway sets (framing, hop-by-hop per RFC 9110 §7.6.1, the call's idempotency key):
one from a definition would smuggle a second request, reach another virtual host, or break the repeat-safety."""
RESERVED_PREFIX = "x-slipway-"
"""Slipway's own headers (`X-Slipway-Callback`): a definition may not forge them."""


def reserved(name: str) -> bool:
    """A header only the HTTP client or Slipway sets."""
    lowered = name.casefold()
    return lowered in RESERVED or lowered.startswith(RESERVED_PREFIX)

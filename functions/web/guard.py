"""What every form a browser posts must prove: it comes from this site (no cross-site POST)."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from shared.domain.errors import FieldError, Invalid


def same_origin(req: func.HttpRequest) -> None:
    """Forms are answered only when the browser says they come from this site. Current browsers send
    `Sec-Fetch-Site` (W3C Fetch Metadata): it must be `same-origin` (or `none`, typed by the user).
    Without it, an `Origin` must name this host; a POST's Origin is `null` under a no-referrer
    policy (WHATWG Fetch, "append a request Origin header"), which only Sec-Fetch-Site can vouch for.
    Clients that send neither are not browsers, and cross-site forgery needs a browser."""
    origin = req.headers.get("Origin")
    site = req.headers.get("Sec-Fetch-Site")
    if site is not None:
        ok = site in ("same-origin", "none")
    else:
        ok = not origin or (origin != "null" and urlsplit(origin).netloc == urlsplit(req.url).netloc)
    if not ok:
        raise Invalid([FieldError("Origin", "forms are accepted from this site only")])

"""What every form a browser posts must prove: it comes from this site (no cross-site POST)."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from shared.domain.errors import FieldError, Invalid

DEFAULT_PORTS = {"http": "80", "https": "443"}


def same_origin(req: func.HttpRequest, public_url: str | None = None) -> None:
    """Forms are answered only when the browser says they come from this site. Current browsers send
    `Sec-Fetch-Site` (W3C Fetch Metadata): it must be `same-origin` (or `none`, typed by the user).
    Without it (browsers send it to secure contexts only, so not to a plain-http host name), an
    `Origin` must name this site; a POST's Origin is `null` under a no-referrer policy (WHATWG
    Fetch, "append a request Origin header"), which only Sec-Fetch-Site can vouch for. Clients that
    send neither are not browsers, and cross-site forgery needs a browser.

    "This site" is any host the request reached us by: its own URL's host (the Host header, which the
    Functions host builds `req.url` from), the host a reverse proxy says the browser asked for
    (`X-Forwarded-Host`: Application Gateway and Front Door are told to send it when they do not keep
    the Host, https://learn.microsoft.com/azure/architecture/best-practices/host-name-preservation,
    and App Service authentication's `forwardProxy` "Standard" convention reads it,
    https://learn.microsoft.com/azure/app-service/configure-authentication-file-based), and the
    configured public URL (`SLIPWAY_PUBLIC_URL`, else App Service's `WEBSITE_HOSTNAME`). Trusting a
    forwarded header is safe here: a cross-site form cannot set request headers, so a forged POST can
    never make the host it claims match its own Origin."""
    origin = req.headers.get("Origin")
    site = req.headers.get("Sec-Fetch-Site")
    if site is not None:
        ok = site in ("same-origin", "none")
    else:
        ok = not origin or (origin != "null" and _host(origin) in _hosts(req, public_url))
    if not ok:
        raise Invalid([FieldError("Origin", "forms are accepted from this site only")])


def _host(url: str, scheme: str = "") -> str:
    """`host:port` of a URL (or of a bare `host[:port]`), lower case, the scheme's default port explicit."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    scheme = parts.scheme or scheme
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port or DEFAULT_PORTS.get(scheme, '')}" if host else ""


def _hosts(req: func.HttpRequest, public_url: str | None) -> set[str]:
    found = {_host(req.url)}
    for value in (req.headers.get("X-Forwarded-Host") or "").split(","):
        if value.strip():  # a bare host names the default port of whichever scheme the browser used
            found |= {_host(value.strip(), "https"), _host(value.strip(), "http")}
    found |= {_host(url) for url in _public_urls(public_url)}
    found.discard("")
    return found


def _public_urls(public_url: str | None) -> list[str]:
    if public_url is not None:
        return [public_url] if public_url else []
    from shared import bootstrap

    settings = bootstrap.deps().settings
    return [u for u in (settings.public_url, f"https://{settings.website_hostname}" if settings.website_hostname
                        else "") if u]

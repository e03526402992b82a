"""HTTP for `http-check` steps (GET) and `http-request` steps (any method); network errors are results,
not exceptions.

An http-request step calls a URL a definition names, from inside the user's subscription, so it must
not become a way to reach what only the app can reach: link-local addresses (169.254.0.0/16, fe80::/10:
the instance metadata service that hands out managed identity tokens) are never called, nor loopback
unless the host is listed in SLIPWAY_HTTP_LOCAL_HOSTS (the local stack). Private ranges stay allowed:
calling an internal service over a VNet is what such a step is for. Every address a name resolves to
is checked, and the connection goes to the checked address (no second lookup for a rebinding DNS to
answer differently).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from shared.adapters import tls
from shared.ports import ProbeResult

MAX_BODY = 64 * 1024


class HttpxProbe:
    def __init__(self, local_hosts: str = "") -> None:
        self.local_hosts = {h.strip().lower() for h in local_hosts.split(",") if h.strip()}

    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        try:
            response = httpx.get(url, timeout=timeout_seconds, follow_redirects=True, verify=tls.context())
        except httpx.HTTPError as exc:
            return ProbeResult(None, "", f"{type(exc).__name__}: {exc}")
        return ProbeResult(response.status_code, response.text[:MAX_BODY])

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout_seconds: float) -> ProbeResult:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            address = self._address(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (OSError, ValueError) as exc:
            return ProbeResult(None, "", f"{host}: {exc}")
        try:
            # The connection goes to the address checked above; the name stays in the URL for TLS (SNI,
            # certificate) and the Host header.
            with httpx.Client(follow_redirects=False, timeout=timeout_seconds, verify=tls.context()) as client:
                request = client.build_request(method, url, headers=headers, content=body)
                request.extensions["sni_hostname"] = host
                if address != host:
                    request.url = request.url.copy_with(host=address)
                    request.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
                response = client.send(request)
        except httpx.HTTPError as exc:
            return ProbeResult(None, "", f"{type(exc).__name__}: {exc}")
        return ProbeResult(response.status_code, response.text[:MAX_BODY], retry_after=_seconds(response))

    def _address(self, host: str, port: int) -> str:
        """The address to connect to; raises ValueError for one the app must not call."""
        if not host:
            raise ValueError("the URL names no host")
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if ip.is_link_local or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped
                                    and ip.ipv4_mapped.is_link_local):
                raise ValueError(f"{host} resolves to the link-local address {ip}, which Slipway never calls "
                                 f"(instance metadata)")
            if (ip.is_loopback or ip.is_unspecified) and host not in self.local_hosts:
                raise ValueError(f"{host} resolves to the loopback address {ip}, which Slipway does not call")
        return sorted(found)[0] if host not in self.local_hosts else host


def _seconds(response: httpx.Response) -> float | None:
    try:
        value = response.headers.get("Retry-After")
        return float(value) if value is not None else None
    except ValueError:
        return None

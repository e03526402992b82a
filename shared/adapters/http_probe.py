"""HTTP GET for `http-check` steps; network errors are results, not exceptions."""

from __future__ import annotations

import httpx

from shared.ports import ProbeResult

MAX_BODY = 64 * 1024


class HttpxProbe:
    def get(self, url: str, timeout_seconds: float) -> ProbeResult:
        try:
            response = httpx.get(url, timeout=timeout_seconds, follow_redirects=True)
        except httpx.HTTPError as exc:
            return ProbeResult(None, "", f"{type(exc).__name__}: {exc}")
        return ProbeResult(response.status_code, response.text[:MAX_BODY])

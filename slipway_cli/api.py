"""A small client of Slipway's HTTP API: JSON in and out, problems turned into readable errors."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with a problem (or not at all); the message says what and which field."""


class Client:
    def __init__(self, endpoint: str, key: str | None = None, timeout: float = 60.0, *, token: str | None = None,
                 acting_as: str | None = None) -> None:
        """`token`: a Microsoft Entra access token for Slipway's app (`az account get-access-token
        --resource api://…`, or a pipeline's workload identity); `key`: a function key otherwise;
        `acting_as`: on the local stack in development mode only, whom to act as."""
        headers = {"x-functions-key": key} if key else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if acting_as:
            headers["X-Slipway-Acting-As"] = acting_as
        self.http = httpx.Client(base_url=endpoint.rstrip("/"), headers=headers, timeout=timeout)

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        response = self.send(method, path, json=json, params=params, headers=headers)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def send(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """The raw answer (its headers: an ETag; its bytes: a zip), or ApiError."""
        try:
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(_problem(response))
        return response


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    lines = [f"HTTP {response.status_code} {body.get('title', '')}: {body.get('detail', '')}".strip()]
    lines += [f"  {e['field']}: {e['message']}" for e in body.get("errors", [])]
    return "\n".join(lines)

"""A small client of Slipway's HTTP API: JSON in and out, problems turned into readable errors.

Every failure a user can cause or meet (a wrong endpoint, a host that is down or slow, an answer
that is not Slipway's) is an ApiError with one readable message, never a traceback."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

EXAMPLE_ENDPOINT = "http://127.0.0.1:7071/api"


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
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.http = httpx.Client(base_url=self.endpoint, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, text: bool = False) -> Any:
        """The answer's JSON (`text`: its text, for logs), or ApiError."""
        response = self.send(method, path, json=json, params=params, headers=headers)
        return response.text if text else self.json_of(response)

    def send(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """The raw answer (its headers: an ETag; its bytes: a zip), or ApiError."""
        return self.check(self.request(method, path, json=json, params=params, headers=headers))

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        """The answer whatever its status, for callers that handle one (a 412); ApiError when there is
        no answer or the answer is not the API's (an HTML page: the endpoint lacks /api)."""
        try:
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.UnsupportedProtocol:
            raise ApiError(f"the endpoint '{self.endpoint}' is not an http(s) URL; it looks like "
                           f"{EXAMPLE_ENDPOINT} (--endpoint or SLIPWAY_ENDPOINT)") from None
        except httpx.TimeoutException:
            raise ApiError(f"{self.endpoint} did not answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise ApiError(f"cannot connect to {self.endpoint}: {_first_line(exc)} (is Slipway running there? "
                           "set --endpoint or SLIPWAY_ENDPOINT)") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self.endpoint}: {_first_line(exc)}") from None
        if _is_html(response):
            raise ApiError(self._not_the_api("an HTML page"))
        return response

    def check(self, response: httpx.Response) -> httpx.Response:
        """The answer when it succeeded, else ApiError with the problem it describes."""
        if 300 <= response.status_code < 400:
            where = response.headers.get("location", "elsewhere")
            raise ApiError(self._not_the_api(f"a redirect to {where}") + " (behind a sign-in page? pass --token)")
        if response.status_code < 400:
            return response
        if _json_or_none(response) is None:
            raise ApiError(self._not_the_api(f"HTTP {response.status_code} without a problem description")
                           if not self.ends_in_api() else f"HTTP {response.status_code}: {response.text[:500]}")
        raise ApiError(_problem(response))

    def json_of(self, response: httpx.Response) -> Any:
        """The answer's JSON, or ApiError saying what came instead."""
        body = _json_or_none(response)
        if body is None:
            kind = ("an empty answer" if not response.content
                    else response.headers.get("content-type", "").split(";")[0] or "an answer without a content type")
            raise ApiError(self._not_the_api(f"{kind} instead of JSON"))
        return body

    def ends_in_api(self) -> bool:
        return urlsplit(self.endpoint).path.rstrip("/").endswith("/api")

    def _not_the_api(self, what: str) -> str:
        message = f"{self.endpoint} answered {what}, not Slipway's API"
        if not self.ends_in_api():
            return f"{message}: the endpoint should end in /api, e.g. {self.endpoint}/api"
        return f"{message}: is {self.endpoint} Slipway's API address (--endpoint or SLIPWAY_ENDPOINT)?"


def _is_html(response: httpx.Response) -> bool:
    if response.headers.get("content-type", "").split(";")[0].strip().lower() in ("text/html",
                                                                                    "application/xhtml+xml"):
        return True
    start = response.content[:100].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _json_or_none(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {response.text[:500]}"
    lines = [f"HTTP {response.status_code} {body.get('title', '')}: {body.get('detail', '')}".strip()]
    lines += [f"  {e.get('field')}: {e.get('message')}" for e in body.get("errors", []) if isinstance(e, dict)]
    return "\n".join(lines)

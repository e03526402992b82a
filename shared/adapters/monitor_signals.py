"""Gate signals from Azure Monitor and HTTP: one provider call per signal per sample.

Metrics through ARM (`azure-mgmt-monitor` `metrics.list`), log queries through `azure-monitor-query`
`LogsQueryClient`, fired alerts through the Alerts Management REST API on the same ARM pipeline, and
REST probes through httpx. A REST probe sends an app setting as a header only when the app's
allowlist names it for that host (`shared/domain/secrets.py`); the text values a sample keeps
are short, and never include what was sent. Nothing here decides pass or fail except a REST probe's status: the
reading carries the value, and the gate compares it with the threshold. Errors, throttling (with
its Retry-After), timeouts, empty series and unreadable answers come back as readings that never
pass. The SDKs' own retries are off: the gate's next sample is the retry.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from azure.core.exceptions import AzureError, HttpResponseError

from shared.adapters import tls
from shared.adapters.azure_auth import client_args, retry_after
from shared.config import Settings
from shared.domain.gates import Reading
from shared.domain.secrets import header_refusal

ALERTS_API = "2025-05-25-preview"
ALERTS_PAGE = 250
"""The largest page the alerts list gives (pageCount 1 to 250)."""
MAX_ALERT_PAGES = 40
VALUE_CHARS = 200
"""Longest text a sample keeps of a signal's value."""
METRICS_TIMEOUT = 20


class MonitorSignals:
    def __init__(self, settings: Settings, credential: Any = None, timeout_seconds: float = METRICS_TIMEOUT) -> None:
        self.settings = settings
        self.timeout_seconds = timeout_seconds
        self._credential = credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- clients, built on first use (the SDKs are heavy to import)

    def _options(self) -> tuple[Any, dict[str, Any]]:
        credential, options = client_args(self.settings, self._credential, connection_timeout=5,
                                          read_timeout=self.timeout_seconds)
        self._credential = credential  # one managed identity for every client
        return credential, options

    def _monitor(self, subscription_id: str) -> Any:
        with self._lock:
            key = f"arm|{subscription_id}"
            if key not in self._clients:
                from azure.mgmt.monitor import MonitorManagementClient

                credential, options = self._options()
                self._clients[key] = MonitorManagementClient(credential, subscription_id,
                                                             base_url=self.settings.monitor_url,
                                                             credential_scopes=[self.settings.arm_scope], **options)
            return self._clients[key]

    def _logs(self) -> Any:
        with self._lock:
            if "logs" not in self._clients:
                from azure.monitor.query import LogsQueryClient

                credential, options = self._options()
                self._clients["logs"] = LogsQueryClient(credential, endpoint=self.settings.logs_url, **options)
            return self._clients["logs"]

    # -- reading

    def read(self, signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
        name = signal["name"]
        try:
            kind = signal["type"]
            if kind == "metric":
                return self._metric(signal, signal.get("resourceId") or resource_id, now)
            if kind == "logQuery":
                return self._log_query(signal)
            if kind == "alerts":
                return self._alerts(signal, signal.get("scope") or _site_of(resource_id))
            if kind == "rest":
                return self._rest(signal)
            return Reading(name, error=f"unknown signal type {kind}")
        except HttpResponseError as exc:
            status = exc.status_code or 0
            word = "throttled" if status == 429 else "unreadable answer" if 200 <= status < 300 else f"HTTP {status}"
            return Reading(name, error=f"{word}: {_first_line(exc.message)}", retry_after=retry_after(exc))
        except (AzureError, httpx.HTTPError) as exc:
            return Reading(name, error=f"{type(exc).__name__}: {_first_line(str(exc))}")
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            return Reading(name, error=f"unreadable answer: {type(exc).__name__}: {_first_line(str(exc))}")

    def _metric(self, signal: dict[str, Any], resource_id: str, now: datetime) -> Reading:
        window = timedelta(minutes=float(signal.get("windowMinutes", 5)))
        start = (now - window).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        aggregation = signal["aggregation"]
        answer = self._monitor(_subscription(resource_id)).metrics.list(
            resource_uri=resource_id, timespan=f"{start}/{end}", interval="PT1M", metricnames=signal["metric"],
            aggregation=aggregation)
        points = [getattr(point, aggregation.lower()) for metric in answer.value for series in metric.timeseries
                  for point in series.data]
        values = [float(v) for v in points if v is not None]
        if not values:
            return Reading(signal["name"], inconclusive=f"no {signal['metric']} data in the last {window}")
        combine: dict[str, Callable[[list[float]], float]] = {
            "Total": sum, "Count": sum, "Maximum": max, "Minimum": min, "Average": lambda v: sum(v) / len(v)}
        combined = combine[aggregation](values)
        return Reading(signal["name"], value=round(combined, 6))

    def _log_query(self, signal: dict[str, Any]) -> Reading:
        from azure.monitor.query import LogsQueryStatus

        window = timedelta(minutes=float(signal.get("windowMinutes", 30)))
        logs = self._logs()
        if signal.get("workspaceId"):
            result = logs.query_workspace(signal["workspaceId"], signal["query"], timespan=window, server_timeout=20)
        else:
            result = logs.query_resource(signal["resourceId"], signal["query"], timespan=window, server_timeout=20)
        if result.status != LogsQueryStatus.SUCCESS:
            return Reading(signal["name"], error=f"partial result: {getattr(result.partial_error, 'message', '')}")
        table = result.tables[0]
        column = signal.get("column")
        if column is None:
            return Reading(signal["name"], value=float(len(table.rows)))
        if not table.rows:
            return Reading(signal["name"], inconclusive="the query returned no rows")
        if column not in table.columns:
            return Reading(signal["name"], error=f"the query has no column '{column}' (it has {table.columns})")
        value = table.rows[0][table.columns.index(column)]
        return Reading(signal["name"], value=_short(value) if isinstance(value, (str, bool)) or value is None
                       else float(value))

    def _alerts(self, signal: dict[str, Any], scope: str) -> Reading:
        """Alerts firing now on `scope` (the stage's app, or the signal's own scope).

        The list is asked at the scope's resource group, which is where `infra/` grants Monitoring
        Reader (a subscription-wide list needs the role on the subscription), with api-version
        2025-05-25-preview, the one whose list takes a `{scope}`. `severity` is one value in the spec,
        so the severities are filtered here; the default time range is one day, so the query asks for
        30 days (the longest) of alerts still `Fired`; every page is read (`nextLink`)."""
        from azure.core.rest import HttpRequest

        client = self._monitor(_subscription(scope))
        group = _resource_group_of(scope)
        params = {"api-version": ALERTS_API, "monitorCondition": "Fired", "timeRange": "30d",
                  "pageCount": str(ALERTS_PAGE)}
        if group.lower() != scope.rstrip("/").lower():
            params["targetResource"] = scope
        url: str | None = f"{self.settings.monitor_url}{group}/providers/Microsoft.AlertsManagement/" \
                          f"alerts"
        wanted = set(signal.get("severities") or [])
        firing, pages = 0, 0
        while url:
            pages += 1
            if pages > MAX_ALERT_PAGES:
                return Reading(signal["name"], error=f"more than {MAX_ALERT_PAGES * ALERTS_PAGE} alerts: "
                                                     f"narrow the signal's scope")
            response = client._client.send_request(HttpRequest("GET", url, params=params if pages == 1 else None))
            response.raise_for_status()
            body = response.json()
            for alert in body["value"]:
                severity = alert["properties"]["essentials"]["severity"]
                if not wanted or severity in wanted:
                    firing += 1
            url = body.get("nextLink")
        return Reading(signal["name"], value=float(firing))

    def _rest(self, signal: dict[str, Any]) -> Reading:
        headers = {}
        for header, setting in (signal.get("headersFromSettings") or {}).items():
            refused = header_refusal(setting, signal["url"], self.settings.gate_header_settings)
            if refused:
                return Reading(signal["name"], error=f"header {header} not sent: {refused}")
            headers[header] = os.environ.get(setting, "")
        response = httpx.request(signal.get("method", "GET"), signal["url"], headers=headers,
                                 timeout=float(signal.get("timeoutSeconds", 10)), verify=tls.context())
        expected = int(signal.get("expectStatus", 200))
        if response.status_code == 429:
            return Reading(signal["name"], error="throttled: HTTP 429", retry_after=_retry_after(response.headers))
        if response.status_code != expected:
            return Reading(signal["name"], value=float(response.status_code),
                           failed=f"HTTP {response.status_code}, expected {expected}")
        if not signal.get("jsonPath"):
            return Reading(signal["name"], value=True)
        return Reading(signal["name"], value=_short(_pick(response.json(), signal["jsonPath"])))


def _pick(body: Any, path: str) -> Any:
    """`$.a.b[0].c` out of a JSON body; None when it is not there."""
    import re

    node = body
    for key, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]", path):
        try:
            node = node[key] if key else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, (str, bool)) or node is None else float(node)


def _short(value: Any) -> Any:
    """A text value as samples keep it (every reader sees them): at most VALUE_CHARS characters."""
    return value[:VALUE_CHARS] + "…" if isinstance(value, str) and len(value) > VALUE_CHARS else value


def _subscription(resource_id: str) -> str:
    return resource_id.split("/")[2]


def _resource_group_of(resource_id: str) -> str:
    """`/subscriptions/{s}/resourceGroups/{g}` of a resource id (or the id itself when it is a group)."""
    parts = resource_id.strip("/").split("/")
    return "/" + "/".join(parts[:4])


def _site_of(resource_id: str) -> str:
    """A slot's site: alerts are raised on the app, metrics per slot."""
    return resource_id.split("/slots/")[0]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if text and text.strip() else ""

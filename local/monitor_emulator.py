"""An Azure Monitor emulator that speaks the REST APIs the real SDK clients call.

* Metrics: the ARM metrics API, `GET {resourceId}/providers/Microsoft.Insights/metrics`, as called by
  `azure-mgmt-monitor` (`MonitorManagementClient.metrics.list`) and by the `MetricsQueryClient` of
  `azure-monitor-query` 1.x (same path). Values come from `record()`ed requests (`Requests`, `Http2xx`..
  `Http5xx`, `HttpResponseTime` and `AverageResponseTime`, both in seconds, as on App Service) or from a
  pluggable `metrics_source`.
* Log queries: `POST /v1/workspaces/{workspaceId}/query`, `POST /v1{resourceId}/query` and `POST /v1/$batch`
  (`azure-monitor-query` `LogsQueryClient`), answered from tables given to `set_table` with a tiny subset of
  KQL: `Table | where Column == 'x' and Other > 3 | count | take 5`.
* Fired alerts: the Alerts Management API, `GET /{scope}/providers/Microsoft.AlertsManagement/alerts`
  (api-version 2025-05-25-preview; 2019-05-05-preview at a subscription only) with its filters, each one
  enum value as the spec says, the one-day default time range, pages of at most 250 (`nextLink`), and
  403 outside `readable_scopes`; from `fire_alert` / `resolve_alert`.

Point the clients at `url` (LogsQueryClient at `url + "/v1"`) with an authentication policy that allows
http; any bearer token is accepted. Tests make it misbehave with `inject` and read what it was asked in
`requests`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

from local.rest_emulator import Fault, Reply, Request, RestEmulator

logger = logging.getLogger(__name__)

METRICS_PATH = re.compile(r"^(?P<resource>/subscriptions/[^/]+/.+)/providers/microsoft\.insights/metrics$", re.I)
LOGS_WORKSPACE = re.compile(r"^/v1/workspaces/(?P<workspace>[^/]+)/query$", re.I)
LOGS_RESOURCE = re.compile(r"^/v1(?P<resource>/subscriptions/.+)/query$", re.I)
LOGS_BATCH = re.compile(r"^/v1/\$batch$", re.I)
ALERTS_PATH = re.compile(r"^(?P<scope>/subscriptions/(?P<sub>[^/]+)(?:/.+?)?)/providers/microsoft\.alertsmanagement/"
                         r"alerts(?:/(?P<alert>[^/]+)(?P<change>/changeState)?)?$", re.I)
ALERT_VERSIONS = {"2019-05-05-preview": "subscription", "2025-05-25-preview": "any"}
"""Alerts Management api-versions and the scopes their list accepts: 2019-05-05-preview lists at
`/subscriptions/{id}` only; 2025-05-25-preview at `/{scope}` (a subscription, resource group or
resource). Source: azure-rest-api-specs, specification/alertsmanagement/.../AlertsManagement.json."""
ALERT_ENUMS = {
    "severity": ("Sev0", "Sev1", "Sev2", "Sev3", "Sev4"),
    "monitorCondition": ("Fired", "Resolved"),
    "alertState": ("New", "Acknowledged", "Closed"),
    "timeRange": ("1h", "1d", "7d", "30d"),
    "sortOrder": ("asc", "desc"),
    "sortBy": ("name", "severity", "alertState", "monitorCondition", "targetResource", "targetResourceName",
               "targetResourceGroup", "targetResourceType", "startDateTime", "lastModifiedDateTime"),
}
"""Each of these query parameters is one value of its enum (the spec's `type: string` + `enum`):
`severity=Sev0,Sev1` is not a list of two severities, and is refused."""
KINDS = ("metrics", "logs", "alerts")
FAULTS = ("throttle", "error", "timeout", "empty", "malformed")
MALFORMED = b'{"value": [{"id": "truncated'
"""What a `malformed` fault answers with status 200: JSON cut off in the middle."""
AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")

MetricsSource = Callable[[str, str, datetime, datetime], Mapping[datetime, float] | None]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    primary: str
    """The primary aggregation type, used when a request names none."""
    description: str
    sample: Callable[[int, float], float]
    """The value one request (status, duration in ms) contributes."""


BUILTIN_METRICS = {m.name.lower(): m for m in [
    MetricInfo("Requests", "Count", "Total", "The total number of requests regardless of their resulting HTTP "
               "status code.", lambda status, ms: 1.0),
    *[MetricInfo(f"Http{n}xx", "Count", "Total", f"The count of requests resulting in an HTTP status code >= "
                 f"{n}00 but < {n + 1}00.", lambda status, ms, n=n: float(status // 100 == n)) for n in (2, 3, 4, 5)],
    MetricInfo("HttpResponseTime", "Seconds", "Average", "The time taken for the app to serve requests, in seconds.",
               lambda status, ms: ms / 1000.0),
    MetricInfo("AverageResponseTime", "Seconds", "Average", "The average time taken for the app to serve requests, "
               "in seconds. (deprecated)", lambda status, ms: ms / 1000.0),
]}


@dataclass
class Traffic:
    at: datetime
    status: int
    duration_ms: float


@dataclass
class Table:
    name: str
    columns: list[tuple[str, str]]
    rows: list[list[Any]]


@dataclass
class Alert:
    id: str
    name: str
    target: str
    severity: str
    signal_type: str
    monitor_service: str
    description: str
    started: datetime
    modified: datetime
    condition: str = "Fired"
    state: str = "New"
    resolved: datetime | None = None


class KqlError(Exception):
    """A query Log Analytics would refuse: answered 400 in its error format."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        """"SyntaxError" or "SemanticError", as the service's innermost error codes say."""
        self.detail = detail


class MonitorEmulator(RestEmulator):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "westeurope") -> None:
        super().__init__(host, port)
        self.region = region
        self.metrics_source: MetricsSource | None = None
        """`(resource_id, metric, start, end) -> {minute: value}` or None to use the recorded traffic.

        Each point is one sample: an interval's total is their sum, its average their mean, its count how
        many there are. Metric names a source answers for need not be built in."""
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The emulator's clock: the local stack gives it the app's (accelerated) clock, so that traffic,
        alerts and the windows gates ask about are on one time line."""
        self.ingestion_delay_seconds = 0.0
        """How long a metric measurement takes to become readable (Azure Monitor platform metrics arrive
        after an ingestion latency, typically a few minutes: learn.microsoft.com, "Azure Monitor metrics")."""
        self.timeout_seconds = 5.0
        """How long a `timeout` fault holds a request (unless `inject(..., seconds=)` says otherwise)."""
        self.requests: list[Request] = []
        self.traffic: dict[str, list[Traffic]] = {}
        self.tables: dict[tuple[str | None, str], Table] = {}
        self.alerts: dict[str, Alert] = {}
        self.readable_scopes: list[str] | None = None
        """Where the caller may read alerts (Monitoring Reader's scopes); None: everywhere."""
        self._faults: dict[str, list[Fault]] = {kind: [] for kind in KINDS}
        self._lock = threading.RLock()

    def encode(self, body: Any) -> bytes:
        """JSON with datetimes (log rows) in ISO 8601."""
        return json.dumps(body, default=_json_default).encode()

    # -- seeding and test hooks

    def record(self, resource_id: str, at: datetime | None, status: int, duration_ms: float) -> None:
        """One request the resource served (at the emulator's own time when `at` is None): counted in the
        measurement of the minute it falls in."""
        when = _utc(at) if at is not None else self.now()
        with self._lock:
            self.traffic.setdefault(_key(resource_id), []).append(Traffic(when, int(status), float(duration_ms)))

    def set_table(self, name: str, columns: list[tuple[str, str]], rows: list[list[Any]] | list[dict[str, Any]],
                  *, scope: str | None = None) -> None:
        """A Log Analytics table: columns are (name, type) with Kusto types (string, datetime, long, int, real,
        bool, dynamic, guid, timespan); rows are lists in column order or dicts by column name.

        `scope` (a workspace id or a resource id) limits the table to queries of that workspace or resource;
        without it every workspace and resource sees it. Table and column names are case-sensitive, as in KQL.
        Datetime values may be datetimes or ISO strings; a `TimeGenerated` column is filtered by the query's
        timespan, as Log Analytics does."""
        names = [c for c, _ in columns]
        table_rows = [[row.get(c) for c in names] if isinstance(row, dict) else list(row) for row in rows]
        for row in table_rows:
            if len(row) != len(names):
                raise ValueError(f"row {row!r} does not have the {len(names)} columns of {name}")
        with self._lock:
            self.tables[(_key(scope) if scope else None, name)] = Table(name, list(columns), table_rows)

    def append_rows(self, table: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
        """Add rows (dicts by column name; a missing column is null) to a table every workspace sees,
        creating it with `columns` when it does not exist yet: how ingested logs arrive (the Container Apps
        emulator's console lines). Until the first row, a query of the table fails as Log Analytics fails
        for a table that does not exist yet. An existing table must have the same columns."""
        names = [c for c, _ in columns]
        with self._lock:
            found = self.tables.get((None, table))
            if found is None:
                found = self.tables[(None, table)] = Table(table, list(columns), [])
            elif found.columns != list(columns):
                raise ValueError(f"table {table} has columns {found.columns}, not {columns}")
            for row in rows:
                unknown = set(row) - set(names)
                if unknown:
                    raise ValueError(f"table {table} has no column {sorted(unknown)[0]}")
                found.rows.append([row.get(c) for c in names])

    def fire_alert(self, target_resource_id: str, name: str, severity: int | str = 3, *, at: datetime | None = None,
                   signal_type: str = "Metric", monitor_service: str = "Platform", description: str = "") -> str:
        """An alert rule `name` fires on the resource; returns the alert's id. A rule that is already firing
        on that resource keeps its alert, as stateful Azure Monitor alerts do."""
        sev = severity if isinstance(severity, str) and severity.lower().startswith("sev") else f"Sev{int(severity)}"
        sev = "Sev" + sev[3:]
        when = _utc(at) if at else self.now()
        target = target_resource_id.rstrip("/")
        with self._lock:
            for alert in self.alerts.values():
                if alert.name == name and _key(alert.target) == _key(target) and alert.condition == "Fired":
                    return alert.id
            sub = _segment(target, "subscriptions") or "00000000-0000-0000-0000-000000000000"
            alert_id = f"/subscriptions/{sub}/providers/Microsoft.AlertsManagement/alerts/{uuid.uuid4()}"
            self.alerts[alert_id] = Alert(alert_id, name, target, sev, signal_type, monitor_service, description,
                                          when, when)
            return alert_id

    def resolve_alert(self, name: str, target_resource_id: str | None = None, *, at: datetime | None = None) -> int:
        """The rule's condition clears: its fired alerts (on one resource, or all) become Resolved.
        Returns how many alerts it resolved."""
        when = _utc(at) if at else self.now()
        resolved = 0
        with self._lock:
            for alert in self.alerts.values():
                if alert.name == name and alert.condition == "Fired" and (
                        target_resource_id is None or _key(alert.target) == _key(target_resource_id)):
                    alert.condition, alert.resolved, alert.modified = "Resolved", when, when
                    resolved += 1
        return resolved

    def inject(self, kind: str, fault: str, count: int = 1, *, seconds: float | None = None) -> None:
        """The next `count` requests of `kind` (metrics, logs, alerts) misbehave: `throttle` (429 with
        Retry-After: 2), `error` (500), `timeout` (held `seconds`, default `timeout_seconds`, then answered),
        `empty` (a valid answer without data points, rows or alerts) or `malformed` (200, a body that is not
        the JSON the client expects). Faults of one kind are used in the order they were injected."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        with self._lock:
            self._faults[kind].append(Fault(fault, count, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            for faults in self._faults.values():
                faults.clear()

    # -- HTTP

    def handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        token = _CLOCK.set(self.now)
        try:
            return self._handle(method, raw_path, raw, headers, base)
        finally:
            _CLOCK.reset(token)

    def _handle(self, method: str, raw_path: str, raw: bytes, headers: dict[str, str], base: str) -> Reply:
        parsed = urlparse(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parsed.path))
        query = {k: v for k, v in parse_qsl(parsed.query, keep_blank_values=True)}
        kind = self._kind(path)
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self.requests.append(Request(method, path, query, body, headers))
            fault = self._take_fault(kind)
        if fault is not None:
            if fault.fault == "timeout":
                self._stopping.wait(self.timeout_seconds if fault.seconds is None else fault.seconds)
            elif fault.fault == "throttle":
                return 429, _kind_error(kind, "TooManyRequests", "Too many requests, retry after 2 seconds "
                                        "(injected)"), {"Retry-After": "2"}
            elif fault.fault == "error":
                return 500, _kind_error(kind, "InternalServerError", "An internal error occurred (injected)"), {}
            elif fault.fault == "malformed":
                return 200, MALFORMED, {}
        empty = fault is not None and fault.fault == "empty"
        if kind == "metrics":
            return self._metrics(method, path, query, empty)
        if kind == "logs":
            return self._logs(method, path, query, body, empty)
        if kind == "alerts":
            return self._alerts(method, path, query, base, empty)
        return 404, _arm_error("NotFound", f"{method} {path} is not emulated"), {}

    @staticmethod
    def _kind(path: str) -> str | None:
        if METRICS_PATH.match(path):
            return "metrics"
        if LOGS_WORKSPACE.match(path) or LOGS_RESOURCE.match(path) or LOGS_BATCH.match(path):
            return "logs"
        if ALERTS_PATH.match(path):
            return "alerts"
        return None

    def _take_fault(self, kind: str | None) -> Fault | None:
        if kind is None:
            return None
        queue = self._faults[kind]
        while queue and queue[0].count <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].count -= 1
        return queue[0]

    # -- metrics

    def _metrics(self, method: str, path: str, query: dict[str, str], empty: bool) -> Reply:
        if method != "GET":
            return 405, _arm_error("MethodNotAllowed", f"{method} is not allowed on metrics"), {}
        if not query.get("api-version"):
            return 400, _missing_api_version(), {}
        resource = METRICS_PATH.match(path)["resource"]  # type: ignore[index]
        now = _now()
        try:
            start, end = _timespan(query.get("timespan"), now, default=timedelta(hours=1))
            interval = query.get("interval") or "PT1M"
            grain = end - start if interval.upper() == "FULL" else _duration(interval)
        except ValueError as exc:
            return 400, _arm_error("BadRequest", str(exc)), {}
        if grain <= timedelta(0) or end <= start:
            return 400, _arm_error("BadRequest", "timespan and interval must be positive"), {}
        names = [n.strip() for n in (query.get("metricnames") or "Requests").split(",") if n.strip()]
        asked = [a.strip().lower() for a in (query.get("aggregation") or "").split(",") if a.strip()]
        for aggregation in asked:
            if aggregation not in AGGREGATIONS:
                return 400, _arm_error("BadRequest", f"Invalid aggregation type '{aggregation}'. Valid types: "
                                                     f"{', '.join(a.capitalize() for a in AGGREGATIONS)}"), {}
        series: list[tuple[str, MetricInfo | None, list[tuple[datetime, float]]]] = []
        for name in names:
            samples = self._samples(resource, name, start, end)
            info = BUILTIN_METRICS.get(name.lower())
            if samples is None:
                namespace = _namespace(resource)
                provider, _, rtype = namespace.partition("/")
                return 400, _arm_error("BadRequest", f"Failed to find metric configuration for provider: {provider}, "
                                                     f"resource Type: {rtype}, metric: {name}, Valid metrics: "
                                                     f"{','.join(m.name for m in BUILTIN_METRICS.values())}"), {}
            series.append((name, info, [] if empty else samples))
        if not asked:  # as Azure: the primary aggregation of the first metric, for all of them
            asked = [(series[0][1].primary if series[0][1] else "Average").lower()]
        first = start if interval.upper() == "FULL" else _floor(start, grain)
        buckets: list[datetime] = []
        at = first
        while at < end:
            buckets.append(at)
            at += grain
        value = []
        for name, info, samples in series:
            by_bucket: dict[int, list[float]] = {}
            for t, v in samples:
                if start <= t < end:
                    by_bucket.setdefault(math.floor((t - first) / grain), []).append(v)
            data = [{"timeStamp": _iso(bucket), **_aggregate(by_bucket.get(i, []), asked)}
                    for i, bucket in enumerate(buckets)]
            value.append({"id": f"{resource}/providers/Microsoft.Insights/metrics/{info.name if info else name}",
                          "type": "Microsoft.Insights/metrics",
                          "name": {"value": info.name if info else name, "localizedValue": info.name if info else name},
                          "displayDescription": info.description if info else "", "unit": info.unit if info else
                          "Unspecified", "errorCode": "Success",
                          "timeseries": [{"metadatavalues": [], "data": data}]})
        return 200, {"cost": len(buckets) * len(series), "timespan": f"{_iso(start)}/{_iso(end)}",
                     "interval": interval, "namespace": _namespace(resource), "resourceregion": self.region,
                     "value": value}, {}

    def _samples(self, resource: str, name: str, start: datetime, end: datetime) -> list[tuple[datetime, float]] | None:
        """Samples of a metric in [start, end), or None for a metric nobody knows."""
        source = self.metrics_source
        if source is not None:
            points = source(resource, name, start, end)
            if points is not None:
                return [(_utc(t), float(v)) for t, v in points.items() if v is not None]
        info = BUILTIN_METRICS.get(name.lower())
        if info is None:
            return None
        with self._lock:
            traffic = list(self.traffic.get(_key(resource), []))
        # App Service emits one measurement per metric per instance and minute, pre-aggregated: a count
        # metric's measurement is the minute's sum, a time metric's its mean. So `Count` is how many
        # measurements there are, not how many requests (learn.microsoft.com, "Azure Monitor metrics
        # aggregation explained"). A measurement is readable once the minute ended plus the ingestion delay.
        readable_until = _now() - timedelta(seconds=self.ingestion_delay_seconds)
        minutes: dict[datetime, list[float]] = {}
        for t in traffic:
            minute = t.at.replace(second=0, microsecond=0)
            if minute < end and minute + timedelta(minutes=1) > start and t.at <= readable_until:
                minutes.setdefault(minute, []).append(info.sample(t.status, t.duration_ms))
        combine = (lambda v: sum(v)) if info.unit == "Count" else (lambda v: sum(v) / len(v))
        # The grain is a minute: a window shorter than a minute sees the measurement of the minute it
        # overlaps (placed at the window's start so that it falls inside it).
        return [(max(minute, start), float(combine(values))) for minute, values in sorted(minutes.items())]

    # -- logs

    def _logs(self, method: str, path: str, query: dict[str, str], body: Any, empty: bool) -> Reply:
        if LOGS_BATCH.match(path):
            if method != "POST" or not isinstance(body, dict) or not isinstance(body.get("requests"), list):
                return 400, _logs_error("BadArgumentError", "The request had some invalid properties",
                                        "a batch needs a JSON body with 'requests'"), {}
            responses = []
            for item in body["requests"]:
                item = item if isinstance(item, dict) else {}
                scope = item.get("workspace") or item.get("resource")
                status, answer, _ = self._query(scope, item.get("body") or {}, empty)
                responses.append({"id": item.get("id"), "status": status, "body": answer})
            return 200, {"responses": responses}, {}
        if m := LOGS_WORKSPACE.match(path):
            scope = m["workspace"]
        else:
            scope = LOGS_RESOURCE.match(path)["resource"]  # type: ignore[index]
        if method == "GET":
            request = {"query": query.get("query"), "timespan": query.get("timespan")}
        elif method == "POST" and isinstance(body, dict):
            request = body
        else:
            return 400, _logs_error("BadArgumentError", "The request had some invalid properties",
                                    "the body must be a JSON object with 'query'"), {}
        return self._query(scope, request, empty)

    def _query(self, scope: str | None, request: dict[str, Any], empty: bool) -> Reply:
        text = request.get("query")
        if not isinstance(text, str) or not text.strip():
            return 400, _logs_error("BadArgumentError", "The request had some invalid properties",
                                    "'query' is required"), {}
        try:
            window = _timespan(request.get("timespan"), _now()) if request.get("timespan") else None
        except ValueError as exc:
            return 400, _logs_error("BadArgumentError", "The request had some invalid properties", str(exc)), {}
        try:
            columns, rows = self._run(scope, text, window)
        except KqlError as exc:
            inner = "A recognition error occurred in the query." if exc.kind == "SyntaxError" else \
                "A semantic error occurred."
            return 400, _logs_error("BadArgumentError", "The request had some invalid properties", exc.detail,
                                    inner_code=exc.kind, inner_message=inner), {}
        table = {"name": "PrimaryResult", "columns": [{"name": c, "type": t} for c, t in columns],
                 "rows": [] if empty else rows}
        return 200, {"tables": [table]}, {}

    def _run(self, scope: str | None, text: str, window: tuple[datetime, datetime] | None) -> tuple[
            list[tuple[str, str]], list[list[Any]]]:
        stages = _split_pipes(text)
        head = stages[0].strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", head):
            raise KqlError("SyntaxError", f"Query could not be parsed at '{head[:40]}': the Monitor emulator "
                                          f"supports only 'Table | where ... | count | take N'")
        with self._lock:
            table = (self.tables.get((_key(scope), head)) if scope else None) or self.tables.get((None, head))
            if table is None:
                raise KqlError("SemanticError", f"Failed to resolve table or column expression named '{head}'")
            columns = list(table.columns)
            rows = [list(r) for r in table.rows]
        if window is not None:
            time_col = next((i for i, (c, t) in enumerate(columns) if c == "TimeGenerated"), None)
            if time_col is not None:
                rows = [r for r in rows if _within(r[time_col], window)]
        for stage in stages[1:]:
            columns, rows = _apply(stage.strip(), columns, rows)
        return columns, [[_cell(v, t) for v, (_, t) in zip(row, columns, strict=True)] for row in rows]

    # -- alerts

    def _alerts(self, method: str, path: str, query: dict[str, str], base: str, empty: bool) -> Reply:
        if not query.get("api-version"):
            return 400, _missing_api_version(), {}
        m = ALERTS_PATH.match(path)
        assert m is not None
        version = ALERT_VERSIONS.get(query["api-version"])
        if version is None:
            return 400, _arm_error("InvalidApiVersionParameter", f"The api-version '{query['api-version']}' is "
                                   f"invalid. The supported versions are '{', '.join(ALERT_VERSIONS)}'."), {}
        scope = m["scope"].rstrip("/")
        if not m["alert"]:
            if version == "subscription" and scope.lower() != f"/subscriptions/{m['sub']}".lower():
                return 404, _arm_error("InvalidResourceType", f"api-version {query['api-version']} lists alerts of "
                                                              f"a subscription only, not of {scope}"), {}
            denied = self._authorization(scope)
            if denied:
                return 403, denied, {}
        with self._lock:
            if m["alert"]:
                alert = next((a for a in self.alerts.values() if a.id.lower() == path.removesuffix(
                    m["change"] or "").lower()), None)
                if alert is None or empty:
                    return 404, _arm_error("ResourceNotFound", f"alert {m['alert']} was not found"), {}
                if m["change"]:
                    if method != "POST":
                        return 405, _arm_error("MethodNotAllowed", "changeState takes POST"), {}
                    state = query.get("newState", "")
                    if state not in ("New", "Acknowledged", "Closed"):
                        return 400, _arm_error("BadRequest", f"invalid newState '{state}'"), {}
                    alert.state, alert.modified = state, _now()
                elif method != "GET":
                    return 405, _arm_error("MethodNotAllowed", f"{method} is not allowed on alerts"), {}
                return 200, self._alert_json(alert, query), {}
            if method != "GET":
                return 405, _arm_error("MethodNotAllowed", f"{method} is not allowed on alerts"), {}
            try:
                found = [] if empty else self._filter_alerts(scope, query)
            except ValueError as exc:
                return 400, _arm_error("BadRequest", str(exc)), {}
            try:
                page = int(query.get("pageCount") or 25)
                offset = int(query.get("ctoken") or 0)
            except ValueError:
                return 400, _arm_error("BadRequest", "pageCount and ctoken must be integers"), {}
            most = 25 if str(query.get("includeContext", "")).lower() == "true" else 250
            if not 1 <= page <= most:
                # pageCount: "Permissible value is between 1 to 250. When the includeContent filter is
                # selected, maximum value allowed is 25. Default value is 25." (the spec)
                return 400, _arm_error("BadRequest", f"pageCount must be between 1 and {most}"), {}
            chunk = found[offset: offset + page]
            result: dict[str, Any] = {"value": [self._alert_json(a, query) for a in chunk]}
            if offset + page < len(found):
                result["nextLink"] = f"{base}{path}?{urlencode({**query, 'ctoken': str(offset + page)})}"
            return 200, result, {}

    def _authorization(self, scope: str) -> dict[str, Any] | None:
        """Azure RBAC: listing alerts at a scope needs `Microsoft.AlertsManagement/alerts/read` there, which a
        role assigned on a resource group does not give at its subscription."""
        if self.readable_scopes is None:
            return None
        if any(_key(scope) == _key(s) or _key(scope).startswith(_key(s) + "/") for s in self.readable_scopes):
            return None
        return _arm_error("AuthorizationFailed", "The client does not have authorization to perform action "
                          f"'Microsoft.AlertsManagement/alerts/read' over scope '{scope}' or the scope is invalid.")

    def _filter_alerts(self, scope: str, query: dict[str, str]) -> list[Alert]:
        now = _now()
        for name, allowed in ALERT_ENUMS.items():
            if query.get(name) and query[name] not in allowed:
                raise ValueError(f"'{query[name]}' is not a valid {name}: one of {', '.join(allowed)}")
        if query.get("customTimeRange") and query.get("timeRange"):
            raise ValueError("Either timeRange or customTimeRange could be used but not both")
        if query.get("customTimeRange"):
            since, until = _timespan(query["customTimeRange"], now)
            if since < now - timedelta(days=30):
                raise ValueError("customTimeRange must be within 30 days from the query time")
        else:
            ranges = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7),
                      "30d": timedelta(days=30)}
            span = ranges[query.get("timeRange") or "1d"]  # "Default value is 1 day." (the spec)
            since, until = now - span, now + timedelta(days=3650)
        checks: dict[str, Callable[[Alert], list[str]]] = {
            "targetResource": lambda a: [_key(a.target)],
            "targetResourceType": lambda a: [_resource_type(a.target).lower(),
                                             _resource_type(a.target).rsplit("/", 1)[-1].lower()],
            "targetResourceGroup": lambda a: [(_segment(a.target, "resourceGroups") or "").lower()],
            "monitorService": lambda a: [a.monitor_service.lower()],
            "monitorCondition": lambda a: [a.condition.lower()],
            "severity": lambda a: [a.severity.lower()],
            "alertState": lambda a: [a.state.lower()],
            "alertRule": lambda a: [a.name.lower(), _rule_id(a).lower()],
        }
        wanted = {name: _key(query[name]) for name in checks if query.get(name)}
        found = [alert for alert in self.alerts.values()
                 if (_key(alert.target) == _key(scope) or _key(alert.target).startswith(_key(scope) + "/"))
                 and since <= alert.modified <= until
                 and all(want in checks[name](alert) for name, want in wanted.items())]
        sort_by = query.get("sortBy") or "lastModifiedDateTime"
        timed = sort_by in ("startDateTime", "lastModifiedDateTime")
        descending = (query.get("sortOrder") or ("desc" if timed else "asc")).lower() == "desc"
        field_of: dict[str, Callable[[Alert], Any]] = {
            "name": lambda a: a.name.lower(), "severity": lambda a: a.severity, "alertState": lambda a: a.state,
            "monitorCondition": lambda a: a.condition, "targetResource": lambda a: _key(a.target),
            "targetResourceName": lambda a: a.target.rsplit("/", 1)[-1].lower(),
            "targetResourceGroup": lambda a: (_segment(a.target, "resourceGroups") or "").lower(),
            "targetResourceType": lambda a: _resource_type(a.target).lower(),
            "startDateTime": lambda a: a.started, "lastModifiedDateTime": lambda a: a.modified,
        }
        if sort_by not in field_of:
            raise ValueError(f"sortBy must be one of {', '.join(field_of)}")
        return sorted(found, key=field_of[sort_by], reverse=descending)

    @staticmethod
    def _alert_json(alert: Alert, query: Mapping[str, str]) -> dict[str, Any]:
        essentials = {
            "severity": alert.severity, "signalType": alert.signal_type, "alertState": alert.state,
            "monitorCondition": alert.condition, "monitorService": alert.monitor_service,
            "targetResource": alert.target, "targetResourceName": alert.target.rsplit("/", 1)[-1],
            "targetResourceGroup": _segment(alert.target, "resourceGroups") or "",
            "targetResourceType": _resource_type(alert.target).rsplit("/", 1)[-1].lower(),
            "sourceCreatedId": alert.id.rsplit("/", 1)[-1], "alertRule": _rule_id(alert),
            "startDateTime": _iso(alert.started), "lastModifiedDateTime": _iso(alert.modified),
            "lastModifiedUserName": "System", "description": alert.description,
            "actionStatus": {"isSuppressed": False},
        }
        if alert.resolved is not None:
            essentials["monitorConditionResolvedDateTime"] = _iso(alert.resolved)
        if query.get("select"):
            wanted = {s.strip().lower() for s in query["select"].split(",")}
            essentials = {k: v for k, v in essentials.items() if k.lower() in wanted}
        properties: dict[str, Any] = {"essentials": essentials}
        if str(query.get("includeContext", "")).lower() == "true":
            properties["context"] = {}
        if str(query.get("includeEgressConfig", "")).lower() == "true":
            properties["egressConfig"] = {}
        return {"id": alert.id, "type": "Microsoft.AlertsManagement/alerts", "name": alert.name,
                "properties": properties}


# -- KQL subset

_COMPARISON = re.compile(r"^\s*(?P<col>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|=~|!~|>=|<=|>|<)\s*(?P<lit>.+?)\s*$",
                         re.S)
_AGO = re.compile(r"^ago\(\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>d|h|m|s|ms)\s*\)$")
_NUMBER_TYPES = ("int", "long", "real", "decimal", "double")


def _split_pipes(text: str) -> list[str]:
    """Split on `|` outside quotes."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "|":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quote:
        raise KqlError("SyntaxError", "Query could not be parsed: unterminated string literal")
    parts.append("".join(current))
    return parts


def _split_and(text: str) -> list[str]:
    parts, current, quote, i = [], "", "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif re.match(r"\sand\s", text[i:i + 5], re.I):
            parts.append(current)
            current, i = "", i + 5
            continue
        current += ch
        i += 1
    parts.append(current)
    return parts


def _apply(stage: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> tuple[
        list[tuple[str, str]], list[list[Any]]]:
    word, _, rest = stage.partition(" ")
    word = word.strip().lower()
    rest = rest.strip()
    if word == "count" and not rest:
        return [("Count", "long")], [[len(rows)]]
    if word in ("take", "limit") and re.fullmatch(r"\d+", rest):
        return columns, rows[: int(rest)]
    if word == "where" and rest:
        for condition in _split_and(rest):
            rows = _where(condition, columns, rows)
        return columns, rows
    raise KqlError("SyntaxError", f"Query could not be parsed at '{stage[:40]}': the Monitor emulator supports "
                                  f"only 'where Column <op> literal [and ...]', 'count', 'take N' and 'limit N'")


def _where(condition: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> list[list[Any]]:
    m = _COMPARISON.match(condition)
    if m is None:
        raise KqlError("SyntaxError", f"Query could not be parsed at '{condition.strip()[:40]}': the Monitor "
                                      f"emulator supports only 'Column <op> literal' conditions")
    names = [c for c, _ in columns]
    if m["col"] not in names:
        raise KqlError("SemanticError", f"'where' operator: Failed to resolve column or scalar expression named "
                                        f"'{m['col']}'")
    index = names.index(m["col"])
    kind = columns[index][1].lower()
    literal = _literal(m["lit"])
    op = m["op"]
    if op in ("=~", "!~"):
        if not isinstance(literal, str):
            raise KqlError("SemanticError", f"operator {op} needs a string literal")
    elif kind == "datetime":
        if not isinstance(literal, datetime):
            raise KqlError("SemanticError", f"Cannot compare values of types datetime and {_type_name(literal)}. "
                                            f"Try adding explicit casts")
    elif kind in _NUMBER_TYPES:
        if isinstance(literal, bool) or not isinstance(literal, int | float):
            raise KqlError("SemanticError", f"Cannot compare values of types {kind} and {_type_name(literal)}. "
                                            f"Try adding explicit casts")
    elif kind == "bool":
        if not isinstance(literal, bool) or op not in ("==", "!="):
            raise KqlError("SemanticError", f"Cannot compare values of types bool and {_type_name(literal)}")
    elif not isinstance(literal, str):
        raise KqlError("SemanticError", f"Cannot compare values of types {kind} and {_type_name(literal)}. "
                                        f"Try adding explicit casts")
    return [row for row in rows if _compare(_typed(row[index], kind), op, literal)]


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(?:e-?\d+)?|-?\d+e-?\d+", text, re.I):
        return float(text)
    if m := re.fullmatch(r"datetime\(\s*['\"]?(?P<v>[^'\")]+)['\"]?\s*\)", text):
        try:
            return _utc(datetime.fromisoformat(m["v"].strip()))
        except ValueError:
            raise KqlError("SyntaxError", f"Query could not be parsed at '{text}': invalid datetime") from None
    if m := _AGO.match(text):
        unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}[m["unit"]]
        return _now() - timedelta(**{unit: float(m["n"])})
    if text == "now()":
        return _now()
    raise KqlError("SyntaxError", f"Query could not be parsed at '{text[:40]}': the Monitor emulator supports only "
                                  f"string, number, bool, datetime(...), ago(...) and now() literals")


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return _utc(value) if isinstance(value, datetime) else _utc(datetime.fromisoformat(str(value)))
    if kind in _NUMBER_TYPES:
        return float(value)
    return value


def _compare(value: Any, op: str, literal: Any) -> bool:
    if value is None:
        return op in ("!=", "!~")
    if op in ("=~", "!~"):
        return (str(value).lower() == literal.lower()) == (op == "=~")
    if isinstance(value, str) and not isinstance(literal, str):
        return False
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    return comparisons[op](value, literal)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime):
        return "datetime"
    return "string"


def _cell(value: Any, kind: str) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if kind == "dynamic" and not isinstance(value, str) and value is not None:
        return json.dumps(value)
    return value


def _within(value: Any, window: tuple[datetime, datetime]) -> bool:
    try:
        at = _typed(value, "datetime")
    except ValueError:
        return False
    return at is not None and window[0] <= at <= window[1]


# -- time and ids


_CLOCK: contextvars.ContextVar[Callable[[], datetime] | None] = contextvars.ContextVar("monitor_clock", default=None)
"""The clock of the emulator answering the current request (the local stack's one clock)."""


def _now() -> datetime:
    clock = _CLOCK.get()
    return clock() if clock is not None else datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    value = _utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_DURATION = re.compile(r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
                       r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.I)


def _duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if m is None or not any(m.groups()):
        raise ValueError(f"'{text}' is not an ISO 8601 duration")
    return timedelta(weeks=float(m["w"] or 0), days=float(m["d"] or 0), hours=float(m["h"] or 0),
                     minutes=float(m["m"] or 0), seconds=float(m["s"] or 0))


def _instant(text: str) -> datetime:
    try:
        return _utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 date and time") from None


def _timespan(text: str | None, now: datetime, default: timedelta | None = None) -> tuple[datetime, datetime]:
    """`start/end`, `start/duration`, `duration/end` or a duration ending now."""
    if not text:
        if default is None:
            raise ValueError("a timespan is required")
        return now - default, now
    first, sep, second = text.strip().partition("/")
    if not sep:
        return now - _duration(first), now
    if first.upper().startswith("P"):
        end = _instant(second)
        return end - _duration(first), end
    start = _instant(first)
    return start, (start + _duration(second) if second.upper().startswith("P") else _instant(second))


def _floor(at: datetime, grain: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    steps = math.floor((at - epoch) / grain)
    return epoch + steps * grain


def _aggregate(points: list[float], aggregations: list[str]) -> dict[str, float]:
    """Values of one time grain; none at all when nothing was sampled, as Azure answers."""
    if not points:
        return {}
    values = {"total": sum(points), "count": float(len(points)), "average": sum(points) / len(points),
              "minimum": min(points), "maximum": max(points)}
    return {a: values[a] for a in aggregations}


def _key(resource_id: str | None) -> str:
    return (resource_id or "").strip().rstrip("/").lower()


def _segment(resource_id: str, name: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == name.lower():
            return parts[i + 1]
    return None


def _resource_type(resource_id: str) -> str:
    """`Microsoft.Web/sites/slots` for a slot's id."""
    head, sep, tail = resource_id.strip("/").rpartition("/providers/")
    if not sep:
        return ""
    parts = tail.split("/")
    return "/".join([parts[0], *parts[1::2]])


def _namespace(resource_id: str) -> str:
    return _resource_type(resource_id) or "Microsoft.Resources/subscriptions"


def _rule_id(alert: Alert) -> str:
    sub = _segment(alert.target, "subscriptions") or ""
    rg = _segment(alert.target, "resourceGroups") or ""
    kind = "metricAlerts" if alert.signal_type == "Metric" else "scheduledQueryRules"
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/{kind}/{alert.name}"


# -- error bodies


def _arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _missing_api_version() -> dict[str, Any]:
    return _arm_error("MissingApiVersionParameter",
                      "The api-version query parameter (?api-version=) is required for all requests.")


def _logs_error(code: str, message: str, detail: str, *, inner_code: str = "BadArgumentError",
                inner_message: str | None = None) -> dict[str, Any]:
    """Log Analytics' error shape: the SDK shows the top code and the innermost message."""
    return {"error": {"message": message, "code": code, "correlationId": str(uuid.uuid4()),
                      "innererror": {"code": inner_code, "message": inner_message or message,
                                     "innererror": {"code": inner_code, "message": detail}}}}


def _kind_error(kind: str | None, code: str, message: str) -> dict[str, Any]:
    if kind == "logs":
        return _logs_error(code, message, message, inner_code=code)
    return _arm_error(code, message)

"""The Azure Monitor emulator, driven by the real SDK clients: azure-mgmt-monitor for metrics,
azure-monitor-query for log queries, and an azure-core pipeline for the Alerts Management API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.credentials import AccessToken
from azure.core.exceptions import DecodeError, HttpResponseError, ServiceResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.monitor import MonitorManagementClient
from azure.monitor.query import LogsBatchQuery, LogsQueryClient, LogsQueryError, LogsQueryStatus

from local.monitor_emulator import MonitorEmulator

SUB = "00000000-0000-0000-0000-0000000000dd"
SITE = f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/tailspin"
STAGING = f"{SITE}/slots/staging"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SPAN = "2030-01-01T12:00:00Z/2030-01-01T12:03:00Z"
ALERTS = f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts"
ALERTS_API = "2019-05-05-preview"
ArmClient = PipelineClient[HttpRequest, HttpResponse]


class DummyCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("t", 2**31 - 1)


class HttpBearerPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """The SDK's bearer policy refuses http:// endpoints; this one sends the credential's token anyway."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def on_request(self, request: Any) -> None:
        token = DummyCredential().get_token(self.scope).token
        request.http_request.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture
def emulator() -> Iterator[MonitorEmulator]:
    with MonitorEmulator() as running:
        yield running


def after_t0(emulator: MonitorEmulator) -> None:
    """The metrics tests' traffic is stamped in 2030: move the emulator's clock past it."""
    emulator.now = lambda: T0 + timedelta(hours=1)


@pytest.fixture
def monitor(emulator: MonitorEmulator) -> Iterator[MonitorManagementClient]:
    scope = "https://management.azure.com/.default"
    with MonitorManagementClient(DummyCredential(), SUB, base_url=emulator.url, credential_scopes=[scope],
                                 authentication_policy=HttpBearerPolicy(scope), retry_total=0) as client:
        yield client


@pytest.fixture
def logs(emulator: MonitorEmulator) -> Iterator[LogsQueryClient]:
    scope = "https://api.loganalytics.io/.default"
    with LogsQueryClient(DummyCredential(), endpoint=emulator.url + "/v1", authentication_policy=HttpBearerPolicy(
            scope), retry_total=0) as client:
        yield client


@pytest.fixture
def arm(emulator: MonitorEmulator) -> Iterator[ArmClient]:
    with PipelineClient(base_url=emulator.url, retry_total=0) as client:
        yield client


def list_alerts(arm: ArmClient, **params: str) -> Any:
    request = HttpRequest("GET", arm.format_url(ALERTS), params={"api-version": ALERTS_API, **params},
                          headers={"Authorization": "Bearer anything"})
    response = arm.send_request(request)
    response.raise_for_status()
    return response.json()


def series(result: Any) -> dict[str, list[Any]]:
    return {m.name.value: m.timeseries[0].data for m in result.value}


# -- metrics


def test_recorded_traffic_shows_as_requests_5xx_and_response_time(emulator: MonitorEmulator,
                                                                  monitor: MonitorManagementClient) -> None:
    after_t0(emulator)
    for second, status, ms in [(5, 200, 100), (20, 500, 300), (40, 200, 200), (70, 503, 1000)]:
        emulator.record(STAGING, T0 + timedelta(seconds=second), status, ms)
    emulator.record(SITE, T0, 500, 50)  # production's traffic is not the slot's

    result = monitor.metrics.list(STAGING, timespan=SPAN, interval="PT1M", aggregation="Total",
                                  metricnames="Requests,Http5xx", filter="Instance eq '*'")
    assert result.namespace == "Microsoft.Web/sites/slots" and result.interval == "PT1M"
    data = series(result)
    assert [p.time_stamp for p in data["Requests"]] == [T0 + timedelta(minutes=i) for i in range(3)]
    assert [p.total for p in data["Requests"]] == [3, 1, None]
    assert [p.total for p in data["Http5xx"]] == [1, 1, None]

    times = monitor.metrics.list(STAGING, timespan=SPAN, interval="PT1M", aggregation="Average",
                                 metricnames="httpresponsetime,AverageResponseTime")
    data = series(times)
    assert [p.average for p in data["HttpResponseTime"]] == [pytest.approx(0.2), pytest.approx(1.0), None]
    assert data["AverageResponseTime"][0].average == pytest.approx(0.2)
    assert {m.unit for m in times.value} == {"Seconds"}

    whole = monitor.metrics.list(STAGING, timespan=SPAN, interval="FULL", aggregation="Total,Count,Maximum",
                                 metricnames="Http5xx")
    point = series(whole)["Http5xx"]
    # one measurement per minute with traffic: Count counts measurements, not requests
    assert len(point) == 1 and (point[0].total, point[0].count, point[0].maximum) == (2, 2, 1)


def test_count_is_measurements_and_new_traffic_waits_for_the_ingestion_delay(
        emulator: MonitorEmulator, monitor: MonitorManagementClient) -> None:
    after_t0(emulator)
    for second in range(0, 60, 6):
        emulator.record(STAGING, T0 + timedelta(seconds=second), 200, 10)
    whole = series(monitor.metrics.list(STAGING, timespan=SPAN, interval="FULL", aggregation="Total,Count",
                                        metricnames="Requests"))["Requests"][0]
    assert (whole.total, whole.count) == (10, 1)
    emulator.now = lambda: T0 + timedelta(seconds=90)
    emulator.ingestion_delay_seconds = 120
    late = series(monitor.metrics.list(STAGING, timespan=SPAN, interval="FULL", aggregation="Total",
                                       metricnames="Requests"))["Requests"][0]
    assert late.total is None  # recorded, not readable yet


def test_no_traffic_is_a_series_of_points_without_values(monitor: MonitorManagementClient) -> None:
    result = monitor.metrics.list(STAGING, timespan=SPAN, interval="PT1M", aggregation="Total",
                                  metricnames="Requests,Http5xx")
    for points in series(result).values():
        assert len(points) == 3
        assert all(p.time_stamp and p.total is None and p.average is None and p.count is None for p in points)


def test_a_metrics_source_answers_instead_of_the_recorded_traffic(emulator: MonitorEmulator,
                                                                  monitor: MonitorManagementClient) -> None:
    asked = []

    def source(resource_id: str, metric: str, start: datetime, end: datetime) -> dict[datetime, float] | None:
        asked.append((resource_id, metric, start, end))
        if metric == "CpuTime":
            return {start + timedelta(minutes=i): float(i) for i in range(10)}
        return None

    after_t0(emulator)
    emulator.metrics_source = source
    emulator.record(STAGING, T0, 200, 10)
    result = monitor.metrics.list(STAGING, timespan="2030-01-01T12:00:00Z/2030-01-01T12:10:00Z", interval="PT5M",
                                  aggregation="Total,Average", metricnames="CpuTime,Requests")
    data = series(result)
    assert [(p.total, p.average) for p in data["CpuTime"]] == [(10, 2), (35, 7)]
    assert [p.total for p in data["Requests"]] == [1, None]  # no answer from the source: recorded traffic
    assert asked[0][1:] == ("CpuTime", T0, T0 + timedelta(minutes=10)) and asked[0][0].lower() == STAGING.lower()

    with pytest.raises(HttpResponseError) as failure:
        monitor.metrics.list(STAGING, timespan=SPAN, metricnames="NoSuchMetric")
    assert failure.value.status_code == 400 and "NoSuchMetric" in str(failure.value)


# -- log queries


@pytest.fixture
def requests_table(emulator: MonitorEmulator) -> datetime:
    now = datetime.now(UTC)
    emulator.set_table("AppRequests", [("TimeGenerated", "datetime"), ("Name", "string"), ("ResultCode", "int"),
                                       ("DurationMs", "real"), ("Success", "bool")], [
        [now - timedelta(minutes=1), "GET /", 200, 12.5, True],
        [now - timedelta(minutes=2), "GET /health", 200, 3.0, True],
        [now - timedelta(minutes=3), "POST /orders", 500, 950.0, False],
        {"TimeGenerated": now - timedelta(minutes=4), "Name": "POST /orders", "ResultCode": 503,
         "DurationMs": 30000.0, "Success": False},
        [now - timedelta(hours=3), "GET /", 500, 1.0, False],  # outside a one-hour timespan
    ])
    return now


def test_a_log_query_counts_and_filters(logs: LogsQueryClient, requests_table: datetime) -> None:
    hour = timedelta(hours=1)
    result = logs.query_workspace("ws-1", "AppRequests | where Success == false | count", timespan=hour)
    assert result.status == LogsQueryStatus.SUCCESS
    assert result.tables[0].columns == ["Count"] and result.tables[0].rows[0]["Count"] == 2

    result = logs.query_workspace("ws-1", "AppRequests | where Name == 'POST /orders' and ResultCode > 500",
                                  timespan=hour)
    rows = result.tables[0].rows
    assert len(rows) == 1 and rows[0]["ResultCode"] == 503 and rows[0]["DurationMs"] == 30000.0
    assert rows[0]["TimeGenerated"] == requests_table - timedelta(minutes=4)  # datetimes come back as datetimes

    everything = logs.query_resource(STAGING, "AppRequests | where ResultCode >= 500 | count", timespan=None)
    assert everything.tables[0].rows[0][0] == 3
    recent = logs.query_workspace("ws-1", "AppRequests | where TimeGenerated > ago(150s) | take 5", timespan=None)
    assert [r["Name"] for r in recent.tables[0].rows] == ["GET /", "GET /health"]


def test_tables_can_belong_to_one_workspace_or_resource(emulator: MonitorEmulator, logs: LogsQueryClient) -> None:
    emulator.set_table("Deploys", [("Slot", "string")], [["staging"]], scope=STAGING)
    emulator.set_table("Deploys", [("Slot", "string")], [["anywhere"], ["else"]])
    assert logs.query_resource(STAGING, "Deploys | count", timespan=None).tables[0].rows[0][0] == 1
    assert logs.query_resource(SITE, "Deploys | count", timespan=None).tables[0].rows[0][0] == 2


def test_unsupported_or_wrong_kql_is_a_400_in_the_log_analytics_format(logs: LogsQueryClient,
                                                                      requests_table: datetime) -> None:
    with pytest.raises(HttpResponseError) as failure:
        logs.query_workspace("ws-1", "AppRequests | summarize count() by bin(TimeGenerated, 5m)", timespan=None)
    error = failure.value.model  # the SDK's LogsQueryError: the top code, the innermost message
    assert failure.value.status_code == 400 and isinstance(error, LogsQueryError)
    assert error.code == "BadArgumentError" and "supports only" in error.message
    assert failure.value.error.innererror["code"] == "SyntaxError"

    with pytest.raises(HttpResponseError) as failure:
        logs.query_workspace("ws-1", "NoSuchTable | count", timespan=None)
    assert "NoSuchTable" in failure.value.model.message and failure.value.error.innererror["code"] == "SemanticError"

    with pytest.raises(HttpResponseError) as failure:
        logs.query_workspace("ws-1", "AppRequests | where Nope == 1", timespan=None)
    assert "Nope" in failure.value.model.message

    ok, bad = logs.query_batch([LogsBatchQuery("ws-1", "AppRequests | take 1", timespan=None),
                                LogsBatchQuery("ws-1", "AppRequests | where ResultCode == 'x'", timespan=None)])
    assert ok.status == LogsQueryStatus.SUCCESS and len(ok.tables[0].rows) == 1
    assert bad.status == LogsQueryStatus.FAILURE and bad.code == "BadArgumentError"


# -- alerts


def test_fired_alerts_are_listed_until_resolved(emulator: MonitorEmulator, arm: ArmClient) -> None:
    emulator.fire_alert(STAGING, "staging-5xx", severity=1)
    emulator.fire_alert(SITE, "production-latency", severity="Sev3")
    assert emulator.fire_alert(STAGING, "staging-5xx") == emulator.fire_alert(STAGING, "staging-5xx")

    fired = list_alerts(arm, targetResource=STAGING, monitorCondition="Fired")["value"]
    assert [a["name"] for a in fired] == ["staging-5xx"]
    essentials = fired[0]["properties"]["essentials"]
    assert essentials["severity"] == "Sev1" and essentials["alertState"] == "New"
    assert essentials["targetResource"] == STAGING and fired[0]["type"] == "Microsoft.AlertsManagement/alerts"
    assert len(list_alerts(arm, monitorCondition="Fired")["value"]) == 2
    assert [a["name"] for a in list_alerts(arm, severity="Sev3")["value"]] == ["production-latency"]

    first = list_alerts(arm, monitorCondition="Fired", pageCount="1")
    assert len(first["value"]) == 1 and "nextLink" in first
    rest = arm.send_request(HttpRequest("GET", first["nextLink"])).json()
    assert len(rest["value"]) == 1 and "nextLink" not in rest

    assert emulator.resolve_alert("staging-5xx") == 1
    assert list_alerts(arm, targetResource=STAGING, monitorCondition="Fired")["value"] == []
    resolved = list_alerts(arm, targetResource=STAGING)["value"]
    assert resolved[0]["properties"]["essentials"]["monitorCondition"] == "Resolved"
    assert "monitorConditionResolvedDateTime" in resolved[0]["properties"]["essentials"]


# -- faults


def call(kind: str, monitor: MonitorManagementClient, logs: LogsQueryClient,
         arm: ArmClient, **kwargs: Any) -> Any:
    """One request of `kind` through its client; returns what the caller would look at."""
    if kind == "metrics":
        result = monitor.metrics.list(STAGING, timespan=SPAN, metricnames="Requests", aggregation="Total", **kwargs)
        return [p.total for p in result.value[0].timeseries[0].data]
    if kind == "logs":
        return logs.query_workspace("ws-1", "AppRequests | count", timespan=None, **kwargs).tables[0].rows
    request = HttpRequest("GET", arm.format_url(ALERTS), params={"api-version": ALERTS_API})
    response = arm.send_request(request, **kwargs)
    response.raise_for_status()
    return response.json()["value"]


@pytest.fixture
def data(emulator: MonitorEmulator, requests_table: datetime) -> MonitorEmulator:
    after_t0(emulator)
    emulator.record(STAGING, T0, 200, 10)
    emulator.fire_alert(STAGING, "staging-5xx")
    return emulator


KINDS = ["metrics", "logs", "alerts"]


@pytest.mark.parametrize("kind", KINDS)
def test_throttling_is_a_429_with_retry_after(kind: str, data: MonitorEmulator, monitor: MonitorManagementClient,
                                              logs: LogsQueryClient, arm: ArmClient) -> None:
    data.inject(kind, "throttle")
    with pytest.raises(HttpResponseError) as failure:
        call(kind, monitor, logs, arm)
    assert failure.value.status_code == 429 and failure.value.response.headers["Retry-After"] == "2"
    assert call(kind, monitor, logs, arm)  # one fault, used up


@pytest.mark.parametrize("kind", KINDS)
def test_server_errors_and_malformed_answers_reach_the_client(kind: str, data: MonitorEmulator,
                                                              monitor: MonitorManagementClient, logs: LogsQueryClient,
                                                              arm: ArmClient) -> None:
    data.inject(kind, "error", count=2)
    data.inject(kind, "malformed")
    for _ in range(2):
        with pytest.raises(HttpResponseError) as failure:
            call(kind, monitor, logs, arm)
        assert failure.value.status_code == 500
    with pytest.raises((DecodeError, HttpResponseError, ValueError)) as broken:  # not the JSON expected
        call(kind, monitor, logs, arm)
    assert getattr(broken.value, "status_code", 200) == 200
    assert call(kind, monitor, logs, arm)


@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_answer_times_the_client_out(kind: str, data: MonitorEmulator, monitor: MonitorManagementClient,
                                            logs: LogsQueryClient, arm: ArmClient) -> None:
    data.inject(kind, "timeout", seconds=0.8)
    with pytest.raises(ServiceResponseError):
        call(kind, monitor, logs, arm, read_timeout=0.3)
    assert call(kind, monitor, logs, arm)


def test_empty_answers_are_valid_but_hold_no_data(data: MonitorEmulator, monitor: MonitorManagementClient,
                                                  logs: LogsQueryClient, arm: ArmClient) -> None:
    for kind in KINDS:
        data.inject(kind, "empty")
    assert call("metrics", monitor, logs, arm) == [None, None, None]
    assert call("logs", monitor, logs, arm) == []
    assert call("alerts", monitor, logs, arm) == []
    assert call("metrics", monitor, logs, arm) == [1, None, None]
    assert call("logs", monitor, logs, arm)[0][0] == 5
    assert len(call("alerts", monitor, logs, arm)) == 1


def test_any_bearer_token_is_accepted_and_requests_are_recorded(emulator: MonitorEmulator,
                                                                monitor: MonitorManagementClient) -> None:
    monitor.metrics.list(STAGING, timespan=SPAN, metricnames="Requests")
    seen = emulator.requests[-1]
    assert seen.method == "GET" and seen.path == f"{STAGING}/providers/Microsoft.Insights/metrics"
    assert seen.query["metricnames"] == "Requests" and seen.query["api-version"]
    assert seen.headers["Authorization"] == "Bearer t"

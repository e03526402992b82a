"""The gate signal adapter with the real Azure SDK clients against the Azure Monitor emulator:
values from served traffic, log queries, fired alerts, REST probes, and every fault as a reading
that is never a pass (Retry-After carried)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.monitor_emulator import MonitorEmulator
from shared.adapters.monitor_signals import MonitorSignals
from shared.config import Settings
from shared.domain.gates import judge
from shared.domain.vocabulary import Verdict

SLOT = ("/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg/providers/Microsoft.Web/sites/app"
        "/slots/staging")
SITE = SLOT.split("/slots/")[0]
FIVE_XX = {"name": "5xx", "type": "metric", "metric": "Http5xx", "aggregation": "Total", "windowMinutes": 5,
           "operator": "<=", "threshold": 0}


@pytest.fixture
def monitor() -> Iterator[MonitorEmulator]:
    with MonitorEmulator() as running:
        yield running


@pytest.fixture
def signals(monitor: MonitorEmulator) -> MonitorSignals:
    settings = Settings(monitor_endpoint=monitor.url, logs_endpoint=monitor.url, arm_auth="local-emulator")
    return MonitorSignals(settings, timeout_seconds=0.5)


def now() -> datetime:
    return datetime.now(UTC)


def test_metrics_come_from_the_traffic_the_slot_served(monitor: MonitorEmulator, signals: MonitorSignals) -> None:
    for status, ms in ((200, 100), (500, 300), (200, 200), (503, 400)):
        monitor.record(SLOT, now() - timedelta(seconds=30), status, ms)
    errors = signals.read(FIVE_XX, SLOT, now())
    assert errors.value == 2.0 and judge(FIVE_XX, errors)[0] == "fail"
    latency = {"name": "rt", "type": "metric", "metric": "HttpResponseTime", "aggregation": "Average",
               "windowMinutes": 5, "operator": "<", "threshold": 0.5}
    reading = signals.read(latency, SLOT, now())
    assert reading.value == pytest.approx(0.25) and judge(latency, reading)[0] == Verdict.PASS
    other = signals.read({**FIVE_XX, "resourceId": SITE}, SLOT, now())  # another resource: no traffic
    assert other.value is None and other.inconclusive and "no Http5xx data" in other.inconclusive


def test_log_queries_and_alerts(monitor: MonitorEmulator, signals: MonitorSignals) -> None:
    monitor.set_table("AppExceptions", [("TimeGenerated", "datetime"), ("AppRoleName", "string")],
                      [[now() - timedelta(minutes=1), "app"], [now() - timedelta(minutes=2), "other"]])
    query = {"name": "exceptions", "type": "logQuery", "workspaceId": "00000000-0000-0000-0000-000000000001",
             "query": "AppExceptions | where AppRoleName == 'app'", "operator": "==", "threshold": 0}
    assert signals.read(query, SLOT, now()).value == 1.0
    counted = {**query, "query": "AppExceptions | count", "column": "Count"}
    assert signals.read(counted, SLOT, now()).value == 2.0
    bad = signals.read({**query, "query": "AppExceptions | summarize by nope"}, SLOT, now())
    assert bad.error and judge(query, bad)[0] == "error"
    alerts = {"name": "alerts", "type": "alerts"}
    assert signals.read(alerts, SLOT, now()).value == 0.0
    monitor.fire_alert(SITE, "High CPU", severity=2)
    fired = signals.read(alerts, SLOT, now())  # alerts are raised on the app, the stage targets its slot
    assert fired.value == 1.0 and judge(alerts, fired)[0] == "fail"


def test_alerts_of_any_listed_severity_count_over_every_page_and_past_one_day(
        monitor: MonitorEmulator, signals: MonitorSignals) -> None:
    severe = {"name": "severe", "type": "alerts", "severities": ["Sev0", "Sev1"]}
    monitor.fire_alert(SITE, "Low disk", severity=3)
    assert signals.read(severe, SLOT, now()).value == 0.0
    monitor.fire_alert(SITE, "Errors up", severity=1)
    assert signals.read(severe, SLOT, now()).value == 1.0  # one Sev1 firing: never hidden by a list of two
    for i in range(300):  # more than one page of 250
        monitor.fire_alert(SITE, f"noise {i}", severity=4)
    monitor.fire_alert(SITE, "Old and still firing", severity=0, at=now() - timedelta(days=3))
    assert signals.read(severe, SLOT, now()).value == 2.0
    everything = signals.read({"name": "all", "type": "alerts"}, SLOT, now())
    assert everything.value == 303.0
    listed = [r for r in monitor.requests if "alertsmanagement" in r.path.lower()]
    assert all("," not in r.query.get("severity", "") for r in listed)
    assert any("ctoken" in r.query for r in listed)  # the next page was read


def test_alerts_are_listed_where_the_reader_role_is(monitor: MonitorEmulator, signals: MonitorSignals) -> None:
    group = SITE.split("/providers/")[0]
    monitor.readable_scopes = [group]  # Monitoring Reader on the app's resource group, as infra/ grants
    monitor.fire_alert(SITE, "Errors up", severity=1)
    assert signals.read({"name": "a", "type": "alerts"}, SLOT, now()).value == 1.0
    other = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/elsewhere/providers/" \
            "Microsoft.Web/sites/x"
    refused = signals.read({"name": "a", "type": "alerts", "scope": other}, SLOT, now())
    assert refused.error and "HTTP 403" in refused.error


def test_the_alerts_emulator_refuses_what_the_service_refuses(monitor: MonitorEmulator) -> None:
    import httpx

    base = f"{monitor.url}/subscriptions/00000000-0000-0000-0000-0000000000aa/providers/" \
           "Microsoft.AlertsManagement/alerts"
    v = {"api-version": "2025-05-25-preview"}
    assert httpx.get(base, params={**v, "severity": "Sev0,Sev1"}).status_code == 400
    assert httpx.get(base, params={**v, "timeRange": "2d"}).status_code == 400
    assert httpx.get(base, params={**v, "timeRange": "1d", "customTimeRange": "2026-01-01/2026-01-02"}
                     ).status_code == 400
    assert httpx.get(base, params={**v, "pageCount": "251"}).status_code == 400
    assert httpx.get(base, params={"api-version": "2099-01-01"}).status_code == 400
    group = base.replace("/providers/", "/resourceGroups/rg/providers/")
    assert httpx.get(group, params={"api-version": "2019-05-05-preview"}).status_code == 404
    monitor.fire_alert(SITE, "Yesterday's", severity=1, at=now() - timedelta(days=2))
    assert httpx.get(base, params=v).json()["value"] == []  # the default time range is one day
    assert len(httpx.get(base, params={**v, "timeRange": "7d"}).json()["value"]) == 1


@pytest.mark.parametrize("fault, expect", [
    ("throttle", "throttled"), ("error", "HTTP 500"), ("timeout", "Error"), ("malformed", "unreadable"),
    ("empty", None)])
@pytest.mark.parametrize("kind", ["metrics", "logs", "alerts"])
def test_every_fault_is_a_reading_that_never_passes(monitor: MonitorEmulator, signals: MonitorSignals, kind: str,
                                                    fault: str, expect: str | None) -> None:
    monitor.record(SLOT, now() - timedelta(seconds=10), 200, 50)
    signal: dict[str, Any] = {
        "metrics": FIVE_XX,
        "logs": {"name": "q", "type": "logQuery", "resourceId": SLOT, "query": "AppExceptions", "column": "x",
                 "operator": "==", "threshold": 0},
        "alerts": {"name": "alerts", "type": "alerts"}}[kind]
    monitor.set_table("AppExceptions", [("x", "long")], [[0]])
    monitor.inject(kind, fault, seconds=2 if fault == "timeout" else None)
    reading = signals.read(signal, SLOT, now())
    verdict, why = judge(signal, reading)
    if fault == "empty" and kind == "alerts":
        assert verdict == Verdict.PASS  # an empty list of fired alerts is the answer "none is firing"
        return
    assert verdict != Verdict.PASS, (reading, why)
    if expect:
        assert expect in why, why
    if fault == "throttle":
        assert reading.retry_after == 2


class _Status(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        _Status.seen.append(dict(self.headers.items()))
        body = {"/ok": (200, {"status": "ok", "checks": [{"db": "up"}], "long": "x" * 5000}),
                "/down": (503, {"status": "down"}), "/busy": (429, {})}.get(self.path, (404, {}))
        data = json.dumps(body[1]).encode() if self.path != "/garbage" else b"<html>"
        self.send_response(body[0] if self.path != "/garbage" else 200)
        if self.path == "/busy":
            self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_rest_probes(signals: MonitorSignals, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        probe = {"name": "status", "type": "rest", "url": f"{base}/ok", "jsonPath": "$.status", "threshold": "ok"}
        assert judge(probe, signals.read(probe, SLOT, now()))[0] == Verdict.PASS
        nested = {**probe, "jsonPath": "$.checks[0].db", "threshold": "up"}
        assert judge(nested, signals.read(nested, SLOT, now()))[0] == Verdict.PASS
        down = signals.read({**probe, "url": f"{base}/down"}, SLOT, now())
        assert judge(probe, down) == ("fail", "HTTP 503, expected 200")
        busy = signals.read({**probe, "url": f"{base}/busy"}, SLOT, now())
        assert busy.error and busy.retry_after == 7
        garbage = signals.read({**probe, "url": f"{base}/garbage"}, SLOT, now())
        assert judge(probe, garbage)[0] == "error"
        long = signals.read({**probe, "jsonPath": "$.long"}, SLOT, now())
        assert isinstance(long.value, str) and len(long.value) <= 201  # samples keep short text only
        monkeypatch.setenv("STATUS_KEY", "s3cret")
        monkeypatch.setenv("AzureWebJobsStorage", "AccountKey=storage-secret")
        keyed = {"name": "k", "type": "rest", "url": f"{base}/ok", "headersFromSettings": {"X-Key": "STATUS_KEY"}}
        _Status.seen.clear()
        refused = signals.read(keyed, SLOT, now())
        assert refused.error and "allowlist" in refused.error and _Status.seen == []  # nothing was sent
        signals.settings = Settings(**{**signals.settings.__dict__,
                                       "gate_header_settings": "STATUS_KEY@127.0.0.1,AzureWebJobsStorage"})
        assert judge(keyed, signals.read(keyed, SLOT, now()))[0] == Verdict.PASS
        assert _Status.seen[-1]["X-Key"] == "s3cret"
        storage = {**keyed, "headersFromSettings": {"X-Key": "AzureWebJobsStorage"}}
        assert "never sent" in (signals.read(storage, SLOT, now()).error or "")
        elsewhere = {**keyed, "url": keyed["url"].replace("127.0.0.1", "localhost")}
        assert "127.0.0.1 only" in (signals.read(elsewhere, SLOT, now()).error or "")
        assert all("storage-secret" not in str(h) for h in _Status.seen)
    finally:
        server.shutdown()

"""The local Functions host keeps the real host's semantics: routes, base64 queues, poison, timers."""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from local.azurite import Azurite
from local.functions_host import FunctionsHost, HostError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hostapp"


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    target = tmp_path / "app"
    shutil.copytree(FIXTURE, target)
    (target / "records").mkdir()
    return target


def start(app_dir: Path, azurite: Azurite, unique: str, **settings: str) -> FunctionsHost:
    overrides = {"AzureWebJobsStorage": azurite.connection_string, "WORK_QUEUE": f"work{unique}",
                 "RECORD_DIR": str(app_dir / "records"), **settings}
    return FunctionsHost(app_dir, http_port=0, settings_overrides=overrides).start()


@pytest.fixture
def host(app_dir: Path, azurite: Azurite, unique: str) -> Iterator[FunctionsHost]:
    running = start(app_dir, azurite, unique)
    yield running
    running.stop()


def records(app_dir: Path, kind: str) -> list[dict[str, Any]]:
    path = app_dir / "records" / f"{kind}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_first_run_creates_local_settings_from_the_example(host: FunctionsHost, app_dir: Path) -> None:
    assert json.loads((app_dir / "local.settings.json").read_text())["Values"]["TICK_SCHEDULE"] == "* * * * * *"


def test_routes_prefix_constraints_and_decoding(host: FunctionsHost) -> None:
    got = httpx.post(f"{host.base_url}/api/items/42/Pre%20prod?x=1&y=", content=b"hello",
                     headers={"X-Test": "yes"})
    assert got.status_code == 201
    assert got.json() == {"route": {"itemId": "42", "name": "Pre prod"}, "params": {"x": "1", "y": ""},
                          "method": "POST", "header": "yes", "body": "hello", "principal": None}
    assert httpx.get(f"{host.base_url}/api/items/forty/two").status_code == 404  # :int
    assert httpx.get(f"{host.base_url}/api/items/2147483648/a").status_code == 404  # beyond Int32
    assert httpx.get(f"{host.base_url}/api/items/-2147483648/a").status_code == 201
    assert httpx.get(f"{host.base_url}/api/items/٤٢/a").status_code == 404  # ASCII digits only
    assert httpx.get(f"{host.base_url}/items/42/a").status_code == 404  # no prefix
    assert httpx.delete(f"{host.base_url}/api/items/42/a").status_code == 404  # no route takes DELETE
    assert httpx.get(f"{host.base_url}/api/files/a/b/c.txt").text == "a/b/c.txt"


def test_head_has_no_body_and_a_keep_alive_connection_stays_in_step(host: FunctionsHost) -> None:
    import socket

    with socket.create_connection((host.http_host, host.http_port)) as conn:
        conn.sendall(b"HEAD /api/files/abc HTTP/1.1\r\nHost: x\r\n\r\nGET /api/files/next HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1") < 2 or not data.endswith(b"next"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    first, second = data.split(b"HTTP/1.1 ", 2)[1:]
    assert first.startswith(b"200") and b"Content-Length: 3" in first and first.endswith(b"\r\n\r\n")
    assert second.startswith(b"200") and second.endswith(b"next")


def test_an_exception_is_a_bare_500(host: FunctionsHost) -> None:
    got = httpx.get(f"{host.base_url}/api/boom")
    assert got.status_code == 500 and "secret" not in got.text


def test_request_paths_are_logged_without_tokens_or_keys(host: FunctionsHost,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="local.functions_host"):
        httpx.get(f"{host.base_url}/api/files/approve/LINKTOKEN9?code=KEY77")
    assert "/api/files/approve/***" in caplog.text
    assert "LINKTOKEN9" not in caplog.text and "KEY77" not in caplog.text


def test_app_service_authentication_strips_outside_principals_and_signs_in_tokens(
        app_dir: Path, azurite: Azurite, unique: str) -> None:
    from local.easy_auth import LocalEntra

    entra = LocalEntra()
    overrides = {"AzureWebJobsStorage": azurite.connection_string, "WORK_QUEUE": f"work{unique}",
                 "RECORD_DIR": str(app_dir / "records"), "WEBSITE_AUTH_ENABLED": "true"}
    host = FunctionsHost(app_dir, http_port=0, settings_overrides=overrides, entra=entra).start()
    try:
        url = f"{host.base_url}/api/items/1/a"
        forged = httpx.get(url, headers={"X-Test": "x", "X-MS-CLIENT-PRINCIPAL": "Zm9yZ2Vk",
                                         "x-ms-client-principal-name": "tim@contoso.com"})
        assert forged.status_code == 201 and forged.json()["header"] == "x"
        assert forged.json()["principal"] is None  # stripped: the outside cannot say who it is
        token = entra.token(name="tim@contoso.com", roles=["Slipway.Reader"])
        signed = httpx.get(url, headers={"Authorization": f"Bearer {token}",
                                         "X-MS-CLIENT-PRINCIPAL-NAME": "mallory@evil.example"})
        assert signed.json()["principal"] == "tim@contoso.com"
        assert httpx.get(f"{host.base_url}/.auth/me").status_code == 401
        bad = httpx.get(url, headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
        assert bad.status_code == 401
        other = LocalEntra().token(name="tim@contoso.com")  # signed by another tenant's key
        assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 401
        login = httpx.post(f"{host.base_url}/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fitems%2F1%2Fa",
                           data={"name": "tim@contoso.com"})
        assert login.status_code == 302 and login.headers["Location"] == "/api/items/1/a"
        me = httpx.get(f"{host.base_url}/.auth/me", cookies=login.cookies)
        claims = {c["typ"]: c["val"] for c in me.json()[0]["user_claims"]}
        assert claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] == "tim@contoso.com"
    finally:
        host.stop()


def send(connection: str, queue: str, text: str, *, encode: bool = True, delay: int | None = None) -> None:
    client = QueueClient.from_connection_string(connection, queue)
    try:
        client.create_queue()
    except Exception:
        pass
    client.send_message(base64.b64encode(text.encode()).decode() if encode else text, visibility_timeout=delay)


def poison(connection: str, queue: str) -> list[str]:
    client = QueueClient.from_connection_string(connection, f"{queue}-poison")
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except Exception:
        return []


def test_a_base64_message_is_delivered_once_decoded(host: FunctionsHost, app_dir: Path, azurite: Azurite,
                                                     unique: str) -> None:
    send(azurite.connection_string, f"work{unique}", "hello queue")
    assert eventually(lambda: records(app_dir, "work")) == [{"body": "hello queue", "dequeue": 1}]


def test_a_failing_message_is_retried_then_poisoned(host: FunctionsHost, app_dir: Path, azurite: Azurite,
                                                    unique: str) -> None:
    send(azurite.connection_string, f"work{unique}", "please fail")
    moved = eventually(lambda: poison(azurite.connection_string, f"work{unique}"))
    assert [base64.b64decode(m).decode() for m in moved] == ["please fail"]
    assert [r["dequeue"] for r in records(app_dir, "work")] == [1, 2, 3]  # maxDequeueCount 3


def test_a_poison_queues_failing_message_is_retried_never_poisoned_again(app_dir: Path, azurite: Azurite,
                                                                        unique: str) -> None:
    queue = f"work{unique}-poison"
    host = start(app_dir, azurite, unique, WORK_QUEUE=queue)
    try:
        send(azurite.connection_string, queue, "please fail")
        assert eventually(lambda: len(records(app_dir, "work")) >= 5)  # past maxDequeueCount (3): still retried
        assert poison(azurite.connection_string, queue) == []  # no `-poison-poison` queue
    finally:
        host.stop()


def test_a_message_that_is_not_base64_goes_straight_to_poison(host: FunctionsHost, app_dir: Path,
                                                               azurite: Azurite, unique: str) -> None:
    send(azurite.connection_string, f"work{unique}", "{not base64}", encode=False)
    assert eventually(lambda: poison(azurite.connection_string, f"work{unique}")) == ["{not base64}"]
    assert records(app_dir, "work") == []


def test_a_delayed_message_waits_for_its_visibility(host: FunctionsHost, app_dir: Path, azurite: Azurite,
                                                    unique: str) -> None:
    sent = time.monotonic()
    send(azurite.connection_string, f"work{unique}", "later", delay=2)
    assert eventually(lambda: records(app_dir, "work"))
    assert time.monotonic() - sent >= 1.9


def test_timer_fires_on_its_expanded_schedule(host: FunctionsHost, app_dir: Path) -> None:
    assert eventually(lambda: len(records(app_dir, "tick")) >= 2)


def test_timers_fire_on_the_stacks_accelerated_clock(app_dir: Path, azurite: Azurite, unique: str) -> None:
    from datetime import UTC, datetime

    from shared.adapters.clock import ScaledClock

    clock = ScaledClock(datetime(2026, 11, 30, 2, 59, 58, tzinfo=UTC), 3600)  # an hour per real second
    overrides = {"AzureWebJobsStorage": azurite.connection_string, "WORK_QUEUE": f"work{unique}",
                 "RECORD_DIR": str(app_dir / "records"), "TICK_SCHEDULE": "0 0 * * * *"}  # hourly
    host = FunctionsHost(app_dir, http_port=0, settings_overrides=overrides, clock=clock).start()
    try:
        started = time.monotonic()
        assert eventually(lambda: len(records(app_dir, "tick")) >= 3, timeout=10)
        assert time.monotonic() - started < 6  # three simulated hours, not three real ones
        assert not any(r["past_due"] for r in records(app_dir, "tick"))
    finally:
        host.stop()


def test_a_five_field_schedule_is_refused(app_dir: Path, azurite: Azurite, unique: str) -> None:
    with pytest.raises(HostError, match="6-field NCRONTAB"):
        start(app_dir, azurite, unique, TICK_SCHEDULE="*/5 * * * *").stop()


def test_stop_ends_every_thread_and_closes_the_port(app_dir: Path, azurite: Azurite, unique: str) -> None:
    import threading

    before = set(threading.enumerate())
    running = start(app_dir, azurite, unique)
    url = running.base_url
    running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/boom")
    left = [t.name for t in set(threading.enumerate()) - before if t.name.startswith(("queue:", "timer:", "fn:"))]
    assert left == []

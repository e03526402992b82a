"""http-request steps: a call judged by its answer, or completed by a callback to a single-use URL;
retries on 429/5xx, refusals of addresses the app must not call, callbacks forged, replayed or late."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import azure.functions as func
import pytest

from functions import callbacks_api
from functions import releases_api as rels
from shared import bootstrap
from shared.adapters.http_probe import HttpxProbe
from shared.config import STEPS_QUEUE
from shared.domain.errors import Invalid
from shared.services import definitions, releases
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)


class Service:
    """A REST service on loopback: records every call and answers from a script."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _go(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.calls.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": raw.decode()})
                status, headers, text = service.answers.pop(0) if service.answers else (200, {}, "{}")
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _go

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def service(world: World) -> Iterator[Service]:
    world.deps.probe = HttpxProbe("127.0.0.1")
    running = Service()
    yield running
    running.server.shutdown()


def run(world: World, steps: list[dict[str, Any]], until_waiting: bool = False) -> tuple[int, Any]:
    """Release it and run its steps; `until_waiting`: only until the first step waits for its callback
    (the pump would move the clock past the callback's timeout)."""
    did = int(world.define([stage("Production", steps=steps)])["id"])
    rel = world.release(did)
    if not until_waiting:
        world.pump()
    while until_waiting and not world.get(rel.id).stages["Production"].current.steps[0].state.get("requested"):
        msg = world.receive()[0]
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
        world.queue().delete_message(msg)
    return rel.id, world.get(rel.id).stages["Production"].current


def test_an_answer_that_meets_the_criteria_succeeds_and_its_outputs_feed_the_next_step(
        world: World, service: Service) -> None:
    service.answers = [(200, {"Content-Type": "application/json"}, json.dumps({"status": "Healthy", "id": 42}))]
    first = {"type": "http-request", "name": "open ticket", "url": service.url + "/tickets?code=SECRETKEY",
             "body": {"release": "$(Release.ReleaseName)", "stage": "$(Release.EnvironmentName)"},
             "criteria": [{"jsonPath": "$.status", "value": "Healthy"}], "outputs": {"ticket": "$.id"}}
    second = {"type": "http-request", "name": "close ticket", "method": "PUT",
              "url": service.url + "/tickets/$(ticket)"}
    rid, dep = run(world, [first, second])
    assert dep.status == "succeeded", dep.failure
    assert json.loads(service.calls[0]["body"]) == {"release": "Release-1", "stage": "Production"}
    assert service.calls[1]["method"] == "PUT" and service.calls[1]["path"] == "/tickets/42"
    key = service.calls[0]["headers"]["Idempotency-Key"]
    assert key.startswith(f"slipway-{rid}-") and key != service.calls[1]["headers"]["Idempotency-Key"]
    log = releases.step_log(world.deps, rid, "Production", 1, 0)[2]
    assert "output ticket = 42" in log and "SECRETKEY" not in log


def test_a_criterion_that_fails_fails_the_step_with_what_was_seen(world: World, service: Service) -> None:
    service.answers = [(200, {}, json.dumps({"status": "Degraded"}))]
    _, dep = run(world, [{"type": "http-request", "url": service.url, "method": "GET",
                          "criteria": [{"jsonPath": "$.status", "value": "Healthy"}]}])
    assert dep.status == "failed" and "$.status is 'Degraded', expected == 'Healthy'" in dep.failure


def test_throttling_and_server_errors_are_retried_then_a_client_error_fails(world: World, service: Service) -> None:
    service.answers = [(429, {"Retry-After": "7"}, ""), (503, {}, ""), (200, {}, "{}")]
    _, dep = run(world, [{"type": "http-request", "url": service.url}])
    assert dep.status == "succeeded" and len(service.calls) == 3
    assert len({c["headers"]["Idempotency-Key"] for c in service.calls}) == 1  # the same call, repeated
    service.answers = [(400, {}, "no such thing")]
    _, dep = run(world, [{"type": "http-request", "url": service.url}])
    assert dep.status == "failed" and "HTTP 400, expected 2xx: no such thing" in dep.failure


def test_a_service_that_stays_down_fails_the_step_at_its_timeout(world: World, service: Service) -> None:
    service.answers = [(500, {}, "")] * 100
    _, dep = run(world, [{"type": "http-request", "url": service.url, "timeoutMinutes": 5}])
    assert dep.status == "failed" and "HTTP 500 (gave up at" in dep.failure


@pytest.mark.parametrize("url, why", [("http://169.254.169.254/metadata/identity", "link-local"),
                                      ("http://[::1]:9/", "loopback")])
def test_addresses_the_app_must_never_call_are_refused(world: World, url: str, why: str) -> None:
    world.deps.probe = HttpxProbe("")
    _, dep = run(world, [{"type": "http-request", "url": url, "timeoutMinutes": 1}])
    assert dep.status == "failed" and why in dep.failure


def test_credentials_in_plain_headers_are_refused_at_save(world: World) -> None:
    step = {"type": "http-request", "url": "https://api.example.com", "headers": {"Authorization": "Bearer x"}}
    with pytest.raises(Invalid) as caught:
        definitions.create(world.deps, {"name": "T", "artifacts": [{"alias": "web", "source": "s"}],
                                        "stages": [stage("Production", steps=[step])]}, by="amita")
    assert caught.value.errors[0].field.startswith("stages[0].steps[0]")
    assert "headersFromSecrets" in caught.value.errors[0].message


@pytest.mark.parametrize("source, name, value", [
    ("headers", "Host", "internal.contoso.com"), ("headers", "content-length", "0"),
    ("headers", "Transfer-Encoding", "chunked"), ("headers", "Connection", "close"),
    ("headers", "X-Slipway-Callback", "https://evil.example/cb"), ("headers", "Idempotency-Key", "mine"),
    ("headersFromSettings", "x-slipway-anything", "SOME_SETTING"),
    ("headersFromSecrets", "Host", "https://kv-tailspin.vault.azure.net/secrets/host")])
def test_framing_hop_by_hop_and_slipway_headers_are_refused_at_save_naming_the_field(
        world: World, source: str, name: str, value: str) -> None:
    step = {"type": "http-request", "url": "https://api.example.com", source: {name: value}}
    with pytest.raises(Invalid) as caught:
        definitions.create(world.deps, {"name": "T", "artifacts": [{"alias": "web", "source": "s"}],
                                        "stages": [stage("Production", steps=[step])]}, by="amita")
    [error] = caught.value.errors
    assert error.field.startswith("stages[0].steps[0]") and source in error.field, error.field
    assert f"header {name}" in error.message


def test_ordinary_headers_are_kept(world: World) -> None:
    step = {"type": "http-request", "url": "https://api.example.com",
            "headers": {"Accept": "application/json", "X-Request-Source": "slipway", "Content-Type": "text/plain"}}
    created = definitions.create(world.deps, {"name": "T", "artifacts": [{"alias": "web", "source": "s"}],
                                              "stages": [stage("Production", steps=[step])]}, by="amita")
    assert created["stages"][0]["steps"][0]["headers"]["X-Request-Source"] == "slipway"


def test_a_reserved_header_is_a_400_from_the_api_naming_the_field(api: World) -> None:  # noqa: F811
    from functions import definitions_api as defs
    step = {"type": "http-request", "url": "https://api.example.com", "headers": {"Transfer-Encoding": "chunked"}}
    body = {"name": "T", "artifacts": [{"alias": "web", "source": "s"}], "stages": [stage("Production", steps=[step])]}
    status, problem = call(defs.definitions_collection, "POST", body)
    assert status == 400, problem
    assert "headers" in json.dumps(problem) and "Transfer-Encoding" in json.dumps(problem)


def post_callback(token: str, body: Any) -> tuple[int, Any]:
    req = func.HttpRequest("POST", f"http://localhost/api/callbacks/{token}", body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"}, route_params={"token": token})
    resp = callbacks_api.step_callback(req)
    return resp.status_code, json.loads(resp.get_body() or b"null")


CALLBACK = {"type": "http-request", "name": "run smoke tests", "completion": "callback", "timeoutMinutes": 30,
            "body": {"callback": "$(Slipway.CallbackUrl)"}, "outputs": {"report": "$.outputs.report"}}


def test_a_callback_completes_the_step_once_and_is_refused_after(api: World, service: Service) -> None:  # noqa: F811
    service.answers = [(202, {}, "")]
    rid, dep = run(api, [{**CALLBACK, "url": service.url}, {"type": "wait", "seconds": 0}], True)
    assert dep.status == "inProgress" and dep.steps[0].status == "inProgress"
    url = service.calls[0]["headers"]["X-Slipway-Callback"]
    assert json.loads(service.calls[0]["body"]) == {"callback": url}
    token = url.rsplit("/", 1)[1]
    assert post_callback(token[:-3] + "abc", {"result": "succeeded"})[0] == 404  # forged
    assert post_callback(token, {"result": "maybe"})[0] == 400
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(post_callback(
        token, {"result": "succeeded", "message": "12 passed", "outputs": {"report": "https://r/1"}})[0]))
        for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 410, 410]
    api.pump()
    dep = api.get(rid).stages["Production"].current
    assert dep.status == "succeeded" and dep.steps[0].message == "callback: succeeded: 12 passed"
    assert dep.steps[0].state["outputs"] == {"report": "https://r/1"}
    log = releases.step_log(api.deps, rid, "Production", 1, 0)[2]  # the callback's lines once, after the call
    assert log.count("callback received: succeeded: 12 passed") == 1
    assert log.index("--- run 1 started") < log.index("callback received") < log.index("output report = https://r/1")
    assert post_callback(token, {"result": "failed"})[0] == 410  # replayed
    view = call(rels.release_item, "GET", releaseId=rid)[1]
    assert view["stages"][0]["deployments"][0]["steps"][0]["outputs"] == {"report": "https://r/1"}


def test_a_failed_callback_fails_the_step_with_its_message(api: World, service: Service) -> None:  # noqa: F811
    service.answers = [(202, {}, "")]
    rid, _ = run(api, [{**CALLBACK, "url": service.url}], True)
    token = service.calls[0]["headers"]["X-Slipway-Callback"].rsplit("/", 1)[1]
    assert post_callback(token, {"result": "failed", "message": "3 of 12 failed"}) == (200, {"accepted": True,
                                                                                             "step": "failed"})
    dep = api.get(rid).stages["Production"].current
    assert dep.status == "failed" and "3 of 12 failed" in dep.failure


def test_no_callback_in_time_fails_the_step_and_a_late_one_is_refused(api: World, service: Service) -> None:  # noqa: F811
    service.answers = [(202, {}, "")]
    rid, _ = run(api, [{**CALLBACK, "url": service.url, "timeoutMinutes": 5}], True)
    api.clock.advance(6 * 60)
    api.pump()
    dep = api.get(rid).stages["Production"].current
    assert dep.status == "failed" and "no callback before" in dep.failure
    token = service.calls[0]["headers"]["X-Slipway-Callback"].rsplit("/", 1)[1]
    assert post_callback(token, {"result": "succeeded"})[0] == 410


def test_a_callback_after_the_release_was_abandoned_is_refused(api: World, service: Service) -> None:  # noqa: F811
    service.answers = [(202, {}, "")]
    rid, _ = run(api, [{**CALLBACK, "url": service.url}], True)
    from tests.integration.test_approvals_api import AMITA
    assert call(rels.abandon_release, "POST", {"comment": "no"}, releaseId=rid, headers=AMITA)[0] == 200
    token = service.calls[0]["headers"]["X-Slipway-Callback"].rsplit("/", 1)[1]
    assert post_callback(token, {"result": "succeeded"})[0] == 410

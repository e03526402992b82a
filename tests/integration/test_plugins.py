"""Plugins through entry points: the example package's `slack-message` step and `statuspage` signal run
like built-ins, a plugin that fails to load is refused at save and shown in health, and a plugin step
that raises, hangs or answers garbage fails only its own step."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from functions import releases_api
from shared import plugins
from shared.adapters.http_probe import HttpxProbe
from shared.config import GATES_QUEUE
from shared.domain.errors import Invalid
from shared.openapi import document
from shared.services import definitions, releases, step_logs
from shared.services.steps.context import Outcome
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import call
from tests.integration.test_http_request import Service
from tests.integration.test_variables import SECRET

HOOK = "https://kv-tailspin.vault.azure.net/secrets/slack-hook"


class Vault:
    """Key Vault as the step sees it: the webhook secret is the local service's URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, reference: str) -> str:
        assert reference == HOOK
        return self.url


@pytest.fixture
def service(world: World) -> Iterator[Service]:
    world.deps.probe = HttpxProbe("127.0.0.1")
    running = Service()
    world.deps.secrets = Vault(running.url + "/hooks/T000/B000/" + SECRET)
    yield running
    running.server.shutdown()


@pytest.fixture
def swap_registry() -> Iterator[Any]:
    """Use a registry built from the installed entry points plus the test's own; restore afterwards."""
    previous: list[plugins.Registry] = []

    def install(steps: list[EntryPoint] = (), signals: list[EntryPoint] = ()) -> plugins.Registry:  # type: ignore
        registry = plugins.Registry([*entry_points(group=plugins.STEPS), *steps],
                                    [*entry_points(group=plugins.SIGNALS), *signals])
        previous.append(plugins.use(registry))
        return registry

    yield install
    if previous:
        plugins.use(previous[0])


def slack(text: str = "Release $(Release.ReleaseName) is in $(Release.EnvironmentName)") -> dict[str, Any]:
    return {"type": "slack-message", "name": "tell the channel", "webhookSecret": HOOK, "text": text}


def test_the_example_step_and_signal_run_end_to_end(world: World, service: Service) -> None:
    service.answers = [(200, {}, "ok"),  # Slack
                       (200, {}, json.dumps({"status": {"indicator": "minor"}})),  # the first sample is red
                       (200, {}, json.dumps({"status": {"indicator": "none"}}))]
    production = {**stage("Production", {"type": "manual"}, steps=[slack()], slot="production"),
                  "postGates": {"signals": [{"type": "statuspage", "name": "github",
                                             "url": service.url + "/api/v2/status.json"}],
                                "intervalMinutes": 1, "timeoutMinutes": 10}}
    did = int(world.define([production])["id"])
    rid = world.release(did).id
    releases.deploy_stage(world.deps, rid, "Production", by="amita")
    world.pump()
    posted = service.calls[0]
    assert posted["method"] == "POST" and posted["path"] == f"/hooks/T000/B000/{SECRET}"
    assert json.loads(posted["body"]) == {"text": "Release Release-1 is in Production"}
    for _ in range(5):
        world.deliver(GATES_QUEUE)
    release = world.get(rid)
    assert release.stages["Production"].status == "succeeded"
    assert [c["path"] for c in service.calls[1:]] == ["/api/v2/status.json"] * 2
    samples = [e["message"] for e in releases.events(world.deps, rid) if e["type"] == "gateSample"]
    assert [s.split(";")[0] for s in samples] == ["post sample 1: fail", "post sample 2: pass"]
    log = "\n".join(step_logs.read_all(world.deps, release).values())
    assert "posted to Slack" in log and SECRET not in log


def test_a_status_page_that_is_down_is_an_error_never_a_pass(world: World, service: Service) -> None:
    from shared.services.gate_runs import read_all
    service.answers = [(503, {"Retry-After": "30"}, ""), (200, {}, "not json")]
    signal = {"type": "statuspage", "name": "github", "url": service.url}
    down = read_all(world.deps, [signal], "")[0]
    garbled = read_all(world.deps, [signal], "")[0]
    assert down.error == "HTTP 503" and down.retry_after == 30 and down.value is None
    assert garbled.error is not None and garbled.error.startswith("unreadable answer")


def test_the_openapi_document_lists_plugin_models_like_built_ins() -> None:
    schemas = document()["components"]["schemas"]
    text = json.dumps(schemas)
    assert '"slack-message"' in text and '"statuspage"' in text and '"deploy-package"' in text
    slack_schema = next(v for v in _walk(document()) if isinstance(v, dict) and v.get("title") == "SlackMessageStep")
    assert {"webhookSecret", "text"} <= set(slack_schema["properties"]) and "webhookSecret" in slack_schema["required"]


def _walk(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        yield from _walk(child)


def test_a_plugin_that_fails_to_load_is_refused_at_save_and_shown_in_health(world: World, swap_registry: Any) -> None:
    broken = EntryPoint("pagerduty-incident", "slipway_pagerduty_missing.steps:INCIDENT", plugins.STEPS)
    swap_registry(steps=[broken])
    step = {"type": "pagerduty-incident", "service": "PXXXX"}
    with pytest.raises(Invalid) as caught:
        definitions.create(world.deps, {"name": "T", "artifacts": [{"alias": "web", "source": "s"}],
                                        "stages": [stage("Production", steps=[step])]}, by="amita")
    [error] = caught.value.errors
    assert error.field == "stages[0].steps[0].type"
    assert "pagerduty-incident" in error.message and "failed to load" in error.message
    assert "ModuleNotFoundError" in error.message and "slipway_pagerduty_missing" in error.message
    status, body = call(releases_api.health, "GET")
    assert status == 200 and body["plugins"]["steps"] == ["slack-message"]
    assert [(f["name"], f["reason"].split(":")[0]) for f in body["plugins"]["failed"]] == \
        [("pagerduty-incident", "ModuleNotFoundError")]
    # an unknown type that no plugin claims still says what is known
    with pytest.raises(Invalid) as unknown:
        definitions.create(world.deps, {"name": "T", "artifacts": [{"alias": "web", "source": "s"}],
                                        "stages": [stage("Production", steps=[{"type": "nope"}])]}, by="amita")
    assert "unknown type; expected one of" in unknown.value.errors[0].message


def test_a_load_that_answers_the_wrong_object_is_a_failure_too() -> None:
    registry = plugins.Registry([EntryPoint("json-dumps", "json:dumps", plugins.STEPS)], [])
    assert registry.steps.kinds == {}
    assert "is a function, not a StepKind" in registry.failures[0].reason


def raises(deps: Any, ctx: Any) -> Outcome:
    raise RuntimeError("kaboom")


def hangs(deps: Any, ctx: Any) -> Outcome:
    time.sleep(5)
    return Outcome.ok("too late")


def garbage(deps: Any, ctx: Any) -> Any:
    return {"ok": True}


RAISES = plugins.StepKind("slipway_slack.step:SlackMessageStep", raises, type="slack-message")
HANGS = plugins.StepKind("slipway_slack.step:SlackMessageStep", hangs, type="slack-message", timeout_seconds=0.3)
GARBAGE = plugins.StepKind("slipway_slack.step:SlackMessageStep", garbage, type="slack-message")


@pytest.mark.parametrize("kind, reason", [
    ("RAISES", "plugin step 'slack-message' raised RuntimeError: kaboom"),
    ("HANGS", "plugin step 'slack-message' did not answer within 0.3s"),
    ("GARBAGE", "plugin step 'slack-message' answered dict, not Outcome")])
def test_a_plugin_step_that_misbehaves_fails_only_its_step(world: World, service: Service, kind: str,
                                                          reason: str) -> None:
    did = int(world.define([stage("Production", steps=[{**slack(), "continueOnError": True},
                                                       {"type": "wait", "seconds": 0}])])["id"])
    # the same type now served by a misbehaving plugin (the definition was saved against the real one)
    plugins.use(plugins.Registry([*(p for p in entry_points(group=plugins.STEPS) if p.name != "slack-message"),
                                  EntryPoint("slack-message", f"{__name__}:{kind}", plugins.STEPS)],
                                 list(entry_points(group=plugins.SIGNALS))))
    try:
        rel = world.release(did)
        world.pump()
    finally:
        plugins.use(plugins.Registry())
    dep = world.get(rel.id).stages["Production"].current
    assert dep.steps[0].status == "failed" and dep.steps[0].message == reason
    assert dep.steps[1].status == "succeeded"  # the next step still ran
    assert not world.failures  # no queue invocation crashed


def leaks(deps: Any, ctx: Any) -> Outcome:
    url = ctx.secret(ctx.step.config["webhookSecret"])
    raise RuntimeError(f"cannot post to {url}") from ValueError(f"chained: {url}")


LEAKS = plugins.StepKind("slipway_slack.step:SlackMessageStep", leaks, type="slack-message")


def leaky_reader(signal: dict[str, Any], resource_id: str, now: Any) -> Any:
    raise RuntimeError(f"cannot read {signal['url']}")


LEAKY_SIGNAL = plugins.SignalKind("slipway_slack.signal:StatuspageSignal", leaky_reader, type="statuspage")


def _serve(steps: list[EntryPoint] = (), signals: list[EntryPoint] = ()) -> None:  # type: ignore[assignment]
    """This process's registry: the installed entry points, with the given ones in place of theirs."""
    replaced = {p.name for p in [*steps, *signals]}
    plugins.use(plugins.Registry([*(p for p in entry_points(group=plugins.STEPS) if p.name not in replaced), *steps],
                                 [*(p for p in entry_points(group=plugins.SIGNALS) if p.name not in replaced),
                                  *signals]))


def test_a_plugin_that_raises_with_a_secret_in_its_message_leaks_it_nowhere(
        world: World, service: Service, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from shared.adapters.monitor_signals import MonitorSignals
    from shared.config import Settings
    from tests.integration.test_variables import SECRET_REF, Secrets

    caplog.set_level(logging.DEBUG)
    world.deps.secrets = Secrets()  # every reference reads SECRET
    world.deps.signals = MonitorSignals(Settings())
    gate = {"signals": [{"type": "statuspage", "name": "status", "url": service.url + "/status?key=$(ApiKey)"}],
            "intervalMinutes": 1, "timeoutMinutes": 10, "maxConsecutiveErrors": 2}
    did = int(world.define([{**stage("Production", steps=[{**slack(), "continueOnError": True}]),
                             "postGates": gate}], variables={"ApiKey": SECRET_REF})["id"])
    _serve([EntryPoint("slack-message", f"{__name__}:LEAKS", plugins.STEPS)],
           [EntryPoint("statuspage", f"{__name__}:LEAKY_SIGNAL", plugins.SIGNALS)])
    try:
        rel = world.release(did)
        world.pump()
        for _ in range(5):
            world.deliver(GATES_QUEUE)
    finally:
        plugins.use(plugins.Registry())
    release = world.get(rel.id)
    dep = release.stages["Production"].current
    assert dep.steps[0].message == "plugin step 'slack-message' raised RuntimeError: cannot post to ***"
    readings = [s for sample in dep.gates["post"].samples for s in sample["signals"]]
    assert readings and all("RuntimeError: cannot read http" in r["reason"] and "key=***" in r["reason"]
                            for r in readings)
    assert "plugin step 'slack-message' raised RuntimeError: cannot post to ***" in caplog.text
    assert "signal status failed: RuntimeError: cannot read" in caplog.text
    surfaces = [caplog.text, json.dumps(releases.events(world.deps, rel.id)), json.dumps(release.to_dict()),
                "\n".join(step_logs.read_all(world.deps, release).values())]
    for surface in surfaces:
        assert SECRET not in surface


RELEASED = __import__("threading").Event()
"""Set when a test is done: a hanging reader returns then (its thread is a daemon, never waited on)."""


def reader_raises(signal: dict[str, Any], resource_id: str, now: Any) -> Any:
    raise ConnectionError("status page unreachable")


def reader_hangs(signal: dict[str, Any], resource_id: str, now: Any) -> Any:
    RELEASED.wait()
    from shared.domain.gates import Reading
    return Reading(signal["name"], value="none")


def reader_garbage(signal: dict[str, Any], resource_id: str, now: Any) -> Any:
    return {"indicator": "none"}  # what a pass would look like, but not a Reading


SIGNAL_RAISES = plugins.SignalKind("slipway_slack.signal:StatuspageSignal", reader_raises, type="statuspage")
SIGNAL_HANGS = plugins.SignalKind("slipway_slack.signal:StatuspageSignal", reader_hangs, type="statuspage",
                                  timeout_seconds=0.2)
SIGNAL_GARBAGE = plugins.SignalKind("slipway_slack.signal:StatuspageSignal", reader_garbage, type="statuspage")


@pytest.mark.parametrize("kind, reason", [
    ("SIGNAL_RAISES", "ConnectionError: status page unreachable"),
    ("SIGNAL_HANGS", "plugin signal 'statuspage' did not answer within 0.2s"),
    ("SIGNAL_GARBAGE", "plugin signal 'statuspage' answered dict, not a Reading")])
def test_a_plugin_signal_that_misbehaves_errors_its_reading_and_never_passes_the_gate(
        world: World, service: Service, kind: str, reason: str) -> None:
    from shared.adapters.monitor_signals import MonitorSignals
    from shared.config import Settings

    world.deps.signals = MonitorSignals(Settings())
    gate = {"signals": [{"type": "statuspage", "name": "status", "url": service.url + "/status"},
                        {"type": "rest", "name": "health", "url": service.url + "/health"}],
            "intervalMinutes": 1, "timeoutMinutes": 10, "maxConsecutiveErrors": 3}
    did = int(world.define([{**stage("Production", steps=[{"type": "wait", "seconds": 0}]), "postGates": gate}])["id"])
    _serve(signals=[EntryPoint("statuspage", f"{__name__}:{kind}", plugins.SIGNALS)])
    RELEASED.clear()
    try:
        rel = world.release(did)
        world.pump()
        for _ in range(10):
            world.deliver(GATES_QUEUE)
    finally:
        RELEASED.set()
        plugins.use(plugins.Registry())
    dep = world.get(rel.id).stages["Production"].current
    post = dep.gates["post"]
    assert post.status != "succeeded" and dep.status != "succeeded"
    assert len(post.samples) == 3 and all(s["verdict"] == "error" for s in post.samples)
    by_name = [{s["name"]: s for s in sample["signals"]} for sample in post.samples]
    assert all(reason in sample["status"]["reason"] and sample["status"]["verdict"] == "error" for sample in by_name)
    assert all(sample["health"]["verdict"] == "pass" for sample in by_name)  # the other signal was read as usual
    assert [c["path"] for c in service.calls] == ["/health"] * 3
    assert not world.failures  # no queue invocation crashed


def test_a_plugin_that_fails_to_load_is_logged_when_the_host_starts_not_at_first_use(tmp_path: Any) -> None:
    """A fresh interpreter does what the Python worker does when the host starts (import function_app, then
    index it with `get_functions()`) with a broken plugin installed: the failure is logged before any function
    runs, and the import itself loads no plugin (tests/unit/test_cold_start.py)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    dist = tmp_path / "slipway_pagerduty-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slipway-pagerduty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[slipway.steps]\n"
                                           "pagerduty-incident = slipway_pagerduty_missing.steps:INCIDENT\n")
    script = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
              "import function_app\n"
              "from shared import plugins\n"
              "print('imported; plugins loaded:', 'slipway_slack' in sys.modules, flush=True)\n"
              "function_app.app.get_functions()\n"
              "plugins.load_at_start().join()\n"
              "print('indexed; the same thread:', plugins.load_at_start() is plugins.load_at_start(), flush=True)\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    out = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, text=True, capture_output=True,
                         check=True).stdout.splitlines()
    assert out[0] == "imported; plugins loaded: False"
    failed = [line for line in out if "failed to load:" in line]
    assert failed == ["plugin slipway.steps 'pagerduty-incident' (slipway_pagerduty_missing.steps:INCIDENT) failed to "
                      "load: ModuleNotFoundError: No module named 'slipway_pagerduty_missing'"]
    assert [line.rsplit(", ", 1)[1] for line in out if line.startswith("plugins loaded:")] == ["1 failed to load"]
    assert out[-1] == "indexed; the same thread: True"

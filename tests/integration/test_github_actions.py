"""GitHub Actions: the adapter against the GitHub emulator over HTTP, and the `run-pipeline` step kind with that
adapter and a dictionary of Key Vault secrets."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from local.github_emulator import GitHubEmulator
from shared.adapters.github_actions import GitHubActions
from shared.config import Settings
from shared.domain.release import Release
from shared.domain.transitions import StartRelease, decide
from shared.ports import TargetError
from shared.schemas.fields import field_errors
from shared.schemas.step_pipeline import RunPipelineStep
from shared.services.deps import Deps
from shared.services.steps.context import ClaimLost, Outcome, StepContext
from shared.services.steps.pipeline import run_pipeline, stop_run_pipeline
from shared.services.steps.runner import MAX_TARGET_RETRIES
from tests.fakes import FakeClock

REPO = "contoso/tailspin"
TOKEN = "ghs_" + "Q7x9" * 9  # an installation token's shape: it must never show anywhere
READER = "ghs_" + "R3ad" * 9
OTHER = "ghs_" + "0th3" * 9
SECRET = "https://kv-slipway.vault.azure.net/secrets/github-token"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}
SMOKE_INPUTS: dict[str, dict[str, Any]] = {
    "slipway_run": {"type": "string"}, "release": {"type": "string", "required": True},
    "dry": {"type": "boolean", "default": False}}
RUN_NAME = "Smoke ${{ inputs.release }} ${{ inputs.slipway_run }}"


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as gh:
        gh.add_repo(REPO, branches=["main", "release/1"], tags=["v1.0"])
        gh.add_repo("contoso/private-infra")
        gh.add_token(TOKEN, repos=[REPO])
        gh.add_token(READER, repos=[REPO], actions="read")
        gh.add_token(OTHER, repos=["contoso/private-infra"], kind="pat")
        gh.add_workflow(REPO, "smoke.yml", name="Smoke", inputs=SMOKE_INPUTS, run_name_template=RUN_NAME,
                        steps=["collecting tests", "test_home PASSED", "42 passed in 3.1s"], seconds=30)
        gh.add_workflow(REPO, "broken.yml", inputs={"slipway_run": {"type": "string"}},
                        run_name_template="Broken ${{ inputs.slipway_run }}",
                        outcome="failure", jobs={"build": ["compiling"], "test": ["test_cart FAILED", "1 failed"]})
        gh.add_workflow(REPO, "slow.yml", inputs={"slipway_run": {"type": "string"}},
                        run_name_template="Slow ${{ inputs.slipway_run }}", seconds=7200)
        gh.add_workflow(REPO, "plain.yml", inputs={"release": {"type": "string"}})
        yield gh


@pytest.fixture
def adapter(github: GitHubEmulator) -> GitHubActions:
    return GitHubActions(Settings(github_api_url=github.url))


def dispatch_smoke(adapter: GitHubActions, marker: str = "slipway-r7-aaaa") -> int:
    run_id = adapter.dispatch(REPO, "smoke.yml", "main", {"release": "Release-7", "slipway_run": marker}, TOKEN)
    assert run_id is not None
    return run_id


# -- the adapter


def test_dispatch_returns_the_run_which_goes_queued_in_progress_completed(adapter: GitHubActions,
                                                                         github: GitHubEmulator) -> None:
    run_id = dispatch_smoke(adapter)
    sent = next(r for r in github.requests if r.path.endswith("/dispatches"))
    assert sent.body == {"ref": "main", "inputs": {"release": "Release-7", "slipway_run": "slipway-r7-aaaa"},
                         "return_run_details": True}
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["x-github-api-version"] == "2022-11-28" and headers["accept"] == "application/vnd.github+json"
    assert headers["user-agent"] and headers["authorization"] == f"Bearer {TOKEN}"
    run = adapter.run(REPO, run_id, TOKEN)
    assert (run.status, run.conclusion) == ("queued", None)
    assert run.url == f"{github.url}/{REPO}/actions/runs/{run_id}"
    github.advance(2)
    assert adapter.run(REPO, run_id, TOKEN).status == "in_progress"
    github.advance(30)
    done = adapter.run(REPO, run_id, TOKEN)
    assert (done.status, done.conclusion) == ("completed", "success")
    assert github.runs[run_id].display_title == "Smoke Release-7 slipway-r7-aaaa"
    assert httpx.get(run.url).status_code == 200  # the run's page, for people


def test_find_run_by_marker_once_github_lists_it(adapter: GitHubActions, github: GitHubEmulator) -> None:
    first = dispatch_smoke(adapter, "slipway-r7-abc")
    assert adapter.find_run(REPO, "smoke.yml", "slipway-r7-abc", TOKEN) is None  # not listed yet
    github.advance(github.list_delay_seconds)
    second = dispatch_smoke(adapter, "slipway-r7-abcd")
    github.advance(github.list_delay_seconds)
    found = adapter.find_run(REPO, "smoke.yml", "slipway-r7-abc", TOKEN)
    assert found is not None and found.id == first
    other = adapter.find_run(REPO, "smoke.yml", "slipway-r7-abcd", TOKEN)
    assert other is not None and other.id == second
    assert adapter.find_run(REPO, "smoke.yml", "slipway-r7-ab", TOKEN) is None
    listed = [r for r in github.requests if r.path.endswith("/runs")][-1]
    assert listed.query["event"] == "workflow_dispatch" and listed.query["created"].startswith(">=")


def test_find_run_pages_through_many_runs(adapter: GitHubActions, github: GitHubEmulator) -> None:
    marker = "slipway-r7-first"
    dispatch_smoke(adapter, marker)
    for i in range(120):
        github.advance(1)
        dispatch_smoke(adapter, f"slipway-r7-n{i}")
    github.advance(github.list_delay_seconds)
    found = adapter.find_run(REPO, "smoke.yml", marker, TOKEN)
    assert found is not None and github.runs[found.id].display_title.endswith(marker)
    assert [r.query["page"] for r in github.requests if r.path.endswith("/runs")] == ["1", "2"]


def test_cancel_then_cancel_again(adapter: GitHubActions, github: GitHubEmulator) -> None:
    run_id = dispatch_smoke(adapter)
    github.advance(5)
    adapter.cancel(REPO, run_id, TOKEN)
    assert adapter.run(REPO, run_id, TOKEN).status == "in_progress"  # cancelling takes a moment
    github.advance(github.cancel_seconds)
    run = adapter.run(REPO, run_id, TOKEN)
    assert (run.status, run.conclusion) == ("completed", "cancelled")
    adapter.cancel(REPO, run_id, TOKEN)  # nothing left to cancel: no error
    assert [r.path for r in github.requests].count(f"/repos/{REPO}/actions/runs/{run_id}/cancel") == 2


def test_logs_follow_the_redirect_without_the_token_and_keep_the_last_lines(adapter: GitHubActions,
                                                                             github: GitHubEmulator) -> None:
    run_id = adapter.dispatch(REPO, "broken.yml", "main", {"slipway_run": "m1"}, TOKEN)
    assert run_id is not None
    with pytest.raises(TargetError):  # no archive before the run completes
        adapter.log_lines(REPO, run_id, TOKEN, 10)
    github.advance(40)
    lines = adapter.log_lines(REPO, run_id, TOKEN, 10)
    failed = "##[error]Process completed with exit code 1."
    assert lines == ["[build] compiling", f"[build] {failed}", "[test] test_cart FAILED", "[test] 1 failed",
                     f"[test] {failed}"]
    assert adapter.log_lines(REPO, run_id, TOKEN, 2) == lines[-2:]
    download = [r for r in github.requests if r.path.startswith("/_logs/")][-1]
    assert "authorization" not in {k.lower() for k in download.headers}


def test_a_log_link_expires_after_a_minute(adapter: GitHubActions, github: GitHubEmulator) -> None:
    run_id = dispatch_smoke(adapter)
    github.advance(40)
    with httpx.Client(base_url=github.url, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "t"}) as c:
        location = c.get(f"/repos/{REPO}/actions/runs/{run_id}/logs").headers["location"]
        assert c.get(location).status_code == 200
        github.advance(61)
        assert c.get(location).status_code == 403


def test_logs_are_refused_from_plain_http_hosts_and_above_the_cap(github: GitHubEmulator) -> None:
    adapter = GitHubActions(Settings(github_api_url=github.url.replace("127.0.0.1", "localhost")))
    run_id = dispatch_smoke(adapter)
    github.advance(40)
    with pytest.raises(TargetError, match="refusing to download the log archive from http://localhost") as refused:
        adapter.log_lines(REPO, run_id, TOKEN, 10)
    assert not refused.value.retryable
    assert not [r for r in github.requests if r.path.startswith("/_logs/")]
    github.add_workflow(REPO, "noisy.yml", steps=[f"line {i} {i * 7919 % 104729:x}" for i in range(5000)], seconds=5)
    small = GitHubActions(Settings(github_api_url=github.url), max_log_bytes=4096)
    noisy = small.dispatch(REPO, "noisy.yml", "main", {}, TOKEN)
    assert noisy is not None
    github.advance(10)
    with pytest.raises(TargetError, match="larger than 4,096 bytes"):
        small.log_lines(REPO, noisy, TOKEN, 10)


@pytest.mark.parametrize(("token", "repo", "workflow", "ref", "inputs", "status", "message"), [
    ("ghs_" + "W" * 36, REPO, "smoke.yml", "main", {"release": "1"}, 401, "Bad credentials"),
    (OTHER, REPO, "smoke.yml", "main", {"release": "1"}, 404, "Not Found"),
    (TOKEN, "contoso/private-infra", "smoke.yml", "main", {}, 404, "Not Found"),
    (TOKEN, REPO, "nope.yml", "main", {}, 404, "Not Found"),
    (TOKEN, REPO, "smoke.yml", "nope", {"release": "1"}, 422, "No ref found for: nope"),
    (TOKEN, REPO, "smoke.yml", "main", {"release": "1", "extra": "x"}, 422, 'Unexpected inputs provided: ["extra"]'),
    (TOKEN, REPO, "smoke.yml", "main", {"dry": "true"}, 422, "Required input 'release' not provided"),
    (TOKEN, REPO, "smoke.yml", "main", {"release": "1", "dry": "maybe"}, 422, "not a valid boolean"),
    (READER, REPO, "smoke.yml", "main", {"release": "1"}, 403, "Resource not accessible by integration"),
])
def test_refusals_are_final_with_githubs_message(adapter: GitHubActions, github: GitHubEmulator, token: str,
                                                 repo: str, workflow: str, ref: str, inputs: dict[str, str],
                                                 status: int, message: str) -> None:
    with pytest.raises(TargetError) as caught:
        adapter.dispatch(repo, workflow, ref, inputs, token)
    assert not caught.value.retryable and f": {status} " in str(caught.value) and message in str(caught.value)
    assert token not in str(caught.value) and TOKEN not in str(caught.value)
    assert github.dispatches == 0


def test_a_tag_and_a_full_ref_are_refs_and_a_commit_is_not(adapter: GitHubActions, github: GitHubEmulator) -> None:
    for ref in ("v1.0", "refs/heads/release/1", "release/1"):
        adapter.dispatch(REPO, "smoke.yml", ref, {"release": "1"}, TOKEN)
    with pytest.raises(TargetError, match="No ref found for"):
        adapter.dispatch(REPO, "smoke.yml", github.repos[REPO].branches["main"], {"release": "1"}, TOKEN)
    assert [r.ref for r in github.runs.values()] == ["v1.0", "release/1", "release/1"]


@pytest.mark.parametrize(("fault", "status", "wait"), [("throttle", 429, 2.0), ("secondary", 403, 3.0),
                                                        ("primary", 403, 5.0), ("error", 500, None)])
def test_rate_limits_and_server_errors_are_retryable(adapter: GitHubActions, github: GitHubEmulator, fault: str,
                                                     status: int, wait: float | None) -> None:
    github.inject("dispatch", fault, seconds=wait)
    with pytest.raises(TargetError) as caught:
        dispatch_smoke(adapter)
    error = caught.value
    assert error.retryable and f": {status} " in str(error)
    if wait is None:
        assert error.retry_after is None
    else:
        assert error.retry_after is not None and wait - 1.5 <= error.retry_after <= wait
    assert github.dispatches == 0
    dispatch_smoke(adapter)
    assert github.dispatches == 1


def test_network_failure_is_retryable() -> None:
    adapter = GitHubActions(Settings(github_api_url="http://127.0.0.1:9"))
    with pytest.raises(TargetError) as caught:
        adapter.run(REPO, 1, TOKEN)
    assert caught.value.retryable and TOKEN not in str(caught.value)


def test_the_emulator_is_strict(github: GitHubEmulator) -> None:
    url = f"/repos/{REPO}/actions/workflows/smoke.yml/dispatches"
    auth = {"Authorization": f"token {TOKEN}"}
    with httpx.Client(base_url=github.url) as c:
        assert c.post(url, json={"ref": "main"}, headers={**auth, "User-Agent": ""}).status_code == 403
        ua = {**auth, "User-Agent": "test"}
        assert c.post(url, json={"ref": "main", "inputs": {"release": "1"}},
                      headers={**ua, "X-GitHub-Api-Version": "2021-01-01"}).status_code == 400
        assert c.post(url, json={"ref": "main", "inputs": {"release": "1"}}, headers={"User-Agent": "t"}).json()[
            "message"] == "Requires authentication"
        missing = c.post(url, json={"inputs": {}}, headers=ua)
        assert missing.status_code == 422 and missing.json()["message"] == 'Invalid request.\n\n"ref" wasn\'t supplied.'
        many = {f"i{n}": "x" for n in range(26)}
        assert c.post(url, json={"ref": "main", "inputs": many}, headers=ua).status_code == 422
        assert c.post(url, content=b"{not json", headers=ua).status_code == 400
        assert c.post(url, json={"ref": "main", "inputs": {"release": 1}}, headers=ua).status_code == 422
        ok = c.post(url, json={"ref": "main", "inputs": {"release": "1", "dry": True}}, headers=ua)
        assert ok.status_code == 204 and ok.headers["x-ratelimit-remaining"].isdigit()
        github.advance(40)
        run_id = next(iter(github.runs))
        late = c.post(f"/repos/{REPO}/actions/runs/{run_id}/cancel", headers=ua)
        assert late.status_code == 409 and late.json()["message"] == "Cannot cancel a workflow run that is completed."
        page = c.get(f"/repos/{REPO}/actions/workflows/smoke.yml/runs", params={"per_page": 1, "status": "success"},
                     headers=ua)
        assert page.json()["total_count"] == 1 and "next" not in page.headers.get("link", "")
        assert c.get(f"/repos/{REPO}/actions/workflows/smoke.yml/runs", params={"created": "<2020-01-01"},
                     headers=ua).json()["total_count"] == 0
        assert c.get(f"/repos/{REPO}/actions/workflows/smoke.yml/runs", params={"created": "yesterday"},
                     headers=ua).status_code == 422
    with pytest.raises(ValueError, match="up to 25"):
        github.add_workflow(REPO, "huge.yml", inputs={f"i{n}": {} for n in range(26)})


# -- the step kind


class DictSecrets:
    """Key Vault as a dictionary of secret URIs; a missing one is a final TargetError, as the adapter's 404."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads = 0

    def get(self, reference: str) -> str:
        self.reads += 1
        if reference not in self.values:
            raise TargetError(f"Key Vault secret {reference}: 404 SecretNotFound", retryable=False)
        return self.values[reference]


def step_config(**extra: Any) -> dict[str, Any]:
    body = {"type": "run-pipeline", "name": "smoke", "repository": REPO, "workflow": "smoke.yml",
            "inputs": {"release": "$(Release.ReleaseName)"}, "tokenSecret": SECRET, **extra}
    return RunPipelineStep.model_validate(body).model_dump(exclude_none=True)


class Harness:
    """One step run through its queue messages, as the runner drives it: the step's stored state between
    calls (the intent is stored when the step records it), TargetErrors turned into retries and failures,
    and the clocks moved on by each retry's delay."""

    def __init__(self, github: GitHubEmulator, config: dict[str, Any], token: str = TOKEN) -> None:
        self.github = github
        self.secrets = DictSecrets({SECRET: token})
        self.clock = FakeClock(NOW)
        self.deps = Deps(settings=Settings(github_api_url=github.url), store=None, bus=None,  # type: ignore[arg-type]
                         clock=self.clock, app_service=None, packages=None, logs=None, probe=None,  # type: ignore
                         mailer=None, signals=None, function_keys=None, arm_deployments=None,  # type: ignore
                         container_jobs=None, pipelines=GitHubActions(Settings(github_api_url=github.url)),
                         secrets=self.secrets, azure_pipelines=None)  # type: ignore[arg-type]
        stage = {"name": "QA", "target": TARGET, "trigger": {"type": "afterRelease"}, "steps": [config]}
        release = Release.new(id=7, definition_id="d1", revision=1, name="Release-7", created_at=NOW.isoformat(),
                              created_by="amita", reason="manual", description="",
                              artifacts=[{"alias": "web", "version": "1.2.3", "isPrimary": True}],
                              definition={"name": "Tailspin", "stages": [stage]})
        self.release = decide(release, StartRelease(), NOW).release
        self.stored: dict[str, Any] = {}
        self.run = 1
        self.lines: list[str] = []
        self.outcomes: list[Outcome] = []

    def context(self, *, claimed: bool = True) -> StepContext:
        stage = self.release.plan.stage("QA")
        assert stage is not None
        dep = self.release.stages["QA"].current
        assert dep is not None
        step_run = replace(dep.steps[0], run=self.run, state=copy.deepcopy(self.stored))
        ctx = StepContext(self.release, stage, stage.steps[0], step_run, self.clock.now())

        def keep(intent: dict[str, Any]) -> bool:
            if claimed:
                self.stored["intent"] = dict(intent)
            return claimed

        ctx.keep_intent = keep
        return ctx

    def once(self, ctx: StepContext | None = None) -> Outcome:
        ctx = ctx or self.context()
        try:
            outcome = run_pipeline(self.deps, ctx)
        except TargetError as exc:
            tries = int(ctx.run.state.get("targetErrors", 0)) + 1
            if not exc.retryable or tries > MAX_TARGET_RETRIES:
                outcome = Outcome.fail(str(exc) if not exc.retryable else f"{exc} (after {tries - 1} retries)")
            else:
                delay = exc.retry_after if exc.retry_after is not None else min(300.0, 2.0 ** tries)
                outcome = Outcome.retry(str(exc), delay, {**ctx.run.state, "targetErrors": tries})
        self.lines += ctx.lines
        self.outcomes.append(outcome)
        if outcome.kind == "retry":
            self.stored = copy.deepcopy(outcome.state)
            self.wait(outcome.delay)
            self.run += 1
        return outcome

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.github.advance(seconds)

    def drive(self, limit: int = 400) -> Outcome:
        for _ in range(limit):
            outcome = self.once()
            if outcome.kind != "retry":
                return outcome
        raise AssertionError("the step never ended")

    def everything(self) -> str:
        return json.dumps([self.lines, [(o.kind, o.message, o.state) for o in self.outcomes], self.stored])


def test_success_copies_the_last_log_lines(github: GitHubEmulator) -> None:
    h = Harness(github, step_config(logLines=2))
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    (run,) = github.runs.values()
    assert run.inputs["release"] == "Release-7" and run.inputs["slipway_run"].startswith("slipway-r7-")
    assert outcome.state["outputs"] == {"runId": str(run.id), "runUrl": f"{github.url}/{REPO}/actions/runs/{run.id}",
                                        "conclusion": "success"}
    copied = [line.split(" ", 1)[1] for line in h.lines]
    assert "[build] test_home PASSED" in copied and "[build] 42 passed in 3.1s" in copied
    assert "[build] collecting tests" not in copied  # only the last 2
    assert any(f"actions/runs/{run.id}" in line for line in h.lines)
    assert [o.delay for o in h.outcomes[:-1]] == [5.0, 7.0, 9.0, 11.0]  # then it had completed
    assert github.dispatches == 1 and h.secrets.reads == len(h.outcomes)


def test_failure_conclusion_fails_with_the_reason(github: GitHubEmulator) -> None:
    h = Harness(github, step_config(workflow="broken.yml", inputs={}, logLines=0))
    outcome = h.drive()
    assert outcome.kind == "failed"
    assert "concluded failure" in outcome.message and "[test] 1 failed" in outcome.message
    assert "[test] test_cart FAILED" in outcome.message
    assert not any("1 failed" in line for line in h.lines)  # logLines 0: nothing copied


def test_delivered_twice_dispatches_once(github: GitHubEmulator) -> None:
    h = Harness(github, step_config())
    first, second = h.context(), h.context(claimed=False)  # the same message, received twice at once
    assert h.once(first).kind == "retry"
    with pytest.raises(ClaimLost):
        run_pipeline(h.deps, second)  # its claim was taken: it stops before acting
    assert github.dispatches == 1
    h.stored = {"intent": h.stored["intent"]}  # then a copy that arrives after the first's claim ran out
    assert h.drive().kind == "succeeded"
    assert github.dispatches == 1


def test_crash_after_dispatch_finds_the_run_by_its_marker(github: GitHubEmulator) -> None:
    h = Harness(github, step_config())
    github.inject("dispatch", "lost")  # GitHub starts the run; the answer never arrives
    assert h.once().kind == "retry" and github.dispatches == 1
    assert set(h.stored) >= {"intent", "targetErrors"} and "runId" not in h.stored
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    assert github.dispatches == 1
    assert any("found workflow run" in line for line in h.lines)


def test_a_dispatch_that_never_reached_github_is_made_again_after_the_grace(github: GitHubEmulator) -> None:
    h = Harness(github, step_config())
    github.inject("dispatch", "error")
    assert h.once().kind == "retry" and github.dispatches == 0
    outcome = h.drive()
    assert outcome.kind == "succeeded" and github.dispatches == 1
    assert any("dispatching again" in line for line in h.lines)
    assert [r.inputs["slipway_run"] for r in github.runs.values()] == [outcome.state["intent"]["marker"]]


def test_throttled_polls_retry_and_lasting_errors_fail(github: GitHubEmulator) -> None:
    h = Harness(github, step_config())
    github.inject("run", "throttle", 3, seconds=4)
    assert h.drive().kind == "succeeded"
    assert sum(": 429 " in o.message for o in h.outcomes) == 3
    g = Harness(github, step_config())
    github.inject("run", "error", 50)
    outcome = g.drive()
    assert outcome.kind == "failed" and ": 500 " in outcome.message and f"after {MAX_TARGET_RETRIES} retries" in \
        outcome.message


def test_timeout_cancels_the_run(github: GitHubEmulator) -> None:
    h = Harness(github, step_config(workflow="slow.yml", inputs={}, timeoutMinutes=1))
    outcome = h.drive()
    assert outcome.kind == "failed" and "timed out after 1 minutes" in outcome.message
    assert [o.delay for o in h.outcomes[:-1]] == [5.0, 7.0, 9.0, 11.0, 13.0, 15.0]
    (run,) = github.runs.values()
    github.advance(github.cancel_seconds)
    assert run.conclusion_at(github.now()) == "cancelled"


def test_stop_cancels_by_state_or_by_marker_and_twice_is_harmless(github: GitHubEmulator) -> None:
    h = Harness(github, step_config(workflow="slow.yml", inputs={}))
    h.once()
    said = stop_run_pipeline(h.deps, h.context())
    assert said.startswith("cancel requested for workflow run")
    github.advance(github.cancel_seconds)
    assert "already completed (cancelled)" in stop_run_pipeline(h.deps, h.context())
    g = Harness(github, step_config(workflow="slow.yml", inputs={}))
    g.release.id = 8  # another release: another marker
    github.inject("dispatch", "lost")
    g.once()
    assert "runId" not in g.stored  # only the intent: found by its marker
    github.advance(github.list_delay_seconds)
    assert stop_run_pipeline(g.deps, g.context()).startswith("cancel requested")
    github.advance(github.cancel_seconds)
    assert sorted(r.conclusion_at(github.now()) or "" for r in github.runs.values()) == ["cancelled", "cancelled"]
    fresh = Harness(github, step_config())
    assert stop_run_pipeline(fresh.deps, fresh.context()) == "no workflow run was started"


def test_the_token_never_shows_even_when_github_errs(github: GitHubEmulator) -> None:
    github.add_workflow(REPO, "leaky.yml", inputs={"slipway_run": {"type": "string"}},
                        run_name_template="${{ inputs.slipway_run }}", outcome="failure",
                        steps=[f"curl -H 'Authorization: Bearer {TOKEN}' https://example.invalid", "boom"])
    leaky = Harness(github, step_config(workflow="leaky.yml", inputs={}))
    assert leaky.drive().kind == "failed"
    assert any("Bearer ***" in line for line in leaky.lines)
    wrong = "ghs_" + "N0pe" * 9
    github.add_token(wrong, repos=[REPO], actions="read")
    refused = Harness(github, step_config(), token=wrong)
    outcome = refused.drive()
    assert outcome.kind == "failed" and "403 Resource not accessible by integration" in outcome.message
    unknown = Harness(github, step_config(inputs={"release": "1", "extra": "x"}))
    assert "Unexpected inputs provided" in unknown.drive().message
    github.inject("run", "secondary", 2)
    throttled = Harness(github, step_config())
    assert throttled.drive().kind == "succeeded"
    for h in (leaky, refused, unknown, throttled):
        assert TOKEN not in h.everything() and wrong not in h.everything()


def test_no_secret_no_run(github: GitHubEmulator) -> None:
    h = Harness(github, step_config())
    h.secrets.values.clear()
    outcome = h.drive()
    assert outcome.kind == "failed" and "SecretNotFound" in outcome.message
    assert github.dispatches == 0 and not github.requests


def test_a_workflow_without_the_marker_input_fails_with_what_to_add(github: GitHubEmulator) -> None:
    outcome = Harness(github, step_config(workflow="plain.yml")).drive()
    assert outcome.kind == "failed"
    assert 'Unexpected inputs provided: ["slipway_run"]' in outcome.message and "run-name" in outcome.message


# -- the step model


def test_step_model_defaults_and_limits() -> None:
    step = RunPipelineStep.model_validate(step_config())
    assert (step.provider, step.ref, step.markerInput, step.timeoutMinutes, step.logLines) == \
        ("github", "main", "slipway_run", 60, 200)
    RunPipelineStep.model_validate(step_config(workflow="161000001", ref="refs/tags/v1.0",
                                               tokenSecret=SECRET + "/0123456789abcdef0123456789abcdef"))
    bad: list[dict[str, Any]] = [
        {"repository": "tailspin"}, {"repository": "-contoso/x"}, {"workflow": "../smoke.yml"},
        {"workflow": "smoke.txt"}, {"ref": "main..x"}, {"ref": "has space"}, {"tokenSecret": "github-token"},
        {"tokenSecret": "https://evil.example/secrets/x"}, {"inputs": {f"i{n}": "x" for n in range(21)}},
        {"inputs": {"1bad": "x"}}, {"inputs": {"slipway_run": "x"}}, {"timeoutMinutes": 4321}, {"logLines": 2001},
        {"provider": "azure-pipelines"}, {"extra": True}]
    for change in bad:
        with pytest.raises(ValidationError):
            RunPipelineStep.model_validate({**step_config(), **change})


@pytest.mark.parametrize("where", ["inputs", "ref", "tokenSecret", "name"])
def test_a_literal_token_is_refused_anywhere(where: str) -> None:
    pat = "github_pat_11ABCDEFG0" + "x" * 60
    body = step_config()
    body[where] = {"token": pat} if where == "inputs" else pat
    with pytest.raises(ValidationError) as caught:
        RunPipelineStep.model_validate(body)
    errors = field_errors(caught.value)  # what the API answers
    assert any("looks like a GitHub token" in e.message for e in errors)
    assert not any(pat in e.message or pat in e.field for e in errors)


"""Azure Pipelines: the adapter against the Azure DevOps emulator over HTTP, and the `run-pipeline` step kind's
`azure-pipelines` provider with that adapter."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from pydantic import ValidationError

from local.azure_devops_emulator import AzureDevOpsEmulator
from shared.adapters.azure_pipelines import AZURE_DEVOPS_SCOPE, AzurePipelines
from shared.config import Settings
from shared.domain.release import Release
from shared.domain.transitions import StartRelease, decide
from shared.ports import TargetError
from shared.schemas.fields import field_errors
from shared.schemas.step_pipeline import RunPipelineStep
from shared.services.deps import Deps
from shared.services.steps.context import ClaimLost, Outcome, StepContext
from shared.services.steps.pipeline import AZURE_FIND_GRACE_SECONDS, run_pipeline, stop_run_pipeline
from shared.services.steps.runner import MAX_TARGET_RETRIES
from tests.fakes import FakeClock

ORG, PROJECT = "contoso", "web"
ORG_URL = f"https://dev.azure.com/{ORG}"
TOKEN = "local-emulator"  # what the adapter sends with arm_auth local-emulator
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TARGET = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}
SMOKE_PARAMETERS = {"slipway_run": {"type": "string", "default": " "}, "release": {"type": "string"},
                    "dry": {"type": "boolean", "default": "false"},
                    "region": {"type": "string", "default": "westeurope", "values": ["westeurope", "northeurope"]}}
SMOKE_LINES = ["collecting tests", "test_home PASSED", "42 passed in 3.1s"]


@pytest.fixture
def azdo() -> Iterator[AzureDevOpsEmulator]:
    with AzureDevOpsEmulator() as emulator:
        emulator.add_project(ORG, PROJECT)
        emulator.add_project("fabrikam", "infra")
        emulator.add_token(TOKEN, orgs=[ORG])
        emulator.add_pipeline(ORG, PROJECT, "smoke", parameters=SMOKE_PARAMETERS, steps=SMOKE_LINES, seconds=30,
                              branches=["main", "release/1"], tags=["v1.0"],
                              variables={"verbosity": {"value": "normal", "settable": True},
                                         "buildConfiguration": {"value": "Release"}})
        emulator.add_pipeline(ORG, PROJECT, "broken", parameters={"slipway_run": {"type": "string", "default": " "}},
                              outcome="failed", jobs={"Build": ["compiling"], "Test": ["test_cart FAILED", "1 failed"]})
        emulator.add_pipeline(ORG, PROJECT, "slow", parameters={"slipway_run": {"type": "string", "default": " "}},
                              seconds=7200)
        emulator.add_pipeline(ORG, PROJECT, "plain", parameters={"release": {"type": "string", "default": " "}})
        yield emulator


def pipeline_id(azdo: AzureDevOpsEmulator, name: str) -> int:
    return next(p.id for p in azdo.pipelines.values() if p.name == name)


@pytest.fixture
def adapter(azdo: AzureDevOpsEmulator) -> AzurePipelines:
    return AzurePipelines(Settings(azure_devops_url=azdo.url, arm_auth="local-emulator"))


def run_smoke(adapter: AzurePipelines, azdo: AzureDevOpsEmulator, marker: str = "slipway-r7-aaaa", **extra: Any) -> int:
    return adapter.run(ORG_URL, PROJECT, pipeline_id(azdo, "smoke"), extra.get("branch", "refs/heads/main"),
                       {"release": "Release-7", "slipway_run": marker}, extra.get("variables", {}))


# -- the adapter


def test_a_run_starts_and_goes_not_started_in_progress_completed(adapter: AzurePipelines,
                                                                 azdo: AzureDevOpsEmulator) -> None:
    run_id = run_smoke(adapter, azdo, variables={"verbosity": "detailed"})
    sent = next(r for r in azdo.requests if r.method == "POST")
    assert sent.path == f"/{ORG}/{PROJECT}/_apis/pipelines/{pipeline_id(azdo, 'smoke')}/runs"
    assert sent.query["api-version"] == "7.1"
    assert sent.body == {"resources": {"repositories": {"self": {"refName": "refs/heads/main"}}},
                         "templateParameters": {"release": "Release-7", "slipway_run": "slipway-r7-aaaa"},
                         "variables": {"verbosity": {"value": "detailed", "isSecret": False}}}
    assert {k.lower(): v for k, v in sent.headers.items()}["authorization"] == f"Bearer {TOKEN}"
    smoke = pipeline_id(azdo, "smoke")
    run = adapter.get_run(ORG, PROJECT, smoke, run_id)
    assert (run.id, run.status, run.conclusion) == (run_id, "notStarted", None)
    project_id = azdo.projects[(ORG, PROJECT)]
    assert run.url == f"{azdo.url}/{ORG}/{project_id}/_build/results?buildId={run_id}"
    azdo.advance(2)
    assert adapter.get_run(ORG, PROJECT, smoke, run_id).status == "inProgress"
    azdo.advance(30)
    done = adapter.get_run(ORG, PROJECT, smoke, run_id)
    assert (done.status, done.conclusion) == ("completed", "succeeded")
    assert json.loads(azdo._build_json(azdo.runs[run_id], azdo.url, listed=False)["parameters"]) == \
        {"verbosity": "detailed"}  # queue-time variables as Azure DevOps keeps them
    assert httpx.get(run.url).status_code == 200  # the results page, for people
    with pytest.raises(TargetError, match="belongs to pipeline"):
        adapter.get_run(ORG, PROJECT, pipeline_id(azdo, "slow"), run_id)


def test_find_run_by_its_marker_parameter(adapter: AzurePipelines, azdo: AzureDevOpsEmulator) -> None:
    smoke = pipeline_id(azdo, "smoke")
    first = run_smoke(adapter, azdo, "slipway-r7-abc")
    azdo.advance(1)
    second = run_smoke(adapter, azdo, "slipway-r7-abcd")
    found = adapter.find_run(ORG, PROJECT, smoke, "slipway_run", "slipway-r7-abc")
    assert found is not None and found.id == first and found.status == "notStarted"  # listed before it starts
    other = adapter.find_run(ORG, PROJECT, smoke, "slipway_run", "slipway-r7-abcd")
    assert other is not None and other.id == second
    assert adapter.find_run(ORG, PROJECT, smoke, "slipway_run", "slipway-r7-ab") is None
    assert adapter.find_run(ORG, PROJECT, pipeline_id(azdo, "slow"), "slipway_run", "slipway-r7-abc") is None
    listed = [r for r in azdo.requests if r.path.endswith("/_apis/build/builds")][0]
    assert listed.query["queryOrder"] == "queueTimeDescending" and listed.query["definitions"] == str(smoke)
    assert listed.query["minTime"].endswith("Z")
    # Without a queue-time order the emulator reads minTime as a finish time, as the API describes it: a run
    # that has not finished would not be listed.
    with httpx.Client(base_url=azdo.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        plain = c.get(f"/{ORG}/{PROJECT}/_apis/build/builds", params={"definitions": smoke, "api-version": "7.1",
                                                                       "minTime": "2020-01-01T00:00:00Z"})
        assert plain.status_code == 200 and plain.json()["count"] == 0


def test_find_run_reads_builds_one_by_one_when_the_list_leaves_parameters_out(adapter: AzurePipelines,
                                                                              azdo: AzureDevOpsEmulator) -> None:
    azdo.list_template_parameters = False
    first = run_smoke(adapter, azdo, "slipway-r7-one")
    run_smoke(adapter, azdo, "slipway-r7-two")
    found = adapter.find_run(ORG, PROJECT, pipeline_id(azdo, "smoke"), "slipway_run", "slipway-r7-one")
    assert found is not None and found.id == first
    assert sum(r.path.endswith(f"/build/builds/{first}") for r in azdo.requests) == 1


def test_find_run_pages_through_many_runs(adapter: AzurePipelines, azdo: AzureDevOpsEmulator) -> None:
    marker = "slipway-r7-first"
    first = run_smoke(adapter, azdo, marker)
    for i in range(120):
        azdo.advance(1)
        run_smoke(adapter, azdo, f"slipway-r7-n{i}")
    found = adapter.find_run(ORG, PROJECT, pipeline_id(azdo, "smoke"), "slipway_run", marker)
    assert found is not None and found.id == first
    pages = [r.query for r in azdo.requests if r.path.endswith("/_apis/build/builds")]
    assert len(pages) == 2 and "continuationToken" not in pages[0] and pages[1]["continuationToken"]


def test_cancel_then_cancel_again(adapter: AzurePipelines, azdo: AzureDevOpsEmulator) -> None:
    run_id = run_smoke(adapter, azdo)
    smoke = pipeline_id(azdo, "smoke")
    azdo.advance(5)
    adapter.cancel(ORG, PROJECT, run_id)
    patch = next(r for r in azdo.requests if r.method == "PATCH")
    assert patch.path.endswith(f"/_apis/build/builds/{run_id}") and patch.body == {"status": "cancelling"}
    assert adapter.get_run(ORG, PROJECT, smoke, run_id).status == "cancelling"  # it takes a moment
    azdo.advance(azdo.cancel_seconds)
    run = adapter.get_run(ORG, PROJECT, smoke, run_id)
    assert (run.status, run.conclusion) == ("completed", "canceled")
    adapter.cancel(ORG, PROJECT, run_id)  # nothing left to cancel: no error, no second PATCH
    assert sum(r.method == "PATCH" for r in azdo.requests) == 1


def test_logs_are_the_tasks_last_lines_without_the_job_logs_repeating_them(adapter: AzurePipelines,
                                                                          azdo: AzureDevOpsEmulator) -> None:
    broken = pipeline_id(azdo, "broken")
    run_id = adapter.run(ORG, PROJECT, broken, "refs/heads/main", {"slipway_run": "m1"}, {})
    azdo.advance(40)
    assert adapter.log_lines(ORG, PROJECT, run_id, 6) == [
        "[Test] 1 failed", "[Test] ##[error]Bash exited with code '1'.", "[Test] ##[section]Finishing: Script",
        "[Test] ##[section]Starting: Finalize Job", "[Test] Cleaning up task key",
        "[Test] ##[section]Finishing: Finalize Job"]
    every = adapter.log_lines(ORG, PROJECT, run_id, 1000)
    assert sum("test_cart FAILED" in line for line in every) == 1  # read from the task's log only
    assert every.index("[Build] compiling") < every.index("[Test] test_cart FAILED")
    assert every[-1] == "[Test] ##[section]Finishing: Finalize Job"
    assert not any(line.split("] ", 1)[1][:4].isdigit() for line in every)  # no timestamps
    assert adapter.log_lines(ORG, PROJECT, run_id, 2) == every[-2:]
    ranged = [r.query for r in azdo.requests if "/logs/" in r.path][-1]
    assert int(ranged["endLine"]) - int(ranged["startLine"]) <= 2  # only the lines it needs
    assert not [r for r in azdo.requests if r.path.endswith("/logs/1")]  # the Build job's log: never read


@pytest.mark.parametrize(("change", "status", "message"), [
    ({"templateParameters": {"release": "1", "extra": "x"}}, 400, "Unexpected parameter 'extra'"),
    ({"templateParameters": {"dry": "true"}}, 400, "A value for the 'release' parameter must be provided."),
    ({"templateParameters": {"release": "1", "dry": "maybe"}}, 400, "is not a valid 'boolean'"),
    ({"templateParameters": {"release": "1", "region": "mars"}}, 400, "is not a valid value"),
    ({"variables": {"buildConfiguration": "Debug"}}, 400, "You can't set the following variables (buildConfiguration)"),
    ({"variables": {"unknown": "x"}}, 400, "Settable at queue time"),
    ({"branch": "refs/heads/nope"}, 400, "Unable to resolve the reference 'refs/heads/nope'"),
    ({"pipeline": 999}, 404, "Pipeline with id 999"),
    ({"project": "nope"}, 404, "TF200016: The following project does not exist: nope"),
    ({"organization": "fabrikam"}, 401, "TF400813"),
])
def test_refusals_are_final_with_azure_devops_message(adapter: AzurePipelines, azdo: AzureDevOpsEmulator,
                                                      change: dict[str, Any], status: int, message: str) -> None:
    args: dict[str, Any] = {"organization": ORG_URL, "project": PROJECT, "pipeline": pipeline_id(azdo, "smoke"),
                            "branch": "refs/heads/main", "templateParameters": {"release": "1"}, "variables": {},
                            **change}
    with pytest.raises(TargetError) as caught:
        adapter.run(args["organization"], args["project"], args["pipeline"], args["branch"],
                    args["templateParameters"], args["variables"])
    assert not caught.value.retryable and f": {status} " in str(caught.value) and message in str(caught.value)
    assert azdo.started_runs == 0


def test_permissions_and_tokens(azdo: AzureDevOpsEmulator) -> None:
    smoke = pipeline_id(azdo, "smoke")

    class Credential:
        """What azure-identity's ManagedIdentityCredential answers: a token for the scope asked."""

        def __init__(self, token: str) -> None:
            self.token = token
            self.scopes: list[str] = []

        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            self.scopes.extend(scopes)
            return AccessToken(self.token, 2**31 - 1)

    settings = Settings(azure_devops_url=azdo.url)
    viewer = Credential("eyJ0eXAi.viewer")
    azdo.add_token(viewer.token, name="slipway-mi", queue=False, stop=False)
    with pytest.raises(TargetError) as caught:
        AzurePipelines(settings, viewer).run(ORG, PROJECT, smoke, "refs/heads/main", {"release": "1"}, {})
    assert ": 403 TF215106: Access denied. slipway-mi needs Queue builds permissions" in str(caught.value)
    assert viewer.scopes == [AZURE_DEVOPS_SCOPE] and viewer.token not in str(caught.value)
    run_id = AzurePipelines(Settings(azure_devops_url=azdo.url, arm_auth="local-emulator")).run(
        ORG, PROJECT, smoke, "refs/heads/main", {"release": "1"}, {})
    with pytest.raises(TargetError, match="needs Stop builds permissions"):
        AzurePipelines(settings, viewer).cancel(ORG, PROJECT, run_id)
    queuer = Credential("eyJ0eXAi.queuer")
    azdo.add_token(queuer.token, name="queuer", configure=False)
    with pytest.raises(TargetError, match="needs Edit queue build configuration permissions"):
        AzurePipelines(settings, queuer).run(ORG, PROJECT, smoke, "refs/heads/main", {"release": "1"}, {})
    assert azdo.started_runs == 1
    assert AzurePipelines(settings, viewer).get_run(ORG, PROJECT, smoke, run_id).id == run_id  # reading is allowed
    with pytest.raises(TargetError) as unknown:
        AzurePipelines(settings, Credential("eyJ0eXAi.stranger")).get_run(ORG, PROJECT, smoke, run_id)
    assert ": 401 " in str(unknown.value) and "not a user of the organization" in str(unknown.value)
    with pytest.raises(TargetError, match="neither an organization name"):
        AzurePipelines(settings, viewer).get_run("https://evil.example/contoso", PROJECT, smoke, run_id)


@pytest.mark.parametrize(("fault", "status", "wait"), [("throttle", 429, 3.0), ("error", 500, None)])
def test_throttling_and_server_errors_are_retryable(adapter: AzurePipelines, azdo: AzureDevOpsEmulator, fault: str,
                                                    status: int, wait: float | None) -> None:
    azdo.inject("run", fault, seconds=wait)
    with pytest.raises(TargetError) as caught:
        run_smoke(adapter, azdo)
    assert caught.value.retryable and f": {status} " in str(caught.value)
    assert caught.value.retry_after == wait
    assert azdo.started_runs == 0
    run_smoke(adapter, azdo)
    assert azdo.started_runs == 1


def test_network_failure_is_retryable() -> None:
    adapter = AzurePipelines(Settings(azure_devops_url="http://127.0.0.1:9", arm_auth="local-emulator"))
    with pytest.raises(TargetError) as caught:
        adapter.get_run(ORG, PROJECT, 1, 1)
    assert caught.value.retryable


def test_the_emulator_is_strict(azdo: AzureDevOpsEmulator) -> None:
    smoke = pipeline_id(azdo, "smoke")
    url = f"/{ORG}/{PROJECT}/_apis/pipelines/{smoke}/runs"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"templateParameters": {"release": "1"}}
    with httpx.Client(base_url=azdo.url) as c:
        assert c.post(url, params={"api-version": "7.1"}, json=body).status_code == 401
        missing = c.post(url, json=body, headers=auth)
        assert missing.status_code == 400 and missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
        assert c.post(url, params={"api-version": "9.0"}, json=body, headers=auth).status_code == 400
        assert c.post(url, params={"api-version": "7.1-preview.1"}, json=body, headers=auth).status_code == 200
        assert c.post(url, params={"api-version": "7.1"}, content=b"{not json", headers=auth).status_code == 400
        assert c.post(url, params={"api-version": "7.1"}, json={**body, "templateParameters": {"release": 1}},
                      headers=auth).status_code == 400
        assert c.post(url, params={"api-version": "7.1"}, json={**body, "resources": {"repositories": {"self": {
            "refName": "main"}}}}, headers=auth).status_code == 400  # a full ref only
        assert c.get(f"/{ORG}/{PROJECT}/_apis/build/builds?api-version=7.1&api-version=7.1",
                     headers=auth).status_code == 400
        assert c.get(f"/{ORG}/{PROJECT}/_apis/build/builds", params={"api-version": "7.1", "queryOrder": "newest"},
                     headers=auth).status_code == 400
        azdo.advance(40)
        run_id = next(iter(azdo.runs))
        late = c.patch(f"/{ORG}/{PROJECT}/_apis/build/builds/{run_id}", params={"api-version": "7.1"},
                       json={"status": "cancelling"}, headers=auth)
        assert late.status_code == 400 and set(late.json()) >= {"message", "typeKey", "$id"}
        text = c.get(f"/{ORG}/{PROJECT}/_apis/build/builds/{run_id}/logs/3", params={"api-version": "7.1"},
                     headers={**auth, "Accept": "text/plain"})
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert text.text.splitlines()[0].endswith("Z ##[section]Starting: Script") and "test_home PASSED" in text.text
    with pytest.raises(ValueError):
        azdo.add_pipeline(ORG, PROJECT, "bad", variables={"secret.thing": {"value": "x"}})


# -- the step kind


def step_config(azdo: AzureDevOpsEmulator, pipeline: str = "smoke", **extra: Any) -> dict[str, Any]:
    body = {"type": "run-pipeline", "name": "smoke", "provider": "azure-pipelines", "organization": ORG_URL,
            "project": PROJECT, "pipelineId": pipeline_id(azdo, pipeline), **extra}
    if pipeline == "smoke" and "templateParameters" not in extra:
        body["templateParameters"] = {"release": "$(Release.ReleaseName)"}
    return RunPipelineStep.model_validate(body).model_dump(exclude_none=True)


class Harness:
    """One step run through its queue messages, as the runner drives it: the step's stored state between calls
    (the intent is stored when the step records it), TargetErrors turned into retries and failures, and the
    clocks moved on by each retry's delay."""

    def __init__(self, azdo: AzureDevOpsEmulator, config: dict[str, Any], release_id: int = 7) -> None:
        self.azdo = azdo
        self.clock = FakeClock(NOW)
        settings = Settings(azure_devops_url=azdo.url, arm_auth="local-emulator")
        self.deps = Deps(settings=settings, store=None, bus=None, clock=self.clock,  # type: ignore[arg-type]
                         app_service=None, packages=None, logs=None, probe=None, mailer=None,  # type: ignore
                         signals=None, function_keys=None, arm_deployments=None, container_jobs=None,  # type: ignore
                         pipelines=None, secrets=None, azure_pipelines=AzurePipelines(settings))  # type: ignore
        stage = {"name": "QA", "target": TARGET, "trigger": {"type": "afterRelease"}, "steps": [config]}
        release = Release.new(id=release_id, definition_id="d1", revision=1, name=f"Release-{release_id}",
                              created_at=NOW.isoformat(), created_by="amita", reason="manual", description="",
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
        self.azdo.advance(seconds)

    def drive(self, limit: int = 400) -> Outcome:
        for _ in range(limit):
            outcome = self.once()
            if outcome.kind != "retry":
                return outcome
        raise AssertionError("the step never ended")


def test_success_copies_the_last_log_lines(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo, logLines=5))
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    (run,) = azdo.runs.values()
    assert run.template_parameters["release"] == "Release-7"
    assert run.template_parameters["slipway_run"].startswith("slipway-r7-") and run.ref == "refs/heads/main"
    url = f"{azdo.url}/{ORG}/{azdo.projects[(ORG, PROJECT)]}/_build/results?buildId={run.id}"
    assert outcome.state["outputs"] == {"runId": str(run.id), "runUrl": url, "conclusion": "succeeded"}
    copied = [line.split(" ", 1)[1] for line in h.lines]
    assert "[Job] 42 passed in 3.1s" in copied and "[Job] test_home PASSED" not in copied  # only the last 5
    assert copied[-1] == "--- end of the run's logs ---" and f"Azure Pipelines run: {url}" in copied
    assert [o.delay for o in h.outcomes[:-1]] == [5.0, 7.0, 9.0, 11.0]  # then it had completed
    assert azdo.started_runs == 1


def test_failure_fails_with_the_result_and_the_last_lines(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo, "broken", logLines=0))
    outcome = h.drive()
    assert outcome.kind == "failed" and "concluded failed" in outcome.message
    assert "[Test] ##[error]Bash exited with code '1'." in outcome.message and "[Test] 1 failed" in outcome.message
    assert "##[section]" not in outcome.message
    assert not any("1 failed" in line for line in h.lines)  # logLines 0: nothing copied


def test_partially_succeeded_passes(azdo: AzureDevOpsEmulator) -> None:
    azdo.add_pipeline(ORG, PROJECT, "partial", parameters={"slipway_run": {"type": "string", "default": " "}},
                      outcome="partiallySucceeded")
    outcome = Harness(azdo, step_config(azdo, "partial")).drive()
    assert outcome.kind == "succeeded" and "partially succeeded" in outcome.message
    assert outcome.state["outputs"]["conclusion"] == "partiallySucceeded"


def test_delivered_twice_starts_one_run(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo))
    first, second = h.context(), h.context(claimed=False)  # the same message, received twice at once
    assert h.once(first).kind == "retry"
    with pytest.raises(ClaimLost):
        run_pipeline(h.deps, second)  # its claim was taken: it stops before acting
    assert azdo.started_runs == 1
    h.stored = {"intent": h.stored["intent"]}  # then a copy that arrives after the first's claim ran out
    assert h.drive().kind == "succeeded"
    assert azdo.started_runs == 1


def test_crash_after_start_finds_the_run_by_its_marker(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo))
    azdo.inject("run", "lost")  # Azure DevOps starts the run; the answer never arrives
    assert h.once().kind == "retry" and azdo.started_runs == 1
    assert set(h.stored) >= {"intent", "targetErrors"} and "runId" not in h.stored
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    assert azdo.started_runs == 1
    assert any("found Azure Pipelines run" in line for line in h.lines)


def test_a_run_request_that_never_arrived_is_made_again_after_the_grace(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo))
    azdo.inject("run", "error")
    assert h.once().kind == "retry" and azdo.started_runs == 0
    outcome = h.drive()
    assert outcome.kind == "succeeded" and azdo.started_runs == 1
    assert any("starting it again" in line for line in h.lines)
    assert sum(o.delay for o in h.outcomes[:-1]) >= AZURE_FIND_GRACE_SECONDS
    assert [r.template_parameters["slipway_run"] for r in azdo.runs.values()] == [outcome.state["intent"]["marker"]]


def test_throttled_polls_retry_and_lasting_errors_fail(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo))
    azdo.inject("build", "throttle", 3, seconds=4)
    assert h.drive().kind == "succeeded"
    assert [o.delay for o in h.outcomes if ": 429 " in o.message] == [4.0, 4.0, 4.0]
    g = Harness(azdo, step_config(azdo), release_id=8)
    azdo.inject("build", "error", 50)
    outcome = g.drive()
    assert outcome.kind == "failed" and ": 500 " in outcome.message
    assert f"after {MAX_TARGET_RETRIES} retries" in outcome.message


def test_timeout_cancels_the_run(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo, "slow", timeoutMinutes=1))
    outcome = h.drive()
    assert outcome.kind == "failed" and "timed out after 1 minutes" in outcome.message
    (run,) = azdo.runs.values()
    azdo.advance(azdo.cancel_seconds)
    assert (run.status_at(azdo.now()), run.result_at(azdo.now())) == ("completed", "canceled")


def test_stop_cancels_by_state_or_by_marker_and_twice_is_harmless(azdo: AzureDevOpsEmulator) -> None:
    h = Harness(azdo, step_config(azdo, "slow"))
    h.once()
    assert stop_run_pipeline(h.deps, h.context()).startswith("cancel requested for Azure Pipelines run")
    azdo.advance(azdo.cancel_seconds)
    assert "already completed (canceled)" in stop_run_pipeline(h.deps, h.context())
    g = Harness(azdo, step_config(azdo, "slow"), release_id=8)  # another release: another marker
    azdo.inject("run", "lost")
    g.once()
    assert "runId" not in g.stored  # only the intent: found by its marker
    assert stop_run_pipeline(g.deps, g.context()).startswith("cancel requested")
    azdo.advance(azdo.cancel_seconds)
    assert sorted(r.result_at(azdo.now()) or "" for r in azdo.runs.values()) == ["canceled", "canceled"]
    fresh = Harness(azdo, step_config(azdo), release_id=9)
    assert stop_run_pipeline(fresh.deps, fresh.context()) == "no Azure Pipelines run was started"


def test_a_pipeline_without_the_marker_parameter_fails_with_what_to_add(azdo: AzureDevOpsEmulator) -> None:
    outcome = Harness(azdo, step_config(azdo, "plain")).drive()
    assert outcome.kind == "failed"
    assert "Unexpected parameter 'slipway_run'" in outcome.message and "- name: slipway_run" in outcome.message
    assert azdo.started_runs == 0


def test_branch_and_variables_reach_the_run(azdo: AzureDevOpsEmulator) -> None:
    config = step_config(azdo, branch="release/1", variables={"verbosity": "$(Release.ReleaseName)"},
                         templateParameters={"release": "{version}", "region": "northeurope"})
    assert Harness(azdo, config).drive().kind == "succeeded"
    (run,) = azdo.runs.values()
    assert run.ref == "refs/heads/release/1" and run.variables["verbosity"]["value"] == "Release-7"
    assert run.template_parameters["release"] == "1.2.3" and run.template_parameters["region"] == "northeurope"


# -- the step model


def test_step_model_keeps_each_providers_fields_apart(azdo: AzureDevOpsEmulator) -> None:
    step = RunPipelineStep.model_validate(step_config(azdo))
    assert (step.branch, step.markerParameter, step.variables, step.timeoutMinutes) == \
        ("refs/heads/main", "slipway_run", {}, 60)
    assert step.ref is None and step.markerInput is None and step.inputs is None
    assert not {"ref", "markerInput", "inputs", "tokenSecret"} & set(step_config(azdo))
    RunPipelineStep.model_validate({**step_config(azdo), "organization": "contoso", "project": "Web App 2"})
    github = RunPipelineStep.model_validate({"type": "run-pipeline", "repository": "contoso/tailspin",
                                             "workflow": "smoke.yml",
                                             "tokenSecret": "https://kv-slipway.vault.azure.net/secrets/gh"})
    assert (github.provider, github.ref, github.markerInput, github.inputs, github.branch) == \
        ("github", "main", "slipway_run", {}, None)
    bad = [{"organization": "https://evil.example/contoso"}, {"organization": "-contoso"}, {"project": "_web"},
           {"project": "a/b"}, {"pipelineId": 0}, {"branch": "has space"}, {"variables": {"secretThing": "x"}},
           {"variables": {"a b": "x"}}, {"templateParameters": {"slipway_run": "x"}},
           {"templateParameters": {f"p{n}": "x" for n in range(51)}}, {"repository": "contoso/tailspin"},
           {"tokenSecret": "https://kv-slipway.vault.azure.net/secrets/gh"}, {"inputs": {"a": "b"}},
           {"pipelineId": None}, {"provider": "jenkins"}]
    for change in bad:
        with pytest.raises(ValidationError):
            RunPipelineStep.model_validate({**step_config(azdo), **change})
    with pytest.raises(ValidationError) as caught:
        RunPipelineStep.model_validate({**github.model_dump(exclude_none=True), "project": "web"})
    assert any("`project` is for provider azure-pipelines" in e.message for e in field_errors(caught.value))

"""Container Apps jobs: the adapter drives the emulator through the real azure-mgmt-appcontainers client and
reads console lines through azure-monitor-query's LogsQueryClient from the Monitor emulator; the `script`
step kind runs on that adapter, called the way the step runner calls it (one look per run, state carried
from run to run, the clock moving on by each retry's delay)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.container_apps_emulator import ContainerAppsEmulator
from local.monitor_emulator import MonitorEmulator
from shared import bootstrap
from shared.adapters.container_jobs import ContainerJobs
from shared.config import Settings
from shared.domain.release import Deployment, Release, StepRun
from shared.domain.vocabulary import Reason, Status, StepStatus
from shared.ports import JobExecution, JobRun, TargetError
from shared.schemas.step_script import ScriptStep
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext
from shared.services.steps.script import script, stop_script
from tests.fakes import (
    FakeAppService,
    FakeClock,
    FakeFunctionKeys,
    FakeLogs,
    FakeMailer,
    FakePackages,
    FakeProbe,
    FakeSignals,
    MemoryBus,
)
from tests.memory_store import MemoryStore

SUB = "00000000-0000-0000-0000-0000000000ca"
ENV = f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/managedEnvironments/env-db"
WORKSPACE = "6f1c1f3e-0000-4000-8000-00000000c0de"
SECRET = "hunter2-in-the-vault"
IMAGE = "slipway/sample-migrate:1"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def monitor() -> Iterator[MonitorEmulator]:
    with MonitorEmulator() as running:
        yield running


@pytest.fixture
def apps(monitor: MonitorEmulator) -> Iterator[ContainerAppsEmulator]:
    with ContainerAppsEmulator() as running:
        running.feed(monitor)
        running.retry_after = "0"
        running.stop_grace_seconds = 1.0
        yield running


@pytest.fixture
def job(apps: ContainerAppsEmulator) -> str:
    return apps.add_job(SUB, "rg-db", "migrate", ENV, secrets={"db-password": SECRET}, log_workspace_id=WORKSPACE)


@pytest.fixture
def jobs(apps: ContainerAppsEmulator, monitor: MonitorEmulator) -> ContainerJobs:
    adapter = ContainerJobs(Settings(container_apps_endpoint=apps.url, logs_endpoint=monitor.url,
                                     arm_auth="local-emulator"))
    adapter.wait_seconds = 5.0
    return adapter


def finished(jobs: ContainerJobs, job: str, name: str, timeout: float = 20.0) -> JobExecution:
    deadline = time.monotonic() + timeout
    while True:
        found = jobs.execution(job, name)
        assert found is not None
        if found.finished or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def run(**kw: Any) -> JobRun:
    return JobRun(**{"image": IMAGE, "marker": "m-1", **kw})


# -- the adapter through the SDKs


def test_start_runs_the_template_and_its_lines_come_back_in_order(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                                   job: str) -> None:
    name = jobs.start(job, run(args=("--target", "42"), env={"DB_HOST": "db.internal"},
                               secret_env={"DB_PASSWORD": "db-password"}))
    done = finished(jobs, job, name)
    assert (done.status, done.exit_code, done.marker) == ("Succeeded", 0, "m-1")
    lines = jobs.logs(job, name, 0)
    assert lines == ["migrate: connecting to db.internal", "migrate: arguments --target 42",
                     f"migrate: DB_PASSWORD received ({len(SECRET)} characters)",
                     *[f"migrate: applied {n:04d}_step_{n}" for n in range(1, 5)],
                     "migrate: done, 4 migrations applied"]
    assert jobs.logs(job, name, 6) == lines[6:]
    assert jobs.logs(job, name, len(lines)) == []
    # the secret went by reference: its value was never in a request Slipway sent
    start = next(r for r in apps.requests if r.path.endswith("/start"))
    env = start.body["containers"][0]["env"]
    assert {"name": "DB_PASSWORD", "secretRef": "db-password"} in env and SECRET not in str(start.body)
    assert {"name": "SLIPWAY_RUN", "value": "m-1"} in env
    # and the container saw only what the template gave, plus PATH
    ran = apps.executions("migrate")[0]
    assert set(ran.env) == {"DB_HOST", "DB_PASSWORD", "SLIPWAY_RUN", "PATH"} and ran.env["DB_PASSWORD"] == SECRET


def test_executions_are_listed_newest_first_across_pages(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                         job: str) -> None:
    apps.page_size = 2
    names = []
    for n in range(5):
        names.append(jobs.start(job, run(marker=f"m-{n}", env={"MIGRATION_COUNT": "0"})))
        time.sleep(0.01)
    listed = jobs.executions(job)
    assert [e.name for e in listed] == names[::-1]
    assert [e.marker for e in listed] == [f"m-{n}" for n in range(4, -1, -1)]
    assert sum(1 for r in apps.requests if r.path.endswith("/executions")) >= 3  # it followed nextLink


def test_a_failing_execution_shows_its_exit_code_and_its_error_line(jobs: ContainerJobs, job: str) -> None:
    name = jobs.start(job, run(env={"MIGRATION_FAIL": "1"}))
    done = finished(jobs, job, name)
    assert (done.status, done.exit_code) == ("Failed", 3)
    assert jobs.logs(job, name, 0)[-2:] == ["migrate: applying 0004_add_index ...",
                                            'error: migration 0004_add_index failed: relation "orders" does not exist']


def test_stop_kills_the_process_and_stopping_again_does_nothing(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                                job: str) -> None:
    name = jobs.start(job, run(env={"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "1"}))
    assert eventually(lambda: jobs.logs(job, name, 0))  # it runs
    jobs.stop(job, name)
    done = finished(jobs, job, name)
    assert done.status == "Stopped"
    ran = apps.executions("migrate")[0]
    assert ran.process is not None and ran.process.poll() is not None
    stops = sum(1 for r in apps.requests if r.path.endswith("/stop"))
    jobs.stop(job, name)
    assert sum(1 for r in apps.requests if r.path.endswith("/stop")) == stops


def test_a_throttled_start_is_retryable_after_retry_after_and_starts_nothing(apps: ContainerAppsEmulator,
                                                                            jobs: ContainerJobs, job: str) -> None:
    apps.inject("start", "throttle")
    with pytest.raises(TargetError) as err:
        jobs.start(job, run())
    assert err.value.retryable and err.value.retry_after == 2
    assert apps.executions("migrate") == []
    apps.inject("execution", "error")
    name = jobs.start(job, run())
    with pytest.raises(TargetError) as err:
        jobs.execution(job, name)
    assert err.value.retryable and "500" in str(err.value)


def test_an_unknown_job_or_execution_is_final(jobs: ContainerJobs, job: str) -> None:
    other = job.replace("/jobs/migrate", "/jobs/nightly")
    with pytest.raises(TargetError) as err:
        jobs.start(other, run())
    assert not err.value.retryable and "not found" in str(err.value)
    with pytest.raises(TargetError) as err:
        jobs.executions(other)
    assert not err.value.retryable
    assert jobs.execution(job, "migrate-nothere") is None
    with pytest.raises(TargetError) as err:
        jobs.start("/subscriptions/x/jobs/migrate", run())
    assert not err.value.retryable


def test_what_arm_refuses_is_a_final_error(apps: ContainerAppsEmulator, jobs: ContainerJobs, job: str) -> None:
    with pytest.raises(TargetError) as err:
        jobs.start(job, run(secret_env={"DB_PASSWORD": "no-such-secret"}))
    assert not err.value.retryable and "ContainerAppSecretRefNotFound" in str(err.value)
    with pytest.raises(TargetError) as err:
        jobs.start(job, run(cpu=0.5, memory="2Gi"))
    assert not err.value.retryable and "ContainerAppInvalidResourceTotal" in str(err.value)
    assert apps.executions("migrate") == []


def test_an_image_nobody_seeded_never_becomes_a_host_command(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                             job: str) -> None:
    name = jobs.start(job, run(image="docker.io/library/bash:5", command=("rm", "-rf", "/tmp/x")))
    done = finished(jobs, job, name)
    assert (done.status, done.exit_code) == ("Failed", None)
    assert "ImagePullFailure" in getattr(done, "detail", "")
    assert apps.executions("migrate")[0].process is None
    # a seeded image with a command that is not a file of the image fails to start, as runc would
    name = jobs.start(job, run(command=("/bin/sh", "-c", "echo hi")))
    done = finished(jobs, job, name)
    assert (done.status, done.exit_code) == ("Failed", 128)


def test_lines_before_the_first_one_ingested_read_as_none(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                          monitor: MonitorEmulator, job: str) -> None:
    apps.on_console = None  # nothing reaches Log Analytics: its table does not exist yet
    name = jobs.start(job, run())
    finished(jobs, job, name)
    assert jobs.logs(job, name, 0) == []
    monitor.inject("logs", "throttle")
    with pytest.raises(TargetError) as err:
        jobs.logs(job, name, 0)
    assert err.value.retryable and err.value.retry_after == 2


def test_an_environment_without_log_analytics_is_said_plainly(apps: ContainerAppsEmulator, jobs: ContainerJobs) -> None:
    env = ENV.replace("env-db", "env-otel")
    apps.add_environment(env, destination="azure-monitor")
    other = apps.add_job(SUB, "rg-db", "seed", env)
    name = jobs.start(other, run())
    with pytest.raises(TargetError) as err:
        jobs.logs(other, name, 0)
    assert not err.value.retryable and "azure-monitor" in str(err.value)


# -- the step kind


def config(**kw: Any) -> dict[str, Any]:
    """A script step as the definition stores it: validated by its model, defaults filled."""
    body = {"type": "script", "name": "migrate", "job": f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/"
            f"Microsoft.App/jobs/migrate", "image": IMAGE, "secretEnv": {"DB_PASSWORD": "db-password"}, **kw}
    return ScriptStep.model_validate(body).model_dump(mode="json", exclude_none=True)


@dataclass
class Step:
    """One script step of release 7's Dev stage, run as the step runner runs it."""

    deps: Deps
    cfg: dict[str, Any]
    now: datetime = NOW
    lines: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        stage = {"name": "Dev", "target": {"subscriptionId": SUB, "resourceGroup": "rg-web", "site": "tailspin"},
                 "steps": [self.cfg]}
        self.release = Release.new(id=7, definition_id="d1", revision=1, name="Release-7", created_at=NOW.isoformat(),
                                   created_by="amita", reason="manual", description="", artifacts=[],
                                   definition={"name": "Tailspin", "stages": [stage]})
        self.run = StepRun(0, "script", "migrate", StepStatus.IN_PROGRESS, run=1)
        self.release.stages["Dev"].deployments.append(Deployment(
            attempt=1, status=Status.IN_PROGRESS, reason=Reason.MANUAL, requested_by="amita",
            queued_at=NOW.isoformat(), steps=[self.run]))

    def context(self) -> StepContext:
        plan = self.release.plan.stage("Dev")
        assert plan is not None
        return StepContext(self.release, plan, plan.steps[0], self.run, self.now)

    def once(self) -> Outcome:
        """One run; a retry's state is kept and its message becomes the next run, `delay` seconds later."""
        ctx = self.context()
        try:
            outcome = script(self.deps, ctx)
        finally:
            self.lines += ctx.lines
        self.outcomes.append(outcome)
        if outcome.kind == "retry":
            self.run.state = outcome.state
            self.run.run += 1
            self.now += timedelta(seconds=outcome.delay)
        return outcome

    def to_end(self, limit: float = 30.0) -> Outcome:
        deadline = time.monotonic() + limit
        while (outcome := self.once()).kind == "retry":
            assert time.monotonic() < deadline, f"still running: {outcome.message}"
            time.sleep(0.05)
        return outcome

    def stop(self) -> str:
        return stop_script(self.deps, self.context())


@pytest.fixture
def deps(jobs: ContainerJobs, job: str) -> Deps:
    return with_jobs(jobs)


def with_jobs(port: Any) -> Deps:
    return bootstrap.build(Settings(auth_mode="development"), store=MemoryStore(), bus=MemoryBus(), logs=FakeLogs(),
                           clock=FakeClock(), app_service=FakeAppService(), packages=FakePackages(),
                           probe=FakeProbe(), mailer=FakeMailer(), signals=FakeSignals(),
                           function_keys=FakeFunctionKeys(), container_jobs=port)


def test_a_script_that_succeeds_passes_with_its_lines_in_the_step_log(apps: ContainerAppsEmulator, deps: Deps) -> None:
    step = Step(deps, config(args=["--target", "$(Release.ReleaseId)"],
                             env={"DB_HOST": "db-$(Release.EnvironmentName)"}))
    outcome = step.to_end()
    assert outcome.kind == "succeeded", outcome.message
    assert outcome.state["outputs"]["exitCode"] == "0"
    logged = "\n".join(step.lines)
    assert "| migrate: arguments --target 7" in logged and "| migrate: connecting to db-Dev" in logged
    assert "| migrate: done, 4 migrations applied" in logged
    assert [line.split("| ", 1)[1] for line in step.lines if "| migrate" in line] == \
        [text for _, text in apps.executions("migrate")[0].lines]  # every line, once, in order
    assert SECRET not in logged and SECRET not in str(step.run.state)
    assert "DB_PASSWORD (secret db-password of the job)" in logged
    assert len(apps.executions("migrate")) == 1


def test_a_failing_script_fails_with_its_exit_code_and_last_five_lines(deps: Deps) -> None:
    step = Step(deps, config(env={"MIGRATION_FAIL": "1", "MIGRATION_COUNT": "6"}))
    outcome = step.to_end()
    assert outcome.kind == "failed"
    head, _, tail = outcome.message.partition("; last lines:\n")
    assert "failed: exit code 3" in head
    assert tail.splitlines() == ["migrate: applied 0003_step_3", "migrate: applied 0004_step_4",
                                 "migrate: applied 0005_step_5", "migrate: applying 0006_add_index ...",
                                 'error: migration 0006_add_index failed: relation "orders" does not exist']


def test_lines_ingested_after_the_end_still_make_the_reason(apps: ContainerAppsEmulator, deps: Deps) -> None:
    apps.console_delay_seconds = 0.5  # Log Analytics' ingestion delay: every line arrives after the end
    step = Step(deps, config(env={"MIGRATION_FAIL": "1"}))
    outcome = step.to_end()
    assert outcome.kind == "failed"
    assert outcome.message.endswith('error: migration 0004_add_index failed: relation "orders" does not exist')
    ended = next(i for i, o in enumerate(step.outcomes) if "reading its last console lines" in o.message)
    assert ended < len(step.outcomes) - 1  # it kept looking after the execution had ended


def test_an_image_that_cannot_run_fails_with_arms_reason(deps: Deps) -> None:
    outcome = Step(deps, config(image="docker.io/library/bash:5")).to_end()
    assert outcome.kind == "failed"
    assert "ImagePullFailure: Failed to pull image 'docker.io/library/bash:5'" in outcome.message
    assert "it printed nothing" in outcome.message


def test_a_job_that_does_not_exist_is_a_final_error(deps: Deps) -> None:
    step = Step(deps, config(job=f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/jobs/nightly"))
    with pytest.raises(TargetError) as err:
        step.once()
    assert not err.value.retryable and "nightly" in str(err.value)


def test_a_message_delivered_twice_starts_one_execution(apps: ContainerAppsEmulator, deps: Deps) -> None:
    step = Step(deps, config())
    first, second = step.context(), step.context()  # two deliveries of run 1, before either recorded anything
    a, b = script(deps, first), script(deps, second)
    assert a.kind == b.kind == "retry" and a.state["execution"] == b.state["execution"]
    assert len(apps.executions("migrate")) == 1


class Crash(Exception):
    """The host dies."""


class CrashAfterStart:
    """The port, on a host that dies right after ARM accepted the start (before the step records it)."""

    def __init__(self, port: ContainerJobs) -> None:
        self.port = port

    def start(self, job: str, run: JobRun) -> str:
        self.port.start(job, run)
        raise Crash()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)


def test_a_crash_after_the_start_finds_the_execution_by_its_marker(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                                   job: str) -> None:
    step = Step(with_jobs(CrashAfterStart(jobs)), config())
    with pytest.raises(Crash):
        step.once()
    assert step.run.state["intent"]["marker"]  # what the run meant to do was recorded before it acted
    step.deps, step.run.run = with_jobs(jobs), step.run.run + 1  # the sweeper sends the step again
    outcome = step.to_end()
    assert outcome.kind == "succeeded", outcome.message
    assert len(apps.executions("migrate")) == 1
    assert any("started before" in line for line in step.lines)


def test_a_throttled_look_raises_for_the_runner_and_the_next_one_goes_on(apps: ContainerAppsEmulator,
                                                                         deps: Deps) -> None:
    step = Step(deps, config())
    assert step.once().kind == "retry"
    apps.inject("execution", "throttle")
    with pytest.raises(TargetError) as err:
        step.once()
    assert err.value.retryable and err.value.retry_after == 2
    assert step.to_end().kind == "succeeded"
    assert len(apps.executions("migrate")) == 1


def test_a_script_past_its_timeout_is_stopped_and_fails(apps: ContainerAppsEmulator, deps: Deps) -> None:
    step = Step(deps, config(timeoutMinutes=1, env={"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "1"}))
    assert step.once().kind == "retry"
    assert eventually(lambda: apps.executions("migrate")[0].lines)
    step.now += timedelta(minutes=1)
    outcome = step.once()
    assert outcome.kind == "failed" and "timed out after 1 minute and was stopped" in outcome.message
    assert "migrate: connecting to localhost" in outcome.message
    ran = apps.executions("migrate")[0]
    assert eventually(lambda: ran.status == "Stopped") and ran.process is not None and ran.process.poll() is not None


def test_stop_script_stops_a_running_execution_once(apps: ContainerAppsEmulator, deps: Deps) -> None:
    step = Step(deps, config(env={"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "1"}))
    step.once()
    name = step.run.state["execution"]
    assert step.stop() == f"stopped execution {name} of job migrate"
    assert eventually(lambda: apps.executions("migrate")[0].status == "Stopped")
    assert step.stop() == f"execution {name} had already ended (Stopped)"


def test_stop_script_finds_the_execution_from_an_intent_alone(apps: ContainerAppsEmulator, jobs: ContainerJobs,
                                                              job: str) -> None:
    step = Step(with_jobs(CrashAfterStart(jobs)), config(env={"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "1"}))
    with pytest.raises(Crash):
        step.once()
    step.deps = with_jobs(jobs)
    assert step.stop().startswith("stopped execution migrate-")
    assert eventually(lambda: apps.executions("migrate")[0].status == "Stopped")
    fresh = Step(with_jobs(jobs), config())
    assert fresh.stop() == "nothing to stop: the step started no execution"

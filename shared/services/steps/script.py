"""The `script` step: one execution of an Azure Container Apps job, followed to its end.

Each run of the step does one look and returns (it never sleeps):

1. Start, once. The step names its execution by a marker (the release, stage, attempt, step and the run
   that started it), which the execution carries as the environment variable `SLIPWAY_RUN`. Before
   starting, the marker is recorded as the step's intent; a later run that finds an intent but no
   execution name (the host died between the start and its record) looks for the marker among the job's
   executions, and starts only when there is none (after giving ARM's list a short while to show it).
2. Follow: the execution's status, looked at 2 s after the start, then after 2, 4 and 8 s and every 10 s
   from then on. Its console lines are read from Log Analytics as they arrive and written to the step's
   log (`logLines` counts what was read; lines pass through the log redaction, cut at 2000 characters).
3. End: Succeeded passes; Failed, Stopped and Degraded fail with the exit code when ARM reports one and
   the last lines of the output. Log Analytics ingests lines minutes late (learn.microsoft.com, "Log data
   ingestion time in Azure Monitor": typically 20 s to 3 min), so after the execution ends the step keeps
   reading for a while: until no new line came for SLIPWAY_LOG_QUIET_SECONDS (once some arrived), at most
   `LOG_SETTLE_SECONDS`. An execution that runs past `timeoutMinutes` is stopped and the step fails.

Secret values never pass through Slipway: `secretEnv` sends the names of the job's secrets, and the log
names the variables only. `stop_script` stops the execution from the step's state alone (abandoned
releases); it is idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain.keys import key_hash
from shared.ports import JobExecution, JobRun, TargetError
from shared.redaction import redact
from shared.schemas.step_script import valid_image
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext

TAIL = 5
"""Lines of output a failure's reason ends with."""
LINE_CHARS = 2000
TAIL_CHARS = 300
LINES_PER_RUN = 2000
"""Console lines written to the step's log per look; more are read on the next look, two seconds later."""
MAX_LOGGED_LINES = 50_000
"""After this many lines the step stops copying them into its log (Log Analytics keeps them all)."""
LOG_SETTLE_SECONDS = 180
LIST_LAG_SECONDS = 30
"""How long after an intent without a record the step looks for its execution before starting again."""


def script(deps: Deps, ctx: StepContext) -> Outcome:
    """Start the step's execution (once), follow it, and end with it."""
    cfg = ctx.step.config
    job = ctx.expand(str(cfg["job"]))
    state = dict(ctx.run.state)
    state.pop("targetErrors", None)  # a look that gets here got past the errors of the last ones
    if not state.get("execution"):
        return _start(deps, ctx, job, state)
    name = str(state["execution"])
    execution = deps.container_jobs.execution(job, name)
    if execution is None:
        return Outcome.fail(f"execution {name} of job {_job_name(job)} no longer exists (deleted, or aged out of "
                            f"the job's history)")
    _read_lines(deps, ctx, job, name, state)
    if not execution.finished:
        if ctx.now >= datetime.fromisoformat(state["deadline"]):
            deps.container_jobs.stop(job, name)
            ctx.log(f"execution {name} ran longer than {_duration(cfg)}: stopped it")
            return Outcome.fail(_reason(f"execution {name} timed out after {_duration(cfg)} and was stopped",
                                        execution, state))
        looks = int(state.get("looks", 0)) + 1
        state["looks"] = looks
        return Outcome.retry(f"execution {name} {execution.status.lower()}", min(10.0, 2.0 ** looks), state)
    if not state.get("endedAt"):
        state["endedAt"] = ctx.now.isoformat()
        ctx.log(f"execution {name} ended: {execution.status}"
                + (f", exit code {execution.exit_code}" if execution.exit_code is not None else ""))
    if not _settled(deps, ctx, state):
        return Outcome.retry(f"execution {name} {execution.status.lower()}; reading its last console lines", 10.0,
                             state)
    if execution.status == "Succeeded":
        outputs = {"executionName": name, "exitCode": str(execution.exit_code if execution.exit_code is not None
                                                          else 0)}
        return Outcome.ok(f"execution {name} succeeded", state={**state, "outputs": outputs})
    return Outcome.fail(_reason(f"execution {name} {execution.status.lower()}", execution, state))


def stop_script(deps: Deps, ctx: StepContext) -> str:
    """Stop the execution the step started, found by its name or, failing that, by its marker."""
    job = ctx.expand(str(ctx.step.config["job"]))
    state = ctx.run.state
    name = state.get("execution")
    if not name:
        marker = (state.get("intent") or {}).get("marker")
        if not marker:
            return "nothing to stop: the step started no execution"
        found = _find(deps, job, str(marker))
        if found is None:
            return f"nothing to stop: job {_job_name(job)} has no execution with marker {marker}"
        name = found.name
    current = deps.container_jobs.execution(job, str(name))
    if current is None:
        return f"nothing to stop: execution {name} no longer exists"
    if current.finished:
        return f"execution {name} had already ended ({current.status})"
    deps.container_jobs.stop(job, str(name))
    return f"stopped execution {name} of job {_job_name(job)}"


def _start(deps: Deps, ctx: StepContext, job: str, state: dict[str, Any]) -> Outcome:
    cfg = ctx.step.config
    intent = state.get("intent") or {}
    marker = str(intent.get("marker") or _marker(ctx))
    found = _find(deps, job, marker)
    if found is None and intent.get("marker"):
        since = ctx.now - datetime.fromisoformat(str(intent.get("at") or ctx.now.isoformat()))
        if since < timedelta(seconds=LIST_LAG_SECONDS):
            ctx.log(f"an execution with marker {marker} may have been started; looking for it again")
            return Outcome.retry("looking for the execution started before", 5.0, state)
    if found is not None:
        name = found.name
        ctx.log(f"found execution {name} of job {_job_name(job)} (marker {marker}), started before")
    else:
        run = _job_run(ctx, marker)
        if not valid_image(run.image) or "$(" in run.image:
            return Outcome.fail(f"image '{run.image}' is not an image reference with a tag or an @sha256 digest")
        ctx.log(f"starting {run.image} as an execution of job {_job_name(job)} (marker {marker})")
        if run.command:
            ctx.log(f"command: {' '.join(run.command)}")
        if run.args:
            ctx.log(f"args: {' '.join(run.args)}")
        if run.env or run.secret_env:
            # names only: values of `env` are plain but need not be repeated, and `secretEnv` are secrets
            ctx.log("environment: " + ", ".join([*(run.env or {}), *(f"{k} (secret {v} of the job)"
                                                                     for k, v in (run.secret_env or {}).items())]))
        ctx.intend({"marker": marker, "at": ctx.now.isoformat()})
        name = deps.container_jobs.start(job, run)
        ctx.log(f"started execution {name}")
    state = {**state, **ctx.run.state, "execution": name, "marker": marker, "logLines": 0, "looks": 0,
             "deadline": (_started_at(ctx, state) + timedelta(minutes=_minutes(cfg))).isoformat()}
    state.pop("targetErrors", None)
    return Outcome.retry(f"execution {name} started", 2.0, state)


def _started_at(ctx: StepContext, state: dict[str, Any]) -> datetime:
    """When the step first meant to start: the timeout counts from there, whatever runs it took."""
    at = (state.get("intent") or ctx.run.state.get("intent") or {}).get("at")
    return datetime.fromisoformat(str(at)) if at else ctx.now


def _job_run(ctx: StepContext, marker: str) -> JobRun:
    cfg = ctx.step.config
    cpu, memory = cfg.get("cpu"), cfg.get("memory")
    return JobRun(
        image=ctx.expand(str(cfg["image"])),
        command=tuple(ctx.expand(str(c)) for c in cfg.get("command") or []),
        args=tuple(ctx.expand(str(a)) for a in cfg.get("args") or []),
        env={str(k): ctx.expand(str(v)) for k, v in (cfg.get("env") or {}).items()},
        secret_env={str(k): ctx.expand(str(v)) for k, v in (cfg.get("secretEnv") or {}).items()},
        marker=marker,
        cpu=float(cpu) if cpu is not None else 0.5,
        memory=str(memory) if memory is not None else "1Gi",
    )


def _marker(ctx: StepContext) -> str:
    """The execution's name for Slipway: one per release, stage, attempt, step and run. Readable parts, and
    a digest of the stage's name and the definition (which may hold any characters)."""
    dep = ctx.release.stages[ctx.stage.name].current
    attempt = dep.attempt if dep is not None else 0
    digest = key_hash(f"{ctx.release.definition_id}/{ctx.stage.name}")[:12]
    return f"r{ctx.release.id}.a{attempt}.s{ctx.step.index}.n{ctx.run.run}.{digest}"


def _find(deps: Deps, job: str, marker: str) -> JobExecution | None:
    return next((e for e in deps.container_jobs.executions(job) if e.marker == marker), None)


def _read_lines(deps: Deps, ctx: StepContext, job: str, name: str, state: dict[str, Any]) -> None:
    """Copy the execution's new console lines into the step's log. Reading them never fails the step: a
    throttled read waits for the next look, and an environment whose lines Slipway cannot read is said once."""
    if state.get("logsUnavailable"):
        return
    read = int(state.get("logLines", 0))
    try:
        lines = deps.container_jobs.logs(job, name, read)
    except TargetError as exc:
        if exc.retryable:
            ctx.debug(f"console lines not read this time: {exc}")
            return
        ctx.log(f"console lines unavailable: {exc}")
        state["logsUnavailable"] = str(exc)
        return
    lines = lines[:LINES_PER_RUN]
    if not lines:
        return
    tail = list(state.get("tail") or [])
    for line in lines:
        text = redact(line)[:LINE_CHARS]
        if read < MAX_LOGGED_LINES:
            ctx.log(f"| {text}")
        elif read == MAX_LOGGED_LINES:
            ctx.log(f"(more than {MAX_LOGGED_LINES} lines: the rest are in the job's Log Analytics workspace)")
        read += 1
        tail = [*tail, text[:TAIL_CHARS]][-TAIL:]
    state.update(logLines=read, tail=tail, lastLineAt=ctx.now.isoformat())


def _settled(deps: Deps, ctx: StepContext, state: dict[str, Any]) -> bool:
    """Has the step read the ended execution's lines that are still on their way into Log Analytics?"""
    if state.get("logsUnavailable"):
        return True
    ended = datetime.fromisoformat(state["endedAt"])
    if ctx.now - ended >= timedelta(seconds=LOG_SETTLE_SECONDS):
        return True
    last = state.get("lastLineAt")
    quiet = timedelta(seconds=deps.settings.log_quiet_seconds)
    return last is not None and ctx.now - ended >= quiet and ctx.now - datetime.fromisoformat(last) >= quiet


def _reason(head: str, execution: JobExecution, state: dict[str, Any]) -> str:
    parts = [head]
    if execution.exit_code is not None:
        parts.append(f"exit code {execution.exit_code}")
    # ARM's reason (an adapter may give it as `detail`): a failed image pull, the job's replica timeout; not
    # the generic "BackoffLimitExceeded" that every failed exit brings
    detail = str(getattr(execution, "detail", "") or "")
    if detail and not detail.startswith("BackoffLimitExceeded"):
        parts.append(detail[:TAIL_CHARS])
    reason = ": ".join(parts)
    tail = list(state.get("tail") or [])
    if tail:
        reason += "; last lines:\n" + "\n".join(tail)
    elif state.get("logsUnavailable"):
        reason += "; its console lines could not be read"
    else:
        reason += "; it printed nothing (or its lines have not reached Log Analytics yet)"
    return reason


def _minutes(cfg: dict[str, Any]) -> int:
    return int(cfg.get("timeoutMinutes") or 30)


def _duration(cfg: dict[str, Any]) -> str:
    minutes = _minutes(cfg)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def _job_name(job: str) -> str:
    return job.rstrip("/").rsplit("/", 1)[-1]

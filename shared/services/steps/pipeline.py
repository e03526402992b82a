"""`run-pipeline`: run a GitHub Actions workflow or an Azure Pipelines pipeline and follow its run until it
concludes.

One invocation never waits: it starts the run (once), or looks at the run, and asks to be called again.
Before starting it records an intent with a marker that the run carries (GitHub: an input the workflow shows in its
run name; Azure Pipelines: a runtime parameter); a later run of the step that finds an intent but no run id (a
crash, or an answer lost after the service took the request) looks for the run by that marker before it would
start another, so a pipeline is started once. GitHub's token is read from Key Vault on every call and never written
anywhere: not to the state, the step's log or its messages. Azure Pipelines is called as Slipway's managed
identity: no token passes through the step.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.ports import PipelineRun, TargetError
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext
from shared.services.steps.github_auth import github_token

FIND_GRACE_SECONDS = 120.0
"""How long after a dispatch whose answer was lost the step keeps looking for the run before it dispatches again
(GitHub creates a run a few seconds after it accepts a dispatch)."""
FIRST_POLL = 5.0
MAX_POLL = 15.0
FAIL_LINES = 5
FAIL_READ_LINES = 40
"""Lines read for a failed run's reason: its last FAIL_LINES lines that are not mere markers."""
LOG_READ_TRIES = 3
MESSAGE_LINE = 300
AZURE = "azure-pipelines"
AZURE_FIND_GRACE_SECONDS = 60.0
"""How long after a run request whose answer was lost the step keeps looking for the run before it starts another.
Azure DevOps creates the run (a build) before it answers, so a run that was started is listed at once; the grace
covers a request still being processed when the answer was lost."""
AZURE_MARKER_LINE = re.compile(r"^\[[^\]]*\] ##\[section\]")
"""Azure Pipelines' `##[section]Starting: …` / `Finishing: …` lines: kept in the copied log, left out of a reason."""
AZURE_SUCCESS = ("succeeded", "partiallySucceeded")
"""Build results that pass the step: `partiallySucceeded` means only tasks the pipeline lets fail
(`continueOnError`) failed."""


def run_pipeline(deps: Deps, ctx: StepContext) -> Outcome:
    """Dispatch the workflow once, then follow its run: succeed on conclusion `success`, fail with the conclusion
    and the last log lines otherwise, cancel it and fail at the step's timeout. Azure Pipelines likewise."""
    cfg = ctx.step.config
    if cfg.get("provider") == AZURE:
        return _run_azure(deps, ctx)
    token = github_token(deps, cfg)  # a TargetError fails or retries the step: never run without it
    start = len(ctx.lines)
    try:
        outcome = _run(deps, ctx, token)
    except TargetError as exc:
        raise TargetError(_scrub(str(exc), token), retryable=exc.retryable, retry_after=exc.retry_after) from None
    finally:
        ctx.lines[start:] = [_scrub(line, token) for line in ctx.lines[start:]]
    outcome.message = _scrub(outcome.message, token)
    return outcome


def stop_run_pipeline(deps: Deps, ctx: StepContext) -> str:
    """Cancel the run the step started, found by its id or, when only the intent was recorded, by its marker.
    Stopping twice, or a run that already ended, is harmless."""
    if ctx.step.config.get("provider") == AZURE:
        return _stop_azure(deps, ctx)
    state = ctx.run.state
    intent = state.get("intent") or {}
    run_id, marker = state.get("runId"), intent.get("marker")
    if run_id is None and marker is None:
        return "no workflow run was started"
    cfg = ctx.step.config
    repo, workflow = intent.get("repository") or ctx.expand(cfg["repository"]), \
        intent.get("workflow") or ctx.expand(cfg["workflow"])
    token = github_token(deps, cfg)
    start = len(ctx.lines)
    try:
        if run_id is None:
            found = deps.pipelines.find_run(repo, workflow, str(marker), token)
            if found is None:
                return f"no run of {workflow} in {repo} carries marker {marker}: nothing to cancel"
            run = found
        else:
            run = deps.pipelines.run(repo, int(run_id), token)
        if run.status == "completed":
            return f"workflow run {run.url or run.id} had already completed ({run.conclusion})"
        deps.pipelines.cancel(repo, run.id, token)
        ctx.log(f"cancel requested for workflow run {run.url or run.id} ({run.status})")
        return f"cancel requested for workflow run {run.url or run.id} (it was {run.status})"
    except TargetError as exc:
        raise TargetError(_scrub(str(exc), token), retryable=exc.retryable, retry_after=exc.retry_after) from None
    finally:
        ctx.lines[start:] = [_scrub(line, token) for line in ctx.lines[start:]]


def marker_for(ctx: StepContext) -> str:
    """A short id unique to this release, stage attempt, step and run, readable in GitHub's run list."""
    dep = ctx.release.stages[ctx.stage.name].current
    attempt = dep.attempt if dep is not None else 0
    seed = f"{ctx.release.definition_id}/{ctx.release.id}/{ctx.stage.name}/{attempt}/{ctx.step.index}/{ctx.run.run}"
    return f"slipway-r{ctx.release.id}-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"


def _run(deps: Deps, ctx: StepContext, token: str) -> Outcome:
    cfg = ctx.step.config
    state = ctx.run.state  # kept up to date, so that a TargetError retry carries it
    deadline = datetime.fromisoformat(state.setdefault(
        "deadline", (ctx.now + timedelta(minutes=int(cfg.get("timeoutMinutes", 60)))).isoformat()))
    repo, workflow = ctx.expand(cfg["repository"]), ctx.expand(cfg["workflow"])
    if state.get("runId") is None:
        waiting = _start(deps, ctx, token, repo, workflow, deadline)
        if waiting is not None:
            return waiting
    return _follow(deps, ctx, token, repo, workflow, deadline)


def _start(deps: Deps, ctx: StepContext, token: str, repo: str, workflow: str, deadline: datetime) -> Outcome | None:
    """Find the run an earlier run of the step dispatched, or dispatch. None once `runId` is known."""
    state = ctx.run.state
    intent = state.get("intent")
    if intent is not None:
        found = deps.pipelines.find_run(repo, workflow, intent["marker"], token)
        if found is not None:
            ctx.log(f"found workflow run {found.url or found.id} ({found.status}) by its marker {intent['marker']}")
            _record(state, found)
            return None
        waited = (ctx.now - datetime.fromisoformat(intent["at"])).total_seconds()
        if ctx.now >= deadline:
            return Outcome.fail(f"no run of {workflow} in {repo} carrying marker {intent['marker']} appeared before "
                                f"the step's timeout ({_minutes(ctx)} minutes)")
        if waited < FIND_GRACE_SECONDS:
            if not state.get("looking"):
                ctx.log(f"looking for the run of {workflow} in {repo} with marker {intent['marker']}")
                state["looking"] = True
            return Outcome.retry(f"waiting for the run of {workflow} to appear", FIRST_POLL, dict(state))
        ctx.log(f"no run of {workflow} carries marker {intent['marker']} {waited:.0f}s after the dispatch: the "
                f"dispatch did not happen; dispatching again")
    cfg = ctx.step.config
    marker = intent["marker"] if intent is not None else marker_for(ctx)
    ref = ctx.expand(cfg.get("ref", "main"))
    inputs = {name: ctx.expand(str(value)) for name, value in (cfg.get("inputs") or {}).items()}
    marker_input = cfg.get("markerInput", "slipway_run")
    inputs[marker_input] = marker
    ctx.debug(f"dispatching {workflow} on {ref} in {repo} with inputs {sorted(inputs)}")
    ctx.intend({"act": "dispatch", "marker": marker, "at": ctx.now.isoformat(), "repository": repo,
                "workflow": workflow, "ref": ref})
    state.pop("looking", None)
    try:
        run_id = deps.pipelines.dispatch(repo, workflow, ref, inputs, token)
    except TargetError as exc:
        if not exc.retryable and marker_input in str(exc):
            raise TargetError(f"{exc}. The workflow must declare the input `{marker_input}` under "
                              f"on.workflow_dispatch.inputs and show it in its run-name "
                              f"(run-name: \"... ${{{{ inputs.{marker_input} }}}}\")", retryable=False) from None
        raise
    ctx.log(f"dispatched {workflow} on {ref} in {repo} (marker {marker})")
    if run_id is None:
        return Outcome.retry(f"dispatched {workflow}; waiting for its run to appear", FIRST_POLL, dict(state))
    state["runId"] = run_id
    return None


def _follow(deps: Deps, ctx: StepContext, token: str, repo: str, workflow: str, deadline: datetime) -> Outcome:
    state = ctx.run.state
    run = deps.pipelines.run(repo, int(state["runId"]), token)
    state.pop("targetErrors", None)  # the run answered: earlier errors were passing
    if state.get("url") != run.url:
        state["url"] = run.url
        ctx.log(f"workflow run: {run.url or run.id}")
    if state.get("status") != run.status:
        state["status"] = run.status
        ctx.log(f"workflow run {run.id}: {run.status}" + (f" ({run.conclusion})" if run.conclusion else ""))
    where = run.url or f"run {run.id}"
    if run.status == "completed":
        return _completed(ctx, run, where, read=lambda n: deps.pipelines.log_lines(repo, run.id, token, n),
                          succeeded=run.conclusion == "success", noun="workflow run",
                          clean=lambda line: _scrub(line, token))
    if ctx.now >= deadline:
        deps.pipelines.cancel(repo, run.id, token)
        ctx.log(f"timed out after {_minutes(ctx)} minutes: cancel requested for workflow run {where}")
        return Outcome.fail(f"timed out after {_minutes(ctx)} minutes; cancelled workflow run {where} "
                            f"({run.status})")
    polls = int(state.get("polls", 0))
    state["polls"] = polls + 1
    delay = min(MAX_POLL, FIRST_POLL + 2.0 * polls, max(1.0, (deadline - ctx.now).total_seconds()))
    return Outcome.retry(f"workflow run {run.status}", delay, dict(state))


def _completed(ctx: StepContext, run: PipelineRun, where: str, *, read: Callable[[int], list[str]], succeeded: bool,
               noun: str, clean: Callable[[str], str], marker_line: re.Pattern[str] | None = None) -> Outcome:
    """Copy the run's last lines into the step's log (`read(n)` gives them), then end the step: its outputs on
    success, the conclusion and the last lines on failure."""
    cfg = ctx.step.config
    state = ctx.run.state
    wanted = int(cfg.get("logLines", 200))
    failed = not succeeded
    lines: list[str] = []
    if wanted > 0 or failed:
        try:
            lines = read(max(wanted, FAIL_READ_LINES if failed else 0))
        except TargetError as exc:
            tries = int(state.get("logTries", 0)) + 1
            state["logTries"] = tries
            if exc.retryable and tries < LOG_READ_TRIES:
                return Outcome.retry(f"reading the run's logs: {exc}", exc.retry_after or 10.0, dict(state))
            ctx.log(f"could not read the run's logs: {exc}")
    lines = [clean(line) for line in lines]
    if wanted > 0 and lines:
        ctx.log(f"--- last {min(wanted, len(lines))} lines of the run's logs ---")
        for line in lines[-wanted:]:
            ctx.log(line)
        ctx.log("--- end of the run's logs ---")
    outputs = {"runId": str(run.id), "runUrl": run.url, "conclusion": str(run.conclusion)}
    if not failed:
        how = "succeeded" if run.conclusion != "partiallySucceeded" else \
            "partially succeeded (only tasks allowed to fail failed)"
        return Outcome.ok(f"{noun} {where} {how}",
                          state={**{k: v for k, v in state.items() if k != "polls"}, "outputs": outputs})
    telling = [line for line in lines if marker_line is None or not marker_line.match(line)]
    tail = " | ".join(line[:MESSAGE_LINE] for line in telling[-FAIL_LINES:])
    return Outcome.fail(f"{noun} {where} concluded {run.conclusion}" + (f"; last lines: {tail}" if tail else ""))


def _minutes(ctx: StepContext) -> int:
    return int(ctx.step.config.get("timeoutMinutes", 60))


def _record(state: dict[str, Any], run: PipelineRun) -> None:
    state["runId"] = run.id
    state.pop("looking", None)


def _scrub(text: str, token: str) -> str:
    """The token never leaves: whatever a message or a log line says, it says it without the token."""
    if not token:
        return text
    return re.sub(re.escape(token), "***", text)


# -- Azure Pipelines


def _azure_where(ctx: StepContext) -> tuple[str, str, int]:
    """The organization, project and pipeline the run is (or was) started in: the intent's, once there is one."""
    cfg = ctx.step.config
    intent = ctx.run.state.get("intent") or {}
    return (str(intent.get("organization") or ctx.expand(cfg["organization"])),
            str(intent.get("project") or ctx.expand(cfg["project"])),
            int(intent.get("pipelineId") or cfg["pipelineId"]))


def _run_azure(deps: Deps, ctx: StepContext) -> Outcome:
    state = ctx.run.state  # kept up to date, so that a TargetError retry carries it
    deadline = datetime.fromisoformat(state.setdefault(
        "deadline", (ctx.now + timedelta(minutes=_minutes(ctx))).isoformat()))
    if state.get("runId") is None:
        waiting = _start_azure(deps, ctx, deadline)
        if waiting is not None:
            return waiting
    return _follow_azure(deps, ctx, deadline)


def _start_azure(deps: Deps, ctx: StepContext, deadline: datetime) -> Outcome | None:
    """Find the run an earlier run of the step started, or start one. None once `runId` is known."""
    cfg = ctx.step.config
    state = ctx.run.state
    organization, project, pipeline_id = _azure_where(ctx)
    name = f"pipeline {pipeline_id} in {organization}/{project}"
    parameter = str(cfg.get("markerParameter", "slipway_run"))
    intent = state.get("intent")
    if intent is not None:
        found = deps.azure_pipelines.find_run(organization, project, pipeline_id, parameter, intent["marker"])
        if found is not None:
            ctx.log(f"found Azure Pipelines run {found.url or found.id} ({found.status}) by its marker "
                    f"{intent['marker']}")
            _record(state, found)
            return None
        waited = (ctx.now - datetime.fromisoformat(intent["at"])).total_seconds()
        if ctx.now >= deadline:
            return Outcome.fail(f"no run of {name} carrying marker {intent['marker']} appeared before the step's "
                                f"timeout ({_minutes(ctx)} minutes)")
        if waited < AZURE_FIND_GRACE_SECONDS:
            if not state.get("looking"):
                ctx.log(f"looking for the run of {name} with marker {intent['marker']}")
                state["looking"] = True
            return Outcome.retry(f"waiting for the run of {name} to appear", FIRST_POLL, dict(state))
        ctx.log(f"no run of {name} carries marker {intent['marker']} {waited:.0f}s after it was requested: it was "
                f"not started; starting it again")
    marker = intent["marker"] if intent is not None else marker_for(ctx)
    branch = ctx.expand(str(cfg.get("branch", "refs/heads/main")))
    branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    parameters = {key: ctx.expand(str(value)) for key, value in (cfg.get("templateParameters") or {}).items()}
    parameters[parameter] = marker
    variables = {key: ctx.expand(str(value)) for key, value in (cfg.get("variables") or {}).items()}
    ctx.debug(f"running {name} on {branch} with parameters {sorted(parameters)} and variables {sorted(variables)}")
    ctx.intend({"act": "run", "marker": marker, "at": ctx.now.isoformat(), "organization": organization,
                "project": project, "pipelineId": pipeline_id, "branch": branch})
    state.pop("looking", None)
    try:
        run_id = deps.azure_pipelines.run(organization, project, pipeline_id, branch, parameters, variables)
    except TargetError as exc:
        if not exc.retryable and f"'{parameter}'" in str(exc):
            raise TargetError(f"{exc}. The pipeline must declare the runtime parameter `{parameter}` (parameters: "
                              f"- name: {parameter}, type: string, default: ' ')", retryable=False) from None
        raise
    ctx.log(f"started {name} on {branch} (marker {marker})")
    state["runId"] = run_id
    return None


def _follow_azure(deps: Deps, ctx: StepContext, deadline: datetime) -> Outcome:
    state = ctx.run.state
    organization, project, pipeline_id = _azure_where(ctx)
    pipelines = deps.azure_pipelines
    run = pipelines.get_run(organization, project, pipeline_id, int(state["runId"]))
    state.pop("targetErrors", None)  # the run answered: earlier errors were passing
    if state.get("url") != run.url:
        state["url"] = run.url
        ctx.log(f"Azure Pipelines run: {run.url or run.id}")
    if state.get("status") != run.status:
        state["status"] = run.status
        ctx.log(f"Azure Pipelines run {run.id}: {run.status}" + (f" ({run.conclusion})" if run.conclusion else ""))
    where = run.url or f"run {run.id}"
    if run.status == "completed":
        return _completed(ctx, run, where, read=lambda n: pipelines.log_lines(organization, project, run.id, n),
                          succeeded=run.conclusion in AZURE_SUCCESS, noun="Azure Pipelines run",
                          clean=lambda line: line, marker_line=AZURE_MARKER_LINE)
    if ctx.now >= deadline:
        pipelines.cancel(organization, project, run.id)
        ctx.log(f"timed out after {_minutes(ctx)} minutes: cancel requested for Azure Pipelines run {where}")
        return Outcome.fail(f"timed out after {_minutes(ctx)} minutes; cancelled Azure Pipelines run {where} "
                            f"({run.status})")
    polls = int(state.get("polls", 0))
    state["polls"] = polls + 1
    delay = min(MAX_POLL, FIRST_POLL + 2.0 * polls, max(1.0, (deadline - ctx.now).total_seconds()))
    return Outcome.retry(f"Azure Pipelines run {run.status}", delay, dict(state))


def _stop_azure(deps: Deps, ctx: StepContext) -> str:
    state = ctx.run.state
    intent = state.get("intent") or {}
    run_id, marker = state.get("runId"), intent.get("marker")
    if run_id is None and marker is None:
        return "no Azure Pipelines run was started"
    organization, project, pipeline_id = _azure_where(ctx)
    pipelines = deps.azure_pipelines
    if run_id is None:
        parameter = str(ctx.step.config.get("markerParameter", "slipway_run"))
        found = pipelines.find_run(organization, project, pipeline_id, parameter, str(marker))
        if found is None:
            return (f"no run of pipeline {pipeline_id} in {organization}/{project} carries marker {marker}: nothing "
                    f"to cancel")
        run = found
    else:
        run = pipelines.get_run(organization, project, pipeline_id, int(run_id))
    if run.status == "completed":
        return f"Azure Pipelines run {run.url or run.id} had already completed ({run.conclusion})"
    pipelines.cancel(organization, project, run.id)
    ctx.log(f"cancel requested for Azure Pipelines run {run.url or run.id} ({run.status})")
    return f"cancel requested for Azure Pipelines run {run.url or run.id} (it was {run.status})"

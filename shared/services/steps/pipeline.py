"""`run-pipeline`: run a GitHub Actions workflow and follow its run until it concludes.

One invocation never waits: it dispatches the workflow (once), or looks at the run, and asks to be called again.
Before dispatching it records an intent with a marker that the workflow shows in its run name; a later run of
the step that finds an intent but no run id (a crash, or an answer lost after GitHub took the dispatch) looks
for the run by that marker before it would dispatch again, so a workflow is started once. The token is read
from Key Vault on every call and never written anywhere: not to the state, the step's log or its messages.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from shared.ports import PipelineRun, TargetError
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext

FIND_GRACE_SECONDS = 120.0
"""How long after a dispatch whose answer was lost the step keeps looking for the run before it dispatches again
(GitHub creates a run a few seconds after it accepts a dispatch)."""
FIRST_POLL = 5.0
MAX_POLL = 15.0
FAIL_LINES = 5
LOG_READ_TRIES = 3
MESSAGE_LINE = 300


def run_pipeline(deps: Deps, ctx: StepContext) -> Outcome:
    """Dispatch the workflow once, then follow its run: succeed on conclusion `success`, fail with the conclusion
    and the last log lines otherwise, cancel it and fail at the step's timeout."""
    cfg = ctx.step.config
    token = deps.secrets.get(cfg["tokenSecret"])  # a TargetError fails or retries the step: never run without it
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
    state = ctx.run.state
    intent = state.get("intent") or {}
    run_id, marker = state.get("runId"), intent.get("marker")
    if run_id is None and marker is None:
        return "no workflow run was started"
    cfg = ctx.step.config
    repo, workflow = intent.get("repository") or ctx.expand(cfg["repository"]), \
        intent.get("workflow") or ctx.expand(cfg["workflow"])
    token = deps.secrets.get(cfg["tokenSecret"])
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
        return _completed(deps, ctx, token, repo, run, where)
    if ctx.now >= deadline:
        deps.pipelines.cancel(repo, run.id, token)
        ctx.log(f"timed out after {_minutes(ctx)} minutes: cancel requested for workflow run {where}")
        return Outcome.fail(f"timed out after {_minutes(ctx)} minutes; cancelled workflow run {where} "
                            f"({run.status})")
    polls = int(state.get("polls", 0))
    state["polls"] = polls + 1
    delay = min(MAX_POLL, FIRST_POLL + 2.0 * polls, max(1.0, (deadline - ctx.now).total_seconds()))
    return Outcome.retry(f"workflow run {run.status}", delay, dict(state))


def _completed(deps: Deps, ctx: StepContext, token: str, repo: str, run: PipelineRun, where: str) -> Outcome:
    cfg = ctx.step.config
    state = ctx.run.state
    wanted = int(cfg.get("logLines", 200))
    failed = run.conclusion != "success"
    lines: list[str] = []
    if wanted > 0 or failed:
        try:
            lines = deps.pipelines.log_lines(repo, run.id, token, max(wanted, FAIL_LINES if failed else 0))
        except TargetError as exc:
            tries = int(state.get("logTries", 0)) + 1
            state["logTries"] = tries
            if exc.retryable and tries < LOG_READ_TRIES:
                return Outcome.retry(f"reading the run's logs: {exc}", exc.retry_after or 10.0, dict(state))
            ctx.log(f"could not read the run's logs: {exc}")
    lines = [_scrub(line, token) for line in lines]
    if wanted > 0 and lines:
        ctx.log(f"--- last {min(wanted, len(lines))} lines of the run's logs ---")
        for line in lines[-wanted:]:
            ctx.log(line)
        ctx.log("--- end of the run's logs ---")
    outputs = {"runId": str(run.id), "runUrl": run.url, "conclusion": str(run.conclusion)}
    if not failed:
        return Outcome.ok(f"workflow run {where} succeeded",
                          state={**{k: v for k, v in state.items() if k != "polls"}, "outputs": outputs})
    tail = " | ".join(line[:MESSAGE_LINE] for line in lines[-FAIL_LINES:])
    return Outcome.fail(f"workflow run {where} concluded {run.conclusion}" + (f"; last lines: {tail}" if tail else ""))


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

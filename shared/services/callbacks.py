"""Callbacks of http-request steps: a called service posts its result to the step's single-use URL.

The URL's token is the only credential (the service has no Slipway identity), so it is random, kept
only as its hash, bound to one step of one deployment attempt, refused once used, once the step
stopped waiting (finished, timed out, canceled) or after its expiry. The result is judged by the
step's criteria and recorded once, whatever arrives twice or at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.domain.errors import Conflict, NotFound
from shared.domain.keys import key_hash
from shared.domain.transitions.commands import StepCallback
from shared.records import ConcurrentChange
from shared.schemas.callback import CallbackIn
from shared.services import step_logs
from shared.services.apply import apply
from shared.services.deps import Deps
from shared.services.steps.http_request import judge


class Gone(Exception):
    """The URL was used, expired, or its step no longer waits (HTTP 410)."""


def receive(deps: Deps, token: str, raw: dict[str, Any], body: CallbackIn) -> str:
    """Record a callback; returns what the step became. Raises NotFound for a token Slipway never
    issued and Gone for one it no longer accepts."""
    hashed = key_hash(token)
    found = deps.store.link(hashed)
    if found is None or found[0].get("kind") != "callback":
        raise NotFound("no such callback")
    record, used, etag = found
    if used:
        raise Gone("this callback URL was used already")
    if datetime.fromisoformat(record["expires"]) <= deps.clock.now():
        raise Gone("this callback URL expired")
    loaded = deps.store.release(int(record["definitionId"]), int(record["releaseId"]))
    if loaded is None:
        raise Gone("the release no longer exists")
    release = loaded[0]
    stage = release.plan.stage(record["stage"])
    if stage is None or record["step"] >= len(stage.steps):
        raise Gone("the step no longer exists")
    config = stage.steps[record["step"]].config
    given = {k: v for k, v in body.outputs.items()}
    passed, why, outputs = judge(config, json.dumps(raw), given)
    succeeded = body.result == "succeeded" and passed
    message = body.result + (f": {body.message}" if body.message else "") + ("" if passed else f"; {why}")
    stage_name, attempt, index = record["stage"], int(record["attempt"]), int(record["step"])
    waiting = release.find_step(stage_name, attempt, index)
    # Before the lines of the run that takes the callback in (the step's pending run).
    lines = step_logs.part(stage_name, attempt, index, waiting.run if waiting else 0,
                           [f"{deps.clock.now().strftime('%H:%M:%S')} callback received: {message}",
                            *(f"output {k} = {v}" for k, v in sorted(outputs.items())),
                            f"=> {'succeeded' if succeeded else 'failed'}: callback: {message}"], step_logs.CALLBACK)
    try:
        apply(deps, int(record["definitionId"]), int(record["releaseId"]),
              StepCallback(stage_name, attempt, index, hashed, succeeded, message, tuple(sorted(outputs.items()))),
              read=loaded, log=lines)
    except Conflict:
        raise Gone("the step no longer waits for this callback") from None
    try:
        deps.store.use_link(hashed, etag)
    except ConcurrentChange:
        pass  # recorded anyway: the step accepts one callback
    return "succeeded" if succeeded else "failed"

"""`slack-message`: post a line to a Slack incoming webhook whose URL is a Key Vault secret."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints

from shared.plugins import StepKind
from shared.schemas.step_base import StepBase
from shared.services.steps.context import Outcome, StepContext

if TYPE_CHECKING:
    from shared.services.deps import Deps


class SlackMessageStep(StepBase):
    """Posts `text` to a Slack channel through an incoming webhook."""

    type: Literal["slack-message"]
    webhookSecret: Annotated[str, StringConstraints(
        pattern=r"^https://[A-Za-z0-9-]{3,24}\.vault\.azure\.net/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-fA-F]{32})?$")]
    """The Key Vault secret (its URI) that holds the webhook URL: the URL is a credential, so it is never
    written in the definition."""
    text: Annotated[str, StringConstraints(min_length=1, max_length=3000)]
    """The message; `$(Name)` variables and `{version}` are expanded."""
    timeoutSeconds: float = Field(10, gt=0, le=20)


def slack_message(deps: Deps, ctx: StepContext) -> Outcome:
    """One POST. Slack answers 200 "ok"; 429 and 5xx are retried by the runner (TargetError-free: we ask
    for a retry ourselves), anything else fails the step with Slack's answer."""
    config = ctx.step.config
    url = ctx.secret(config["webhookSecret"])  # read now, never stored, masked in every line
    text = ctx.expand(config["text"])
    body = json.dumps({"text": text}).encode()
    answer = deps.probe.request("POST", url, {"Content-Type": "application/json"}, body,
                                float(config.get("timeoutSeconds", 10)))
    if answer.error is not None:
        return Outcome.fail(f"Slack webhook: {answer.error}")
    if answer.status == 429 or (answer.status or 0) >= 500:
        tries = int(ctx.run.state.get("tries", 0)) + 1
        if tries > 5:
            return Outcome.fail(f"Slack webhook answered HTTP {answer.status} {tries} times")
        delay = answer.retry_after if answer.retry_after is not None else 2.0 ** tries
        return Outcome.retry(f"Slack webhook answered HTTP {answer.status}; retrying", delay, {"tries": tries})
    if answer.status != 200:
        return Outcome.fail(f"Slack webhook answered HTTP {answer.status}: {answer.body[:200]}")
    ctx.log(f"posted to Slack: {text[:200]}")
    return Outcome.ok("posted to Slack")


SLACK_MESSAGE = StepKind(SlackMessageStep, slack_message)

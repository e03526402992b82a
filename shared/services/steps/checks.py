"""Steps that look and wait: `http-check` (the slot answers as expected) and `wait`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.services.deps import Deps
from shared.services.steps.context import (
    Outcome,
    StepContext,
)


def http_check(deps: Deps, ctx: StepContext) -> Outcome:
    cfg = ctx.step.config
    url = cfg.get("url") or deps.app_service.read_slot(ctx.slot(cfg.get("slot"))).url.rstrip("/") + cfg.get("path", "/")
    deadline = datetime.fromisoformat(ctx.run.state.get("deadline") or
                                      (ctx.now + timedelta(seconds=cfg.get("timeoutSeconds", 300))).isoformat())
    expect, text = cfg.get("expectStatus", 200), cfg.get("expectText")
    text = ctx.expand(text) if text else text
    result = deps.probe.get(url, cfg.get("requestTimeoutSeconds", 10))
    ctx.debug(f"GET {url} -> {result.status} {result.error or ''} body: {(result.body or '')[:500]!r}")
    if result.error:
        seen = result.error
    elif result.status != expect:
        seen = f"status {result.status}, expected {expect}"
    elif text and text not in result.body:
        seen = f"status {result.status} but the body lacks '{text}'"
    else:
        ctx.log(f"GET {url}: {result.status} as expected")
        return Outcome.ok(f"{url} answered {result.status}")
    ctx.log(f"GET {url}: {seen}")
    if ctx.now >= deadline:
        return Outcome.fail(f"{url}: {seen} (gave up at {deadline.isoformat()})")
    delay = min(cfg.get("intervalSeconds", 10), max(0.0, (deadline - ctx.now).total_seconds()))
    return Outcome.retry(f"{seen}; next try in {delay:g}s", delay, {"deadline": deadline.isoformat()})


def wait(deps: Deps, ctx: StepContext) -> Outcome:
    until = datetime.fromisoformat(ctx.run.state.get("until") or
                                   (ctx.now + timedelta(seconds=ctx.step.config.get("seconds", 0))).isoformat())
    if ctx.now >= until:
        ctx.log(f"waited until {until.isoformat()}")
        return Outcome.ok("waited")
    left = (until - ctx.now).total_seconds()
    if "until" not in ctx.run.state:
        ctx.log(f"waiting until {until.isoformat()}")
    return Outcome.retry(f"waiting until {until.isoformat()}", left, {"until": until.isoformat()})

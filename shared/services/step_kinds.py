"""What each step type does, reconcile-then-act, and what it reports back.

A step runs inside one queue-triggered invocation and never sleeps: a check that is not passing
yet, or a wait, asks to be run again later (`Outcome.retry`), keeping its scratch state in the
step row. Running a step twice has the same effect as running it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StepRun
from shared.domain.target import Target
from shared.services.deps import Deps

RELEASE_MARK = "SLIPWAY_RELEASE_ID"
DIGEST_MARK = "SLIPWAY_PACKAGE_SHA256"
VERSION_MARK = "SLIPWAY_VERSION"
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"


@dataclass
class Outcome:
    kind: str
    """succeeded | failed | retry"""
    message: str
    delay: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, message: str) -> Outcome:
        return cls("succeeded", message)

    @classmethod
    def fail(cls, message: str) -> Outcome:
        return cls("failed", message)

    @classmethod
    def retry(cls, message: str, delay: float, state: dict[str, Any]) -> Outcome:
        return cls("retry", message, delay, state)


@dataclass
class StepContext:
    release: Release
    stage: StagePlan
    step: StepPlan
    run: StepRun
    now: datetime
    lines: list[str] = field(default_factory=list)

    @property
    def target(self) -> Target:
        return Target.from_dict(self.stage.target)

    def log(self, text: str) -> None:
        self.lines.append(f"{self.now.strftime('%H:%M:%S')} {text}")


def deploy_package(deps: Deps, ctx: StepContext) -> Outcome:
    alias = ctx.step.config.get("artifact")
    artifact = next((a for a in ctx.release.artifacts if a["alias"] == alias or (alias is None and a["isPrimary"])),
                    None)
    if artifact is None:
        return Outcome.fail(f"release has no artifact '{alias or 'primary'}'")
    target = ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    slot = deps.app_service.read_slot(target)
    settings = dict(slot.app_settings)
    if settings.get(DIGEST_MARK) == artifact.get("sha256") and settings.get(RELEASE_MARK) == str(ctx.release.id):
        ctx.log(f"{where} already runs {artifact['alias']} {artifact['version']} of release {ctx.release.id}")
        return Outcome.ok(f"{artifact['version']} already on {where}")
    url = artifact.get("packageUrl") or deps.packages.read_url(artifact["package"])
    settings.update({RUN_FROM_PACKAGE: url, DIGEST_MARK: artifact.get("sha256", ""),
                     RELEASE_MARK: str(ctx.release.id), VERSION_MARK: artifact["version"]})
    ctx.log(f"setting {where} to run {artifact['alias']} {artifact['version']} (sha256 {artifact.get('sha256')})")
    deps.app_service.write_app_settings(target, settings)
    ctx.log(f"{where} now runs {artifact['version']}")
    return Outcome.ok(f"deployed {artifact['version']} to {where}")


def http_check(deps: Deps, ctx: StepContext) -> Outcome:
    cfg = ctx.step.config
    url = cfg.get("url") or deps.app_service.read_slot(ctx.target).url.rstrip("/") + cfg.get("path", "/")
    deadline = datetime.fromisoformat(ctx.run.state.get("deadline") or
                                      (ctx.now + timedelta(seconds=cfg.get("timeoutSeconds", 300))).isoformat())
    expect, text = cfg.get("expectStatus", 200), cfg.get("expectText")
    result = deps.probe.get(url, cfg.get("requestTimeoutSeconds", 10))
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


KINDS: dict[str, Callable[[Deps, StepContext], Outcome]] = {
    "deploy-package": deploy_package,
    "http-check": http_check,
    "wait": wait,
}

"""What each step type does, reconcile-then-act, and what it reports back.

A step runs inside one queue-triggered invocation and never sleeps: a check that is not passing
yet, or a wait, asks to be run again later (`Outcome.retry`), keeping its scratch state in the
step row. Running a step twice has the same effect as running it once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StepRun
from shared.domain.secrets import setting_value
from shared.domain.target import Target
from shared.services.deps import Deps

RELEASE_MARK = "SLIPWAY_RELEASE_ID"
DIGEST_MARK = "SLIPWAY_PACKAGE_SHA256"
VERSION_MARK = "SLIPWAY_VERSION"
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
RUN_FROM_PACKAGE_IDENTITY = "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"


@dataclass
class Outcome:
    kind: str
    """succeeded | failed | retry"""
    message: str
    delay: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    slots: list[dict[str, Any]] = field(default_factory=list)
    """What runs in which slot now, for the what-runs-where records."""

    @classmethod
    def ok(cls, message: str, slots: list[dict[str, Any]] | None = None,
           state: dict[str, Any] | None = None) -> Outcome:
        return cls("succeeded", message, state=state or {}, slots=slots or [])

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

    def slot(self, name: str | None) -> Target:
        """The stage's app, at slot `name` (the stage's own slot when None)."""
        if name is None:
            return self.target
        t = self.target
        return Target(t.subscription_id, t.resource_group, t.site, None if name == "production" else name)

    def artifact(self) -> dict[str, Any] | None:
        alias = self.step.config.get("artifact")
        return next((a for a in self.release.artifacts
                     if a["alias"] == alias or (alias is None and a.get("isPrimary"))), None)

    def expand(self, text: str) -> str:
        """`{version}` (the step's or the primary artifact's version) and `{release}` in a step's text."""
        artifact = self.artifact() or next(iter(self.release.artifacts), None)
        version = str(artifact["version"]) if artifact else ""
        return text.replace("{version}", version).replace("{release}", str(self.release.id))

    def log(self, text: str) -> None:
        self.lines.append(f"{self.now.strftime('%H:%M:%S')} {text}")

    def debug(self, text: str) -> None:
        """A line only releases created with `debug` write."""
        if self.release.debug:
            self.log(f"##[debug] {text}")


def holds(settings: dict[str, str], release_id: int | str, artifact: dict[str, Any]) -> bool:
    """Does a slot with these settings run this release's package? (The markers move with swaps.)"""
    return settings.get(RELEASE_MARK) == str(release_id) and settings.get(DIGEST_MARK) == artifact.get("sha256", "")


def slot_record(target: Target, settings: dict[str, str], how: str) -> dict[str, Any]:
    release = settings.get(RELEASE_MARK)
    return {"slot": target.resource_id, "releaseId": int(release) if release and release.isdigit() else None,
            "version": settings.get(VERSION_MARK), "sha256": settings.get(DIGEST_MARK), "how": how}


def deploy_package(deps: Deps, ctx: StepContext) -> Outcome:
    """Put the artifact's package on the stage's slot, the way its stack supports, then prove the new
    build answers. Resumable: its phase is kept in the step's state.

    - zip deployment (Python and Java on Linux, and the default): the snapshot is read into a local
      file while its sha256 is computed, those very bytes go to the slot's deployment endpoint, and
      the deployment is followed until it completes;
    - run-from-package (`packageIdentity` given, other stacks): the slot reads the snapshot's URL with
      that managed identity, no SAS, whenever it starts.
    App Service restarts the slot after a deployment asynchronously, so a 200 proves nothing: with
    `verifyPath` the step waits until that page shows the release's version."""
    artifact = ctx.artifact()
    if artifact is None:
        return Outcome.fail(f"release has no artifact '{ctx.step.config.get('artifact') or 'primary'}'")
    target = ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    state = dict(ctx.run.state)
    phase = state.get("phase")
    if phase is None:
        settings = dict(deps.app_service.read_slot(target).app_settings)
        if holds(settings, ctx.release.id, artifact):
            ctx.log(f"{where} already runs {artifact['alias']} {artifact['version']} of release {ctx.release.id}")
            return Outcome.ok(f"{artifact['version']} already on {where}",
                              [slot_record(target, settings, "deployment")])
        if not artifact.get("stored"):
            return Outcome.fail(f"{artifact['alias']} {artifact['version']} has no package Slipway keeps a copy of "
                                f"(registered before packages were proven): register the build as a new version")
        outcome = _start_deployment(deps, ctx, artifact, settings, state)
        if outcome is not None:
            return outcome
    if state.get("phase") == "deploying":
        finished, ok, text = deps.app_service.deployment_status(target, state["status"])
        if not finished:
            return Outcome.retry("zip deployment running", 3, state)
        if not ok:
            return Outcome.fail(f"the zip deployment to {where} failed: {text or 'no reason given'}")
        ctx.log(f"zip deployment to {where} completed")
        state["phase"] = "deployed"
    if state.get("phase") == "deployed":
        settings = dict(deps.app_service.read_slot(target).app_settings)
        settings.update(_marks(ctx, artifact))
        deps.app_service.write_app_settings(target, settings)
        state["phase"] = "verify"
    return _verify_deployment(deps, ctx, artifact, state)


def _marks(ctx: StepContext, artifact: dict[str, Any]) -> dict[str, str]:
    return {DIGEST_MARK: artifact.get("sha256", ""), RELEASE_MARK: str(ctx.release.id),
            VERSION_MARK: artifact["version"]}


def _start_deployment(deps: Deps, ctx: StepContext, artifact: dict[str, Any], settings: dict[str, str],
                      state: dict[str, Any]) -> Outcome | None:
    cfg, target = ctx.step.config, ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    stack = deps.app_service.stack(target)
    language = stack.split("|")[0].upper()
    method = cfg.get("method", "auto")
    if method == "auto":
        method = "runFromPackage" if cfg.get("packageIdentity") and language not in ("PYTHON", "JAVA") \
            else "zipDeploy"
    ctx.log(f"{where} runs {stack or 'an unknown stack'}: deploying by {method}")
    state["deadline"] = (ctx.now + timedelta(seconds=cfg.get("verifyTimeoutSeconds", 300))).isoformat()
    if method == "runFromPackage":
        if language in ("PYTHON", "JAVA"):
            return Outcome.fail(f"{where} runs {stack}: run-from-package is not supported for {language.title()} "
                                f"apps (learn.microsoft.com, deploy-run-package); use zipDeploy")
        if not cfg.get("packageIdentity"):
            return Outcome.fail("runFromPackage needs `packageIdentity`: the app's managed identity that reads "
                                "the package (no SAS URL: it would expire)")
        found = deps.packages.digest(artifact["stored"], artifact["snapshot"])
        if found != artifact.get("sha256"):
            return _tampered(ctx, artifact, found)
        settings.update({RUN_FROM_PACKAGE: deps.packages.blob_url(artifact["stored"], artifact["snapshot"]),
                         RUN_FROM_PACKAGE_IDENTITY: cfg["packageIdentity"], **_marks(ctx, artifact)})
        deps.app_service.write_app_settings(target, settings)
        ctx.log(f"{where} runs the package from Slipway's store with identity {cfg['packageIdentity']}")
        state["phase"] = "verify"
        return None
    path, found = deps.packages.download(artifact["stored"], artifact["snapshot"])
    try:
        if found != artifact.get("sha256"):
            return _tampered(ctx, artifact, found)
        ctx.log(f"package verified: sha256 {found}")
        if settings.get(RUN_FROM_PACKAGE, "") not in ("", "1"):
            # The deployment endpoint refuses a zip while the app runs from a remote package URL.
            for name in (RUN_FROM_PACKAGE, RUN_FROM_PACKAGE_IDENTITY):
                settings.pop(name, None)
            deps.app_service.write_app_settings(target, settings)
            ctx.log(f"{where} no longer runs from a package URL")
        status = deps.app_service.zip_deploy(target, path)
    finally:
        os.remove(path)
    ctx.log(f"sent {artifact['alias']} {artifact['version']} to {where}'s deployment endpoint")
    state.update(phase="deploying", status=status) if status else state.update(phase="deployed")
    return None


def _tampered(ctx: StepContext, artifact: dict[str, Any], found: str) -> Outcome:
    ctx.log(f"package digest mismatch: expected sha256 {artifact.get('sha256')}, found {found}")
    return Outcome.fail(f"the package of {artifact['alias']} {artifact['version']} is not what was registered: "
                        f"expected sha256 {artifact.get('sha256')}, found {found}; nothing was deployed")


def _verify_deployment(deps: Deps, ctx: StepContext, artifact: dict[str, Any], state: dict[str, Any]) -> Outcome:
    cfg, target = ctx.step.config, ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    slot = deps.app_service.read_slot(target)
    record = [slot_record(target, slot.app_settings, "deployment")]
    path = cfg.get("verifyPath")
    if not path:
        ctx.log(f"{where} now runs {artifact['version']} (not verified: no `verifyPath` to prove the new build "
                f"answers)")
        return Outcome.ok(f"deployed {artifact['version']} to {where}", record, state)
    wanted = ctx.expand(str(cfg.get("verifyText", "{version}")))
    url = slot.url.rstrip("/") + path
    result = deps.probe.get(url, 10)
    if result.error is None and result.status == 200 and wanted in result.body:
        ctx.log(f"GET {url} shows '{wanted}': the new build answers")
        return Outcome.ok(f"deployed {artifact['version']} to {where}", record, state)
    seen = result.error or f"status {result.status}" + ("" if wanted in (result.body or "") else
                                                         f", without '{wanted}' (the slot still restarts)")
    if ctx.now >= datetime.fromisoformat(state["deadline"]):
        return Outcome.fail(f"{where} did not show '{wanted}' at {path} by {state['deadline']}: {seen}")
    ctx.debug(f"GET {url}: {seen}")
    return Outcome.retry(f"waiting for the new build: {seen}", 2, state)


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


def _swap_ends(ctx: StepContext) -> tuple[Target, str, str]:
    cfg = ctx.step.config
    source = (cfg.get("slot") or ctx.stage.target.get("slot") or "production").lower()
    return ctx.target, source, (cfg.get("targetSlot") or "production").lower()


def swap(deps: Deps, ctx: StepContext) -> Outcome:
    """Swap until the target slot runs this release. Reconcile first, so that a swap retried after an
    ambiguous failure (a timeout after the swap happened) never swaps the old version back."""
    artifact = ctx.artifact()
    if artifact is None:
        return Outcome.fail("release has no artifact to swap")
    site, source, target = _swap_ends(ctx)
    what = f"release {ctx.release.id} ({artifact['version']})"

    def release_in(settings: dict[str, str]) -> bool:
        return holds(settings, ctx.release.id, artifact)

    if "token" not in ctx.run.state and not release_in(deps.app_service.read_slot(ctx.slot(target)).app_settings):
        src = deps.app_service.read_slot(ctx.slot(source)).app_settings
        if not release_in(src):
            return Outcome.fail(f"{source} does not run {what} (it runs release {src.get(RELEASE_MARK) or 'none'}): "
                                f"deploy the release to {source} first")
    return _swap_until(deps, ctx, site, source, target, release_in, what, "swap")


def swap_back(deps: Deps, ctx: StepContext) -> Outcome:
    """Undo the deployment's swap: the target slot runs what it ran before again."""
    state = ctx.run.state
    swapped = ctx.release.stages[ctx.stage.name].current
    assert swapped is not None
    before = swapped.steps[state["swapStep"]].state.get("previous") or {}
    site, source, target = _swap_ends(ctx)

    def restored(settings: dict[str, str]) -> bool:
        return (settings.get(RELEASE_MARK) == before.get(RELEASE_MARK)
                and settings.get(DIGEST_MARK) == before.get(DIGEST_MARK))

    what = f"release {before.get(RELEASE_MARK) or '(none)'} ({before.get(VERSION_MARK) or 'unknown version'})"
    return _swap_until(deps, ctx, site, source, target, restored, what, "automatic swap-back")


def _swap_until(deps: Deps, ctx: StepContext, site: Target, source: str, target: str, done: Callable[..., bool],
                what: str, how: str) -> Outcome:
    state = dict(ctx.run.state)
    src_t, dst_t = ctx.slot(source), ctx.slot(target)
    dst = deps.app_service.read_slot(dst_t).app_settings
    if done(dst):
        src = deps.app_service.read_slot(src_t).app_settings
        ctx.log(f"{target} runs {what}")
        return Outcome.ok(f"{target} runs {what}", [slot_record(dst_t, dst, how), slot_record(src_t, src, how)],
                          state)
    token = state.get("token")
    if token is None:
        state.setdefault("previous", {k: dst.get(k, "") for k in (RELEASE_MARK, DIGEST_MARK, VERSION_MARK)})
        ctx.run.state.update(state)  # kept even if the swap call fails below
        ctx.log(f"swapping {source} into {target} to run {what}")
    progress = deps.app_service.swap(site, source, target, preserve_vnet=ctx.step.config.get("preserveVnet", True),
                                     token=token)
    if not progress.done:
        ctx.log(f"swap of {source} and {target} still running")
        return Outcome.retry("swap running", 5, {**state, "token": progress.token})
    state.pop("token", None)
    dst = deps.app_service.read_slot(dst_t).app_settings
    if not done(dst):
        return Outcome.fail(f"the swap finished but {target} does not run {what} "
                            f"(it runs release {dst.get(RELEASE_MARK) or 'none'})")
    src = deps.app_service.read_slot(src_t).app_settings
    ctx.log(f"swapped: {target} runs {what}")
    return Outcome.ok(f"swapped {source} into {target}: {target} runs {what}",
                      [slot_record(dst_t, dst, how), slot_record(src_t, src, how)], state)


def start_swap(deps: Deps, ctx: StepContext) -> Outcome:
    site, source, target = _swap_ends(ctx)
    deps.app_service.apply_slot_config(site, source, target)
    ctx.log(f"preview: {source} now runs with {target}'s slot settings")
    return Outcome.ok(f"{source} runs with {target}'s settings: complete or cancel the swap")


def cancel_swap(deps: Deps, ctx: StepContext) -> Outcome:
    site, source, _ = _swap_ends(ctx)
    deps.app_service.reset_slot_config(site, source)
    ctx.log(f"preview canceled: {source} has its own settings again")
    return Outcome.ok("swap with preview canceled")


def restart(deps: Deps, ctx: StepContext) -> Outcome:
    target = ctx.slot(ctx.step.config.get("slot"))
    deps.app_service.restart(target)
    ctx.log(f"restarted {target.site}/{target.slot or 'production'}")
    return Outcome.ok("restarted")


def set_app_settings(deps: Deps, ctx: StepContext) -> Outcome:
    cfg = ctx.step.config
    target = ctx.slot(cfg.get("slot"))
    current = deps.app_service.read_slot(target).app_settings
    given = {k: setting_value(v) for k, v in cfg.get("settings", {}).items()}
    wanted = {k: v for k, v in {**current, **given}.items() if k not in cfg.get("remove", [])}
    changed = sorted(k for k in set(wanted) | set(current) if wanted.get(k) != current.get(k))
    if changed:
        deps.app_service.write_app_settings(target, wanted)
    sticky = cfg.get("sticky", [])
    if sticky:
        site = ctx.slot("production")
        names = deps.app_service.sticky_names(site)
        missing = [n for n in sticky if n not in names]
        if missing:
            deps.app_service.set_sticky_names(site, names + missing)
            ctx.log(f"slot-sticky now: {', '.join(missing)}")
    ctx.log(f"changed settings: {', '.join(changed) or 'none'}")  # names only: values may be secrets
    return Outcome.ok(f"{len(changed)} settings changed")


KINDS: dict[str, Callable[[Deps, StepContext], Outcome]] = {
    "deploy-package": deploy_package,
    "http-check": http_check,
    "wait": wait,
    "swap": swap,
    "complete-swap": swap,
    "start-swap": start_swap,
    "cancel-swap": cancel_swap,
    "restart": restart,
    "set-app-settings": set_app_settings,
    "swap-back": swap_back,
}

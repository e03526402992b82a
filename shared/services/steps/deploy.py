"""The `deploy-package` step: the release's package onto the stage's slot, by zip deployment or
run-from-package, reconcile-then-act (a slot that already runs the package is not deployed again).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from shared.services.deps import Deps
from shared.services.steps.context import (
    DIGEST_MARK,
    RELEASE_MARK,
    RUN_FROM_PACKAGE,
    RUN_FROM_PACKAGE_IDENTITY,
    VERSION_MARK,
    Outcome,
    StepContext,
    holds,
    slot_record,
)


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
                              [slot_record(target, settings, "deployment", deps.clock.now())])
        if not artifact.get("stored"):
            return Outcome.fail(f"{artifact['alias']} {artifact['version']} has no package Slipway keeps a copy of "
                                f"(registered before packages were proven): register the build as a new version")
        outcome = _start_deployment(deps, ctx, artifact, settings, state)
        if outcome is not None:
            return outcome
    if state.get("phase") == "deploying":
        finished, ok, text = deps.app_service.deployment_status(target, state["status"])
        if not finished:
            return Outcome.retry("zip deployment running", _next_look(state), state)
        if not ok:
            return Outcome.fail(f"the zip deployment to {where} failed: {text or 'no reason given'}")
        ctx.log(f"zip deployment to {where} completed")
        state["phase"] = "deployed"
    if state.get("phase") == "deployed":
        settings = dict(deps.app_service.read_slot(target).app_settings)
        settings.update(_marks(ctx, artifact))
        deps.app_service.write_app_settings(target, settings)
        state.update(phase="verify", looks=0)  # the new build restarts: look again soon
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
        state.update(phase="verify", looks=0)  # the new build restarts: look again soon
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
    record = [slot_record(target, slot.app_settings, "deployment", deps.clock.now())]
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
    return Outcome.retry(f"waiting for the new build: {seen}", _next_look(state), state)


def _next_look(state: dict[str, Any]) -> float:
    """Look again soon, then less often: 0.5 s, 1 s, 2 s, then every 3 s (a small package deploys and
    restarts in a second or two, a large one takes a minute; each look is one queue message)."""
    looks = int(state.get("looks", 0)) + 1
    state["looks"] = looks
    return min(3.0, 0.25 * 2.0 ** looks)

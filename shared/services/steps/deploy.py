"""The `deploy-package` step: the release's package onto the stage's slot, by zip deployment or
run-from-package, reconcile-then-act (a slot that already runs the package is not deployed again).

Function apps are targets too. On Premium and Dedicated plans they take code as web apps do, except
that Functions runs a package from its URL for every language, Python and Java included
(learn.microsoft.com azure-functions/run-functions-from-deployment-package). The plan decides the rest
(azure-functions/deployment-zip-push, "Package deployment by hosting plan"):
- Flex Consumption: one way in, One Deploy (`/api/publish`), which stores the package in the app's
  deployment storage container and restarts the app from it; no slots, and WEBSITE_RUN_FROM_PACKAGE is
  "not used" (functions-app-settings, "Flex Consumption plan deprecations"): a deployment fails while it
  is set (Azure/azure-functions-dotnet-worker#2712), so the step removes it first;
- Consumption on Linux (`Dynamic`): no zip deployment, an external package URL: run-from-package only.
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
        hosting = deps.app_service.hosting(target)
        if is_flex(hosting) and not target.is_production:
            return Outcome.fail(f"{target.site} is a Flex Consumption function app, which has no deployment slots "
                                f"(learn.microsoft.com, flex-consumption-plan): deploy to the app itself")
        settings = dict(deps.app_service.read_slot(target).app_settings)
        if holds(settings, ctx.release.id, artifact):
            ctx.log(f"{where} already runs {artifact['alias']} {artifact['version']} of release {ctx.release.id}")
            return Outcome.ok(f"{artifact['version']} already on {where}",
                              [slot_record(target, settings, "deployment", deps.clock.now())])
        if not artifact.get("stored"):
            return Outcome.fail(f"{artifact['alias']} {artifact['version']} has no package Slipway keeps a copy of "
                                f"(registered before packages were proven): register the build as a new version")
        outcome = _start_deployment(deps, ctx, artifact, settings, state, hosting)
        if outcome is not None:
            return outcome
    if state.get("phase") == "deploying":
        finished, ok, text = deps.app_service.deployment_status(target, state["status"])
        if not finished:
            # Bounded like the whole step: a deployment that is never listed (a Flex deployment worker
            # recycled) or never ends must not keep the step looking for ever.
            limit = state.get("deployDeadline") or state["deadline"]
            if ctx.now >= datetime.fromisoformat(limit):
                return Outcome.fail(f"the zip deployment to {where} did not finish by {limit}: "
                                    f"{text or 'still running'}")
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


DEPLOY_SECONDS = 1800
"""The least time a zip deployment may take before the step gives up on it."""


def is_flex(hosting: dict[str, str]) -> bool:
    """A Flex Consumption app, by the plan SKU its site reports (as `az functionapp` tells one)."""
    return hosting.get("sku", "").lower() == "flexconsumption"


def _start_deployment(deps: Deps, ctx: StepContext, artifact: dict[str, Any], settings: dict[str, str],
                      state: dict[str, Any], hosting: dict[str, str]) -> Outcome | None:
    cfg, target = ctx.step.config, ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    state["deadline"] = (ctx.now + timedelta(seconds=cfg.get("verifyTimeoutSeconds", 300))).isoformat()
    # A large package (or a remote build) may take longer to deploy than the new build takes to answer:
    # the deployment itself gets at least half an hour.
    state["deployDeadline"] = (ctx.now + timedelta(seconds=max(cfg.get("verifyTimeoutSeconds", 300),
                                                                DEPLOY_SECONDS))).isoformat()
    method = cfg.get("method", "auto")
    if is_flex(hosting):
        return _start_flex(deps, ctx, artifact, settings, state, hosting, method)
    function_app = "functionapp" in hosting.get("kind", "").lower()
    linux_consumption = function_app and "linux" in hosting.get("kind", "").lower() \
        and hosting.get("sku", "").lower() == "dynamic"
    stack = deps.app_service.stack(target)
    language = stack.split("|")[0].upper()
    url_only = language in ("PYTHON", "JAVA") and not function_app  # Functions runs any language from a URL
    if method == "auto":
        method = "runFromPackage" if cfg.get("packageIdentity") and not url_only else "zipDeploy"
    ctx.log(f"{where} runs {stack or 'an unknown stack'}: deploying by {method}")
    if method == "zipDeploy" and linux_consumption:
        return Outcome.fail(f"{where} is a function app on the Linux Consumption plan, which takes no zip "
                            f"deployment (learn.microsoft.com, azure-functions/deployment-zip-push): give "
                            f"`packageIdentity` to run it from the package's URL")
    if method == "runFromPackage":
        if url_only:
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
    return _send(deps, ctx, artifact, settings, state, remove_any=False)


def _start_flex(deps: Deps, ctx: StepContext, artifact: dict[str, Any], settings: dict[str, str],
                state: dict[str, Any], hosting: dict[str, str], method: str) -> Outcome | None:
    """A Flex Consumption app: One Deploy only (`/api/publish`); the platform keeps the package in the
    app's deployment storage and restarts the app from it (flex-consumption-plan, "Deployment")."""
    where = ctx.target.site
    if method == "runFromPackage":
        return Outcome.fail(f"{where} is a Flex Consumption function app: it runs the package One Deploy stores in "
                            f"its deployment storage, and WEBSITE_RUN_FROM_PACKAGE is not supported there "
                            f"(learn.microsoft.com, functions-app-settings, Flex Consumption plan deprecations); "
                            f"use method zipDeploy (or auto)")
    storage = hosting.get("deploymentStorage") or "its deployment storage"
    ctx.log(f"{where} is a Flex Consumption function app: deploying by One Deploy, which stores the package in "
            f"{storage} and restarts the app from it")
    if ctx.step.config.get("packageIdentity"):
        ctx.log("`packageIdentity` is not used: a Flex Consumption app reads its package with its own identity")
    return _send(deps, ctx, artifact, settings, state, remove_any=True)


def _send(deps: Deps, ctx: StepContext, artifact: dict[str, Any], settings: dict[str, str],
          state: dict[str, Any], *, remove_any: bool) -> Outcome | None:
    """Send the verified snapshot's bytes to the slot's deployment endpoint. A remote package URL in
    WEBSITE_RUN_FROM_PACKAGE makes App Service refuse the zip; on Flex (`remove_any`) any value of it fails
    the deployment: it is removed first."""
    target = ctx.target
    where = f"{target.site}/{target.slot or 'production'}"
    path, found = deps.packages.download(artifact["stored"], artifact["snapshot"])
    try:
        if found != artifact.get("sha256"):
            return _tampered(ctx, artifact, found)
        ctx.log(f"package verified: sha256 {found}")
        package = settings.get(RUN_FROM_PACKAGE)
        if package is not None and (remove_any or package not in ("", "1")):
            for name in (RUN_FROM_PACKAGE, RUN_FROM_PACKAGE_IDENTITY):
                settings.pop(name, None)
            deps.app_service.write_app_settings(target, settings)
            ctx.log(f"{where} no longer has {RUN_FROM_PACKAGE}")
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

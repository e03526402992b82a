"""The `deploy-container` step: the stage's slot runs a container image pinned by digest, reconcile-then-act
(a slot already on that image is not written again).

The image goes into the slot's site config (`linuxFxVersion = DOCKER|<image>`), which swaps with the slot's
content (learn.microsoft.com, app-service/deploy-staging-slots, "Manage settings": general settings such as
the framework version are not slot-specific), and the release marks go into its app settings, which swap
too: so `swap` and what-runs-where treat a container like a package.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain.target import Target
from shared.schemas.step_container import PINNED_IMAGE
from shared.services.deps import Deps
from shared.services.steps.context import (
    DIGEST_MARK,
    RELEASE_MARK,
    VERSION_MARK,
    Outcome,
    StepContext,
    slot_record,
)


def deploy_container(deps: Deps, ctx: StepContext) -> Outcome:
    """Point the slot at the image, mark it with the release, then prove the new container answers.

    Idempotent without an intent: setting the same linuxFxVersion twice is one change, so a run after a
    crash (or a second delivery) reads the slot, finds the image already there and only writes what is
    missing. The image is written before the marks: a slot never claims a release it does not run.
    App Service pulls and starts the new container after answering, the old one serving meanwhile, so
    a 200 proves nothing: with `verifyPath` the step waits until that page shows the release's version."""
    cfg = ctx.step.config
    artifact = ctx.artifact()
    if artifact is None:
        return Outcome.fail(f"release has no artifact '{cfg.get('artifact') or 'primary'}'")
    target = ctx.slot(cfg.get("slot"))
    where = _where(target)
    state = dict(ctx.run.state)
    if state.get("phase") != "verify":
        image = ctx.expand(str(cfg.get("image") or ""))
        pinned = PINNED_IMAGE.match(image)
        if pinned is None:
            return Outcome.fail(f"image '{image}' is not pinned by digest ([registry/]repository[:tag]@sha256:<64 "
                                f"lower-case hex>): a tag can be moved to another image after approval; nothing "
                                f"was deployed")
        registered = str(artifact.get("sha256") or "").lower()
        if registered and registered != pinned["digest"]:
            return Outcome.fail(f"image {image} is not {artifact['alias']} {artifact['version']}: that version was "
                                f"registered with sha256 {registered}; nothing was deployed")
        marks = _marks(ctx, artifact)
        running = deps.app_service.container(target)
        settings = dict(deps.app_service.read_slot(target).app_settings)
        on_image = running is not None and _same(running, image)
        marked = all(settings.get(k) == v for k, v in marks.items())
        if on_image and marked:
            ctx.log(f"{where} already runs {image} for release {ctx.release.id}")
            return Outcome.ok(f"{artifact['version']} already on {where}",
                              [slot_record(target, settings, "deployment", deps.clock.now())])
        if not on_image:
            ctx.log(f"{where} runs {running or 'no custom container'}: pointing it at {image}")
            deps.app_service.set_container(target, image)
        if not marked:
            settings.update(marks)
            deps.app_service.write_app_settings(target, settings)
        ctx.log(f"{where} marked as running {artifact['alias']} {artifact['version']} of release {ctx.release.id}")
        deadline = ctx.now + timedelta(seconds=int(cfg.get("verifyTimeoutSeconds", 600)))
        state.update(phase="verify", image=image, looks=0, deadline=deadline.isoformat())
    return _verify(deps, ctx, target, artifact, state)


def stop_container(deps: Deps, ctx: StepContext) -> str:
    """Nothing keeps running on Slipway's behalf: App Service pulls and starts the image by itself, and a
    stopped release leaves the slot as the step left it (a later deployment or a swap-back changes it)."""
    image = ctx.run.state.get("image")
    return f"nothing to stop: {_where(ctx.slot(ctx.step.config.get('slot')))} was pointed at {image}" if image \
        else "nothing to stop: the step changed no slot yet"


def _marks(ctx: StepContext, artifact: dict[str, Any]) -> dict[str, str]:
    """As deploy-package writes them: `swap` and what-runs-where read a slot's release by these."""
    return {DIGEST_MARK: artifact.get("sha256", ""), RELEASE_MARK: str(ctx.release.id),
            VERSION_MARK: artifact["version"]}


def _same(running: str, image: str) -> bool:
    """The same image reference: the registry's host name is case-insensitive, the rest is not."""
    def key(reference: str) -> tuple[str, str]:
        first, slash, rest = reference.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            return first.lower(), rest
        return "", reference
    return key(running) == key(image)


def _verify(deps: Deps, ctx: StepContext, target: Target, artifact: dict[str, Any],
            state: dict[str, Any]) -> Outcome:
    cfg = ctx.step.config
    where = _where(target)
    slot = deps.app_service.read_slot(target)
    record = [slot_record(target, slot.app_settings, "deployment", deps.clock.now())]
    path = cfg.get("verifyPath")
    if not path:
        ctx.log(f"{where} now runs {state['image']} (not verified: no `verifyPath` to prove the new container "
                f"answers)")
        return Outcome.ok(f"deployed {artifact['version']} to {where}", record, state)
    wanted = ctx.expand(str(cfg.get("verifyText", "{version}")))
    url = slot.url.rstrip("/") + path
    result = deps.probe.get(url, 10)
    if result.error is None and result.status == 200 and wanted in result.body:
        ctx.log(f"GET {url} shows '{wanted}': the new container answers")
        return Outcome.ok(f"deployed {artifact['version']} to {where}", record, state)
    seen = result.error or f"status {result.status}" + ("" if wanted in (result.body or "") else
                                                         f", without '{wanted}' (the image is still pulled "
                                                         f"or starting)")
    if ctx.now >= datetime.fromisoformat(state["deadline"]):
        return Outcome.fail(f"{where} did not show '{wanted}' at {path} by {state['deadline']}: {seen}")
    ctx.debug(f"GET {url}: {seen}")
    return Outcome.retry(f"waiting for the new container: {seen}", _next_look(state), state)


def _next_look(state: dict[str, Any]) -> float:
    """Look again soon, then less often: 0.5 s, 1 s, 2 s, then every 5 s (pulling an image takes from
    seconds to minutes; each look is one queue message)."""
    looks = int(state.get("looks", 0)) + 1
    state["looks"] = looks
    return min(5.0, 0.25 * 2.0 ** looks)


def _where(target: Target) -> str:
    return f"{target.site}/{target.slot or 'production'}"

"""Where a swap happens: `swap` / `complete-swap`, `start-swap` and `cancel-swap` (swap with
preview), and `swap-back`, which the engine adds when a stage fails after its swap (when to swap
back is decided in `shared/domain/transitions/steps.py`). A swap is claimed by its queue message
before it acts, so two copies never swap twice; it checks the slots before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain.target import Target
from shared.services.deps import Deps
from shared.services.steps.context import (
    DIGEST_MARK,
    RELEASE_MARK,
    VERSION_MARK,
    Outcome,
    StepContext,
    holds,
    slot_record,
)


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

    def ready(src: dict[str, str]) -> Outcome | None:
        if release_in(src):
            return None
        return Outcome.fail(f"{source} does not run {what} (it runs release {src.get(RELEASE_MARK) or 'none'}): "
                            f"deploy the release to {source} first")

    return _swap_until(deps, ctx, site, source, target, release_in, what, "swap", ready)


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


def _marks(settings: dict[str, str]) -> dict[str, str]:
    return {k: settings.get(k, "") for k in (RELEASE_MARK, DIGEST_MARK, VERSION_MARK)}


def _swapped_since_intent(deps: Deps, ctx: StepContext, source: str, target: str, what: str) -> Outcome | None:
    """A run that died between swapping and recording it left its intent, with App Service's last swap
    as it was before. If App Service has swapped these two slots since, that swap was this step's
    (nothing else swaps the slots of a stage that deploys one release at a time): it is recorded as
    done, even if the slots changed again afterwards, and not made again. Only App Service's own
    timestamps are compared, so clock skew between Slipway and Azure cannot fake a swap. None when no
    swap happened."""
    intent = ctx.run.state.get("intent")
    if not intent or intent.get("source") != source or intent.get("target") != target:
        return None
    seen = {name: deps.app_service.read_slot(ctx.slot(name)) for name in (target, source)}
    before = intent.get("lastSwapBefore")
    for name in (target, source):
        last = seen[name].last_swap
        if last is None or last.slots != frozenset((source, target)) or \
                (before is not None and last.at <= datetime.fromisoformat(before)):
            continue
        exact = all(seen[target].app_settings.get(k, "") == v for k, v in intent["sourceBefore"].items())
        at, when = (last.at, f"at {last.at.isoformat()}") if exact else \
            (datetime.fromisoformat(intent["at"]), f"between {intent['at']} and {last.at.isoformat()}")
        ctx.log(f"the swap of {source} into {target} to run {what} completed {when}; its run ended before "
                f"recording it{'' if exact else f', and {target} has changed since'}")
        return Outcome.ok(f"swapped {source} into {target} {when}: {target} ran {what}",
                          [slot_record(ctx.slot(target), intent["sourceBefore"], "swap", at),
                           slot_record(ctx.slot(source), intent["targetBefore"], "swap", at)],
                          {k: v for k, v in ctx.run.state.items() if k != "token"})
    return None


def _swap_until(deps: Deps, ctx: StepContext, site: Target, source: str, target: str, done: Callable[..., bool],
                what: str, how: str, ready: Callable[[dict[str, str]], Outcome | None] | None = None) -> Outcome:
    """Reconcile, then swap: a target that runs `what` already is recorded as it is; a swap an earlier
    run made but did not record is recorded from its intent; otherwise, if the source is `ready`,
    the intent is written and the swap started (or followed, with its token)."""
    state = dict(ctx.run.state)
    src_t, dst_t = ctx.slot(source), ctx.slot(target)
    dst = deps.app_service.read_slot(dst_t).app_settings
    if done(dst):
        src = deps.app_service.read_slot(src_t).app_settings
        ctx.log(f"{target} runs {what}")
        now = deps.clock.now()
        return Outcome.ok(f"{target} runs {what}", [slot_record(dst_t, dst, how, now),
                                                     slot_record(src_t, src, how, now)], state)
    token = state.get("token")
    if token is None:
        happened = _swapped_since_intent(deps, ctx, source, target, what)
        if happened is not None:
            return happened
        src_slot = deps.app_service.read_slot(src_t)
        refusal = ready(src_slot.app_settings) if ready is not None else None
        if refusal is not None:
            return refusal
        state.setdefault("previous", _marks(dst))
        last = src_slot.last_swap
        ctx.intend({"act": how, "source": source, "target": target, "at": deps.clock.now().isoformat(),
                    "sourceBefore": _marks(src_slot.app_settings), "targetBefore": _marks(dst),
                    "lastSwapBefore": last.at.isoformat() if last else None})
        state["intent"] = ctx.run.state["intent"]
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
    now = deps.clock.now()
    return Outcome.ok(f"swapped {source} into {target}: {target} runs {what}",
                      [slot_record(dst_t, dst, how, now), slot_record(src_t, src, how, now)], state)


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

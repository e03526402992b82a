"""Steps that change a slot's configuration: `restart` and `set-app-settings`.
"""

from __future__ import annotations

from shared.domain.secrets import setting_value
from shared.services.deps import Deps
from shared.services.steps.context import (
    Outcome,
    StepContext,
)


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

"""What the surface reads, through the services and indexes the /api reads: definitions, releases,
environments, approvals, deployments, manual interventions and logs, rendered in Azure DevOps' shapes.
Nothing here writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.domain.access import Principal
from shared.domain.errors import FieldError, Invalid, NotFound
from shared.domain.release import Release
from shared.domain.vocabulary import Kind
from shared.services import definitions, log_archive, releases
from shared.services.ado_compat import definitions as definition_views
from shared.services.ado_compat import ids, refs, release_views, statuses
from shared.services.ado_compat.approval_views import (
    APPROVAL_TYPE,
    all_approvals,
    all_interventions,
    approval_entries,
    intervention,
)
from shared.services.ado_compat.context import ReleaseContext
from shared.services.deps import Deps

SCAN_ROWS = 1000
"""The most index rows a filtered list reads for one answer (the filter works on what it read)."""
SCAN_RELEASES = 200
"""The most releases one deployments list reads."""


def load(deps: Deps, site: refs.Site, release_id: int) -> ReleaseContext:
    return ReleaseContext(site, releases.get(deps, release_id))


def stage_of(ctx: ReleaseContext, index: int, what: str) -> str:
    if not 0 <= index < len(ctx.stages) or ctx.stages[index]["name"] not in ctx.release.stages:
        raise NotFound(f"no such {what}")
    return str(ctx.stages[index]["name"])


def decoded(kind: ids.Kind, number: int) -> ids.Parts:
    try:
        return ids.decode(kind, number)
    except ids.IdOutOfRange:
        raise NotFound(f"no {kind.name} {number}") from None


# -- definitions


def definition(deps: Deps, site: refs.Site, definition_id: int) -> dict[str, Any]:
    head, body = definitions.current_body(deps, definition_id)
    return definition_views.definition(site, head, body)


def definitions_page(deps: Deps, site: refs.Site, *, search: str | None, exact: bool, top: int,
                     cursor: dict[str, str] | None, expand: bool) -> tuple[list[dict[str, Any]], Any]:
    """A page of definitions by id; `search` keeps the names containing it (or equal to it, `exact`)."""
    if not search:
        rows, nxt = deps.store.definitions_page(cursor=cursor, limit=top)
    else:
        wanted = search.casefold()

        def hit(row: dict[str, Any]) -> bool:
            name = str(row["name"]).casefold()
            return name == wanted if exact else wanted in name

        rows, nxt = _scan(lambda c, n: deps.store.definitions_page(cursor=c, limit=n), hit, top, cursor)
    if expand:
        return [definition(deps, site, int(r["id"])) for r in rows], nxt
    return [definition_views.summary(site, r) for r in rows], nxt


def _scan(page: Callable[[Any, int], tuple[list[dict[str, Any]], Any]], keep: Callable[[dict[str, Any]], bool],
          top: int, cursor: Any) -> tuple[list[dict[str, Any]], Any]:
    """Up to `top` rows that `keep` keeps, reading whole pages (at most SCAN_ROWS rows): the cursor then
    continues after the last page read."""
    found: list[dict[str, Any]] = []
    read = 0
    while True:
        rows, cursor = page(cursor, min(100, SCAN_ROWS))
        read += len(rows)
        found += [r for r in rows if keep(r)]
        if not cursor or len(found) >= top or read >= SCAN_ROWS:
            return found[:top], cursor


# -- releases


def releases_page(deps: Deps, site: refs.Site, *, definition_id: int | None, status: str | None,
                  search: str | None, top: int, cursor: dict[str, str] | None,
                  expand: bool) -> tuple[list[dict[str, Any]], Any]:
    """Newest first, from the releases index (as Azure DevOps lists them by default)."""
    if definition_id is not None:
        definitions.current_head(deps, definition_id)
    rows, nxt = deps.store.releases_page(cursor=cursor, limit=top, definition_id=definition_id, status=status)
    found = [deps.store.release(int(r["definitionId"]), int(r["id"])) for r in rows]
    shown = [f[0] for f in found if f is not None and (not search or search.casefold() in f[0].name.casefold())]
    return [release_views.release(ReleaseContext(site, r), environments=expand) for r in shown], nxt


def release(deps: Deps, site: refs.Site, release_id: int) -> dict[str, Any]:
    return release_views.release(load(deps, site, release_id))


def environment(deps: Deps, site: refs.Site, release_id: int, environment_id: int) -> dict[str, Any]:
    ctx, stage = environment_of(deps, site, release_id, environment_id)
    return release_views.environment(ctx, stage)


def environment_of(deps: Deps, site: refs.Site, release_id: int, environment_id: int) -> tuple[ReleaseContext, str]:
    parts = decoded(ids.ENVIRONMENT, environment_id)
    if parts.owner != release_id:
        raise NotFound(f"release {release_id} has no environment {environment_id}")
    ctx = load(deps, site, release_id)
    return ctx, stage_of(ctx, parts.stage, f"environment {environment_id}")


# -- approvals


def approvals(deps: Deps, site: refs.Site, who: Principal, *, assigned_to: str | None, status: str,
              release_ids: list[int], kind: str | None, top: int, my_groups: bool) -> list[dict[str, Any]]:
    """One entry per approver, newest release first. `status` is an ApprovalStatus name (or `all`);
    `assigned_to` a sign-in name or the id the surface shows for it; `my_groups` counts the caller's
    groups' entries as the caller's."""
    side = {"preDeploy": Kind.PRE, "postDeploy": Kind.POST}.get(kind or "")

    def keep(entry: dict[str, Any]) -> bool:
        name = str(entry["approver"]["uniqueName"])
        mine = assigned_to is None or refs.identity_matches(name, assigned_to) or (
            my_groups and refs.identity_matches(who.name, assigned_to) and who.is_(name))
        typed = side is None or entry["approvalType"] == APPROVAL_TYPE[side]
        return mine and typed and (status == "all" or entry["status"] == status)

    if release_ids:
        found = []
        for release_id in release_ids:
            try:
                found += [e for e in all_approvals(load(deps, site, release_id)) if keep(e)]
            except NotFound:
                continue
        return found[:top]
    return _indexed_approvals(deps, site, keep, top, pending_only=status == "pending")


def _indexed_approvals(deps: Deps, site: refs.Site, keep: Callable[[dict[str, Any]], bool], top: int, *,
                       pending_only: bool) -> list[dict[str, Any]]:
    """From the approvals index (newest release first), reading each release once."""
    loaded: dict[int, ReleaseContext | None] = {}
    found: list[dict[str, Any]] = []
    cursor, read = None, 0
    while len(found) < top and read < SCAN_ROWS:
        rows, cursor = deps.store.approvals_page(cursor=cursor, limit=100, status="pending" if pending_only else None)
        read += len(rows)
        for row in rows:
            release_id = int(row["releaseId"])
            if release_id not in loaded:
                got = deps.store.release(int(row["definitionId"]), release_id)
                loaded[release_id] = ReleaseContext(site, got[0]) if got else None
            ctx = loaded[release_id]
            run = ctx.release.stages.get(str(row["stage"])) if ctx else None
            attempt = int(row["attempt"])
            if ctx is None or run is None or not 1 <= attempt <= len(run.deployments):
                continue
            found += [e for e in approval_entries(ctx, str(row["stage"]), run.deployments[attempt - 1],
                                                  Kind(str(row["kind"]))) if keep(e)]
        if not cursor:
            break
    return found[:top]


def approval_parts(deps: Deps, site: refs.Site, approval_id: int) -> tuple[ReleaseContext, str, int, Kind, int]:
    """(release, stage, attempt, side, entry) an approval id names; NotFound when it names nothing."""
    parts = decoded(ids.APPROVAL, approval_id)
    ctx = load(deps, site, parts.owner)
    stage = stage_of(ctx, parts.stage, f"approval {approval_id}")
    run = ctx.release.stages[stage]
    kind = Kind.PRE if parts.side == ids.PRE else Kind.POST
    dep = run.deployments[parts.attempt - 1] if parts.attempt <= len(run.deployments) else None
    approval = dep.approvals.get(kind) if dep else None
    if approval is None or parts.index >= len(approval.approvers):
        raise NotFound(f"no approval {approval_id}")
    return ctx, stage, parts.attempt, kind, parts.index


def approval(ctx: ReleaseContext, stage: str, attempt: int, kind: Kind, entry: int) -> dict[str, Any]:
    dep = ctx.release.stages[stage].deployments[attempt - 1]
    return approval_entries(ctx, stage, dep, kind)[entry]


# -- deployments


def deployments(deps: Deps, site: refs.Site, *, definition_id: int | None, environment_id: int | None,
                status: set[str] | None, latest_only: bool, top: int) -> list[dict[str, Any]]:
    """Attempts of the newest releases first (at most SCAN_RELEASES releases read), each stage in the
    definition's order, the newest attempt first."""
    if definition_id is not None:
        definitions.current_head(deps, definition_id)
    try:
        wanted = ids.decode(ids.DEFINITION_ENVIRONMENT, environment_id) if environment_id is not None else None
    except ids.IdOutOfRange:
        raise Invalid([FieldError("definitionEnvironmentId", "not an environment id this server issued")]) from None
    found: list[dict[str, Any]] = []
    cursor, read = None, 0
    while len(found) < top and read < SCAN_RELEASES:
        rows, cursor = deps.store.releases_page(cursor=cursor, limit=50, definition_id=definition_id)
        read += len(rows)
        for row in rows:
            got = deps.store.release(int(row["definitionId"]), int(row["id"]))
            if got is not None:
                found += _attempts(ReleaseContext(site, got[0]), wanted, status, latest_only)
        if not cursor:
            break
    return found[:top]


def _attempts(ctx: ReleaseContext, wanted: ids.Parts | None, status: set[str] | None,
              latest_only: bool) -> list[dict[str, Any]]:
    if wanted is not None and wanted.owner != ctx.definition_id:
        return []
    out = []
    for index, config in enumerate(ctx.stages):
        run = ctx.release.stages.get(config["name"])
        if run is None or (wanted is not None and wanted.stage != index):
            continue
        for dep in reversed(run.deployments[-1:] if latest_only else run.deployments):
            if status is None or statuses.deployment(dep)[0] in status:
                out.append(release_views.deployment(ctx, config["name"], dep))
    return out


# -- manual interventions and logs


def interventions(deps: Deps, site: refs.Site, release_id: int) -> list[dict[str, Any]]:
    return all_interventions(load(deps, site, release_id))


def intervention_parts(deps: Deps, site: refs.Site, release_id: int,
                       intervention_id: int) -> tuple[ReleaseContext, str, int, int]:
    """(release, stage, attempt, step) a manual intervention id names within `release_id`."""
    parts = decoded(ids.INTERVENTION, intervention_id)
    if parts.owner != release_id:
        raise NotFound(f"release {release_id} has no manual intervention {intervention_id}")
    ctx = load(deps, site, release_id)
    stage = stage_of(ctx, parts.stage, f"manual intervention {intervention_id}")
    run = ctx.release.stages[stage]
    dep = run.deployments[parts.attempt - 1] if parts.attempt <= len(run.deployments) else None
    step = dep.step(parts.index) if dep else None
    if step is None or "intervention" not in step.state:
        raise NotFound(f"no manual intervention {intervention_id}")
    return ctx, stage, parts.attempt, parts.index


def intervention_view(ctx: ReleaseContext, stage: str, attempt: int, step: int) -> dict[str, Any]:
    dep = ctx.release.stages[stage].deployments[attempt - 1]
    found = dep.step(step)
    assert found is not None
    return intervention(ctx, stage, dep, found)


def logs(deps: Deps, release_id: int) -> tuple[bytes, str]:
    """Every step log of the release as one zip, and its file name."""
    found: Release = releases.get(deps, release_id)
    return log_archive.zip_of(deps, found), log_archive.file_name(found)


def task_log(deps: Deps, site: refs.Site, release_id: int, environment_id: int, phase_id: int, task_id: int,
             start: int | None, end: int | None) -> str:
    """One step's log: the phase is the deployment (its id), the task the step's position (1, 2, …);
    `start` and `end` are line numbers (1-based, inclusive)."""
    ctx, stage = environment_of(deps, site, release_id, environment_id)
    parts = decoded(ids.DEPLOYMENT, phase_id)
    if (parts.owner, parts.stage) != (release_id, ctx.index(stage)):
        raise NotFound(f"environment {environment_id} has no deploy phase {phase_id}")
    if start is not None and end is not None and end < start:
        raise Invalid([FieldError("endLine", "must not be before startLine")])
    text = releases.step_log(deps, release_id, stage, parts.attempt, task_id - 1)[2]
    if start is None and end is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[(start or 1) - 1:end])

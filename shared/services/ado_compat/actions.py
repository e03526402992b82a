"""What the surface changes, each through the service the /api uses for it, as the caller: creating a
release (`releases.create`), deploying a stage (`releases.deploy_stage`), deciding or reassigning an
approval (`approvals.cast_vote`, `approvals.reassign`), ignoring a gate (`releases.ignore_gate`) and
resuming or rejecting a manual intervention (`approvals.intervene`). The caller's roles are checked by
the HTTP function, as /api's are; who may decide what is the services' to say.

What Azure DevOps can ask and Slipway cannot do is refused by name (400): a draft release, a stage
made manual for one release, a secret given at creation, deployment-time variables, cancelling a
stage, ignoring some of a gate's signals but not all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shared.domain.access import ADMIN, Forbidden, Principal
from shared.domain.errors import Conflict, FieldError, Invalid, NotFound
from shared.domain.vocabulary import Kind
from shared.schemas.actions import DeployIn
from shared.schemas.release import ArtifactVersionIn, ReleaseIn
from shared.schemas.release import parse as parse_slipway
from shared.services import approvals, definitions, releases
from shared.services.ado_compat import ids, reads, refs, release_views
from shared.services.ado_compat.bodies import (
    ApprovalUpdateIn,
    EnvironmentUpdateIn,
    GateUpdateIn,
    InterventionUpdateIn,
    ReleaseStartIn,
)
from shared.services.ado_compat.context import ReleaseContext
from shared.services.deps import Deps

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def create_release(deps: Deps, site: refs.Site, body: ReleaseStartIn, who: Principal) -> dict[str, Any]:
    """`artifacts[].instanceReference`: the build number (`name`) is the artifact version, else the build id
    (`id`), whichever was registered (POST /api/artifacts)."""
    if body.isDraft:
        raise Invalid([FieldError("isDraft", "Slipway has no draft releases: create the release when it is ready")])
    if body.environmentsMetadata:
        raise Invalid([FieldError("environmentsMetadata", "not supported: Slipway's stages take their settings "
                                                          "from the definition")])
    _, definition = definitions.current_body(deps, body.definitionId)
    _check_manual(definition, body.manualEnvironments or [])
    given = {}
    for name, value in (body.variables or {}).items():
        if value.isSecret:
            raise Invalid([FieldError(f"variables.{name}", "a secret cannot be given when a release is created: "
                                                           "keep it in Key Vault and reference it")])
        given[name] = value.value or ""
    chosen = [ArtifactVersionIn(alias=a.alias, version=_version(deps, definition, i, a.alias, a.instanceReference.name,
                                                                 a.instanceReference.id))
              for i, a in enumerate(body.artifacts)]
    request = parse_slipway(ReleaseIn, {"definitionId": body.definitionId, "description": body.description or "",
                                        "artifacts": [c.model_dump(exclude_none=True) for c in chosen],
                                        "variables": given})
    created, _ = releases.create(deps, request, by=who.name)
    return release_views.release(ReleaseContext(site, created))


def _check_manual(definition: dict[str, Any], names: list[str]) -> None:
    """Azure DevOps' manualEnvironments keep listed stages from starting on their own for this release;
    Slipway's triggers belong to the definition, so only stages that are manual already may be listed."""
    stages = {s["name"].casefold(): s for s in definition.get("stages", [])}
    for i, name in enumerate(names):
        stage = stages.get(name.casefold())
        if stage is None:
            raise Invalid([FieldError(f"manualEnvironments[{i}]", f"the definition has no stage '{name}'")])
        kind = (stage.get("trigger") or {}).get("type", "manual")
        if kind not in ("manual", "schedule"):
            raise Invalid([FieldError(f"manualEnvironments[{i}]", f"stage '{name}' starts {kind} in every release: "
                                      "Slipway cannot make it manual for one release (change its trigger)")])


def _version(deps: Deps, definition: dict[str, Any], index: int, alias: str, name: str | None,
             build_id: str | None) -> str:
    source = next((a["source"] for a in definition.get("artifacts", []) if a["alias"] == alias), None)
    if source is None:
        raise Invalid([FieldError(f"artifacts[{index}].alias", f"the definition has no artifact '{alias}'")])
    candidates = [c for c in (name, build_id) if c and VERSION.match(c)]
    for candidate in candidates:
        if deps.store.artifact(source, candidate) is not None:
            return candidate
    said = " or ".join(f"'{c}'" for c in (name, build_id) if c) or "no version"
    raise Invalid([FieldError(f"artifacts[{index}].instanceReference",
                              f"{said} is not a registered version of '{source}' (register builds with "
                              f"POST /api/artifacts)")])


def deploy_environment(deps: Deps, site: refs.Site, release_id: int, environment_id: int, body: EnvironmentUpdateIn,
                       who: Principal) -> dict[str, Any]:
    """`status: inProgress` deploys the stage now, or no earlier than `scheduledDeploymentTime`."""
    ctx, stage = reads.environment_of(deps, site, release_id, environment_id)
    if body.status.casefold() != "inprogress":
        raise Invalid([FieldError("status", "only inProgress (deploy the stage) is supported: abandon the release "
                                            "in Slipway to stop it")])
    if body.variables:
        raise Invalid([FieldError("variables", "Slipway takes release-time values when the release is created, "
                                               "not per deployment")])
    request = DeployIn(notBefore=_instant(body.scheduledDeploymentTime))
    done = releases.deploy_stage(deps, release_id, stage, request, by=who.name, admin=who.has(ADMIN))
    return release_views.environment(ReleaseContext(site, done), stage)


def _instant(text: str | None) -> str | None:
    """A scheduled time: none for Azure DevOps' empty time (year 1), UTC when it names no zone."""
    if not text or text.startswith("0001-01-01"):
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid([FieldError("scheduledDeploymentTime", "must be an ISO-8601 time")]) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def update_approval(deps: Deps, site: refs.Site, approval_id: int, body: ApprovalUpdateIn,
                    who: Principal) -> dict[str, Any]:
    """`approved` or `rejected` with `comments` votes as the caller; `reassigned` with `approver` hands the
    entry to someone else (Approvals_Update takes "status, approver and comments")."""
    ctx, stage, attempt, kind, entry = reads.approval_parts(deps, site, approval_id)
    status = body.status.casefold()
    approver = ctx.release.stages[stage].deployments[attempt - 1].approvals[kind].approvers[entry]
    if status in ("approved", "rejected"):
        if not who.is_(approver):
            raise Forbidden(f"approval {approval_id} is {approver}'s: {who.name} may not decide it")
        done = approvals.cast_vote(deps, ctx.release.id, stage, kind, who, "approve" if status == "approved"
                                   else "reject", body.comments or "", attempt=attempt, if_match=None)
        return reads.approval(ReleaseContext(site, done), stage, attempt, kind, entry)
    if status == "reassigned":
        to = (body.approver.uniqueName or body.approver.displayName) if body.approver else None
        if not to:
            raise Invalid([FieldError("approver.uniqueName", "name who the approval is reassigned to")])
        done = approvals.reassign(deps, ctx.release.id, stage, kind, who, to, body.comments or "",
                                  attempt=attempt, if_match=None)
        now = done.stages[stage].deployments[attempt - 1].approvals[kind].approvers
        return reads.approval(ReleaseContext(site, done), stage, attempt, kind, now.index(to) if to in now else entry)
    raise Invalid([FieldError("status", "must be approved, rejected or reassigned")])


def update_gate(deps: Deps, site: refs.Site, gate_id: int, body: GateUpdateIn, who: Principal) -> dict[str, Any]:
    """Ignore a running gate (as an admin, with a comment: audited). Slipway ignores a gate as a whole, so
    `gatesToIgnore` must name each of its signals."""
    parts = reads.decoded(ids.GATE, gate_id)
    ctx = reads.load(deps, site, parts.owner)
    stage = reads.stage_of(ctx, parts.stage, f"gate {gate_id}")
    kind = Kind.PRE if parts.side == ids.PRE else Kind.POST
    run = ctx.release.stages[stage]
    dep = run.deployments[parts.attempt - 1] if parts.attempt <= len(run.deployments) else None
    if dep is None or kind not in dep.gates:
        raise NotFound(f"no gate {gate_id}")
    if dep is not run.current:
        raise Conflict(f"gate {gate_id} belongs to attempt {parts.attempt}, which a later attempt replaced")
    config = ctx.stages[parts.stage].get("preGates" if kind == Kind.PRE else "postGates") or {}
    names = {str(s.get("name")).casefold(): str(s.get("name")) for s in config.get("signals", [])}
    for i, name in enumerate(body.gatesToIgnore):
        if name.casefold() not in names:
            raise Invalid([FieldError(f"gatesToIgnore[{i}]", f"the gate has no '{name}' "
                                                             f"(its gates: {', '.join(names.values())})")])
    if {n.casefold() for n in body.gatesToIgnore} != set(names):
        raise Invalid([FieldError("gatesToIgnore", "Slipway ignores a gate as a whole: name every one of its "
                                                   f"gates ({', '.join(names.values())})")])
    if not (body.comment or "").strip():
        raise Invalid([FieldError("comment", "say why the gate is ignored (it is audited)")])
    done = releases.ignore_gate(deps, ctx.release.id, stage, kind, who, (body.comment or "").strip())
    after = ReleaseContext(site, done)
    shown = release_views.gates(after, stage, done.stages[stage].deployments[parts.attempt - 1], kind)
    assert shown is not None
    return shown


def update_intervention(deps: Deps, site: refs.Site, release_id: int, intervention_id: int,
                        body: InterventionUpdateIn, who: Principal) -> dict[str, Any]:
    """`approved` resumes the step, `rejected` rejects it (ManualInterventionUpdateMetadata)."""
    ctx, stage, attempt, step = reads.intervention_parts(deps, site, release_id, intervention_id)
    decision = {"approved": "resume", "rejected": "reject"}.get(body.status.casefold())
    if decision is None:
        raise Invalid([FieldError("status", "must be approved (resume) or rejected")])
    done = approvals.intervene(deps, release_id, stage, step, who, decision, body.comment or "", attempt=attempt,
                               if_match=None)
    return reads.intervention_view(ReleaseContext(site, done), stage, attempt, step)


"""Mails: to each approver when an approval becomes pending (with a personal, single-use link),
and to the requester when a deployment is rejected or fails.

A change that commits puts one message per recipient in its outbox (`recipients`); the mail
queue's reaction sends it (`ask`, `tell`). A crash never loses a mail, a bad address fails alone
and, after the queue's last delivery, rests in `slipway-mail-poison` instead of mailing the others
again. A mail delivered twice carries two links, each valid alone; an approval decided before its
mail goes out is not mailed. Approvers are mailed when they are addresses (a user's sign-in name,
or a group's distribution address).
"""

from __future__ import annotations

import html
import logging
import secrets
from datetime import datetime, timedelta

from shared.domain.keys import key_hash
from shared.domain.release import Deployment, Release
from shared.domain.vocabulary import ApprovalStatus, EventType, Kind
from shared.messages import AskApproval, AskIntervention, TellOutcome
from shared.services import previews
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def _deployment(deps: Deps, msg: AskApproval | AskIntervention | TellOutcome) -> tuple[Release, Deployment] | None:
    loaded = deps.store.release(msg.definition_id, msg.release_id)
    run = loaded[0].stages.get(msg.stage) if loaded else None
    if loaded is None or run is None or not 0 < msg.attempt <= len(run.deployments):
        return None
    return loaded[0], run.deployments[msg.attempt - 1]


def base_url(deps: Deps) -> str:
    settings = deps.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"https://{settings.website_hostname}" if settings.website_hostname else "http://localhost:7071"


def tell(deps: Deps, msg: TellOutcome, delivery: str = "") -> str:
    found = _deployment(deps, msg)
    if found is None:
        return "no such deployment"
    release, dep = found
    outcome = "rejected" if msg.event == EventType.DEPLOYMENT_REJECTED else "failed"
    subject = f"{release.name}: {msg.stage} {outcome}"
    text = f"{subject}.\n\n{dep.failure or ''}\n\n{base_url(deps)}/releases/{release.id}"
    body = f"<p>{html.escape(subject)}.</p><p>{html.escape(dep.failure or '')}</p>"
    deps.mailer.send([msg.to], subject, text, body)
    return f"told {msg.to}"


def ask(deps: Deps, msg: AskApproval, delivery: str = "") -> str:
    found = _deployment(deps, msg)
    approval = found[1].approvals.get(msg.approval) if found else None
    if found is None or approval is None or approval.status != ApprovalStatus.PENDING \
            or msg.to not in approval.approvers:
        return "no longer pending"
    release = found[0]
    token = secrets.token_urlsafe(32)
    expires = min(deps.clock.now() + timedelta(hours=deps.settings.link_hours),
                  datetime.fromisoformat(approval.deadline))
    deps.store.create_link(key_hash(token), {
        "definitionId": msg.definition_id, "releaseId": release.id, "stage": msg.stage,
        "attempt": msg.attempt, "kind": msg.approval, "approver": msg.to, "expires": expires.isoformat()})
    link = f"{base_url(deps)}/api/approve/{token}"
    pipeline = str(release.definition.get("name", ""))
    subject = f"Approval needed: {pipeline} {release.name} to {msg.stage}"
    artifacts = ", ".join(f"{a['alias']} {a['version']}" for a in release.artifacts)
    changes = previews.lines_for(release, msg.stage, previews.ensure(deps, release, msg.stage, msg.attempt)) \
        if msg.approval == Kind.PRE else []
    what_if = ("\n\nWhat the infrastructure steps will change (what-if):\n" + "\n".join(changes)) if changes else ""
    text = (f"{release.name} of {pipeline} ({artifacts}) waits for your {msg.approval}-deployment approval of "
            f"stage {msg.stage}.{what_if}\n\nReview and decide: {link}\n\nThe link is yours alone, works once and "
            f"expires {expires.isoformat()}.")
    body = (f"<p><b>{html.escape(release.name)}</b> of {html.escape(pipeline)} ({html.escape(artifacts)}) waits "
            f"for your {html.escape(msg.approval)}-deployment approval of stage "
            f"<b>{html.escape(msg.stage)}</b>.</p>"
            + (f"<p>What the infrastructure steps will change (what-if):</p><pre>{html.escape(chr(10).join(changes))}"
               f"</pre>" if changes else "")
            + f'<p><a href="{html.escape(link)}">Review and decide</a></p>'
            f"<p>The link is yours alone, works once and expires {html.escape(expires.isoformat())}.</p>")
    deps.mailer.send([msg.to], subject, text, body)
    logger.info("asked %s to approve release %s stage %s", msg.to, release.id, msg.stage)
    return f"asked {msg.to}"


def ask_intervention(deps: Deps, msg: AskIntervention, delivery: str = "") -> str:
    """Mail an assignee a personal, single-use link to a manual intervention that still waits (the same
    link rules as approvals: the page only shows; the signed-in assignee decides with a POST)."""
    found = _deployment(deps, msg)
    step = found[1].step(msg.step) if found else None
    intervention = (step.state.get("intervention") or {}) if step else {}
    if found is None or step is None or intervention.get("status") != "pending" \
            or msg.to not in intervention.get("assignees", []):
        return "no longer pending"
    release = found[0]
    token = secrets.token_urlsafe(32)
    expires = min(deps.clock.now() + timedelta(hours=deps.settings.link_hours),
                  datetime.fromisoformat(intervention["deadline"]))
    deps.store.create_link(key_hash(token), {
        "definitionId": msg.definition_id, "releaseId": release.id, "stage": msg.stage, "attempt": msg.attempt,
        "kind": "intervention", "step": msg.step, "approver": msg.to, "expires": expires.isoformat()})
    link = f"{base_url(deps)}/api/intervene/{token}"
    pipeline = str(release.definition.get("name", ""))
    subject = f"Manual intervention needed: {pipeline} {release.name} in {msg.stage}"
    instructions = str(intervention.get("instructions") or "")
    text = (f"{release.name} of {pipeline} waits in stage {msg.stage} at step '{step.name}' for you to resume or "
            f"reject it.\n\n{instructions}\n\nDecide: {link}\n\nThe link is yours alone, works once and expires "
            f"{expires.isoformat()}; unless someone decides, the step will {intervention.get('onTimeout', 'reject')} "
            f"at {intervention['deadline']}.")
    body = (f"<p><b>{html.escape(release.name)}</b> of {html.escape(pipeline)} waits in stage "
            f"<b>{html.escape(msg.stage)}</b> at step <b>{html.escape(step.name)}</b> for you to resume or reject it."
            f"</p><pre>{html.escape(instructions)}</pre>"
            f'<p><a href="{html.escape(link)}">Resume or reject</a></p>'
            f"<p>The link is yours alone, works once and expires {html.escape(expires.isoformat())}.</p>")
    deps.mailer.send([msg.to], subject, text, body)
    logger.info("asked %s to intervene in release %s stage %s", msg.to, release.id, msg.stage)
    return f"asked {msg.to}"

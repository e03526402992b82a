"""Mails: to each approver when an approval becomes pending (with a personal, single-use link),
and to the requester when a deployment is rejected or fails.

Sent from the outbox after the change committed, so a crash never loses a mail; a mail sent twice
carries two links, each valid alone. Approvers are mailed when they are addresses (a user's
sign-in name, or a group's distribution address).
"""

from __future__ import annotations

import html
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from shared.domain.keys import key_hash
from shared.domain.release import Release
from shared.services.deps import Deps

logger = logging.getLogger(__name__)
NOTIFY_ON = ("approvalRequested", "deploymentRejected", "deploymentFailed")


def base_url(deps: Deps) -> str:
    settings = deps.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"https://{settings.website_hostname}" if settings.website_hostname else "http://localhost:7071"


def dispatch(deps: Deps, note: dict[str, Any]) -> None:
    loaded = deps.store.release(int(note["definitionId"]), int(note["releaseId"]))
    if loaded is None:
        return
    release = loaded[0]
    run = release.stages.get(note["stage"])
    dep = run.deployments[note["attempt"] - 1] if run and 0 < note["attempt"] <= len(run.deployments) else None
    if dep is None:
        return
    if note["event"] == "approvalRequested":
        approval = dep.approvals.get(note["kind"])
        if approval is None:
            return
        for approver in approval.approvers:
            if "@" in approver:
                _ask(deps, release, note, approver, approval.deadline)
    else:
        to = [p for p in {release.created_by, dep.requested_by} if "@" in p]
        if to:
            outcome = "rejected" if note["event"] == "deploymentRejected" else "failed"
            subject = f"{release.name}: {note['stage']} {outcome}"
            text = f"{subject}.\n\n{dep.failure or ''}\n\n{base_url(deps)}/releases/{release.id}"
            body = f"<p>{html.escape(subject)}.</p><p>{html.escape(dep.failure or '')}</p>"
            deps.mailer.send(to, subject, text, body)


def _ask(deps: Deps, release: Release, note: dict[str, Any], approver: str, deadline: str) -> None:
    token = secrets.token_urlsafe(32)
    expires = min(deps.clock.now() + timedelta(hours=deps.settings.link_hours), datetime.fromisoformat(deadline))
    deps.store.create_link(key_hash(token), {
        "definitionId": int(release.definition_id), "releaseId": release.id, "stage": note["stage"],
        "attempt": note["attempt"], "kind": note["kind"], "approver": approver, "expires": expires.isoformat()})
    link = f"{base_url(deps)}/api/approve/{token}"
    pipeline = str(release.definition.get("name", ""))
    subject = f"Approval needed: {pipeline} {release.name} to {note['stage']}"
    artifacts = ", ".join(f"{a['alias']} {a['version']}" for a in release.artifacts)
    text = (f"{release.name} of {pipeline} ({artifacts}) waits for your {note['kind']}-deployment approval of stage "
            f"{note['stage']}.\n\nReview and decide: {link}\n\nThe link is yours alone, works once and expires "
            f"{expires.isoformat()}.")
    body = (f"<p><b>{html.escape(release.name)}</b> of {html.escape(pipeline)} ({html.escape(artifacts)}) waits "
            f"for your "
            f"{html.escape(note['kind'])}-deployment approval of stage <b>{html.escape(note['stage'])}</b>.</p>"
            f'<p><a href="{html.escape(link)}">Review and decide</a></p>'
            f"<p>The link is yours alone, works once and expires {html.escape(expires.isoformat())}.</p>")
    deps.mailer.send([approver], subject, text, body)
    logger.info("asked %s to approve release %s stage %s", approver, release.id, note["stage"])

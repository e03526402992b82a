"""Mails: to each approver when an approval becomes pending or an entry is reassigned to them (with a
personal, single-use link), to each assignee of a manual intervention, and to the requester when a
deployment is rejected or fails.

A change that commits puts one message per approver or assignee entry in its outbox (`recipients`);
the mail queue's reaction sends it (`ask`, `ask_intervention`, `tell`). An entry is a person (their
sign-in name is their mail address) or a group, mailed as its members in `SLIPWAY_MAIL_GROUPS`. A crash
never loses a mail, and mails each address once per mail: a mark in the definition's partition, keyed
by the mail's own key (its outbox item's id), is written after each address, so a message delivered
again after a crash, or sent again by the sweeper, mails only who was not mailed yet; a bad address
fails alone: after
the queue's last delivery it rests in `slipway-mail-poison`. An approval decided before its mail goes
out is not mailed.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.domain.keys import key_hash
from shared.domain.release import Deployment, Release
from shared.domain.vocabulary import ApprovalStatus, EventType, Kind
from shared.messages import AskApproval, AskIntervention, TellOutcome
from shared.records import Changes, ConcurrentChange
from shared.services import previews, recipients
from shared.services.deps import Deps

logger = logging.getLogger(__name__)

SIGN_IN_NOTE = "An approver's sign-in name is their mail address"
"""Said in every approval mail (and the README): whom a link is for is whom the decider must be signed in as."""

_MailMessage = AskApproval | AskIntervention | TellOutcome


def _deployment(deps: Deps, msg: _MailMessage) -> tuple[Release, Deployment] | None:
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


def subject(what: str, release: Release, stage: str) -> str:
    """`What: Pipeline / Release-2 → Stage`, on one line: three pipelines with a Release-2 each give three
    subjects. The mailers encode the header (RFC 2047), so names keep their letters."""
    pipeline = str(release.definition.get("name", "")) or f"definition {release.definition_id}"
    return re.sub(r"\s+", " ", f"{what}: {pipeline} / {release.name} \u2192 {stage}").strip()


def _mailed(deps: Deps, msg: _MailMessage, delivery: str, to: str) -> bool:
    """Did this mail reach `to` already (a delivery before a crash, or the same outbox item sent again by
    the sweeper)? Marked under the mail's own key; a message of an earlier version has none, and is
    marked under the queue's id of its delivery."""
    mark = msg.key or delivery
    return bool(mark) and deps.store.idempotent_result(msg.definition_id, _mark(mark, to)) is not None


def _send(deps: Deps, msg: _MailMessage, delivery: str, to: str, title: str, text: str, body: str) -> None:
    """Mail one address, then mark it mailed for this message: a crash in between mails it again (at
    least once), a delivery after the mark does not."""
    deps.mailer.send([to], title, text, body)
    if mark := msg.key or delivery:
        try:
            deps.store.commit(Changes(msg.definition_id, idempotency=(_mark(mark, to), "sent")))
        except ConcurrentChange:
            pass  # another delivery of the same message mailed and marked it meanwhile


def _mark(delivery: str, to: str) -> str:
    return f"mail|{delivery}|{to.casefold()}"


def _link(deps: Deps, msg: AskApproval | AskIntervention, release: Release, record: Mapping[str, object],
          deadline: str, route: str) -> tuple[str, datetime]:
    """A personal, single-use link: random, stored hashed, expiring with the decision it is for."""
    token = secrets.token_urlsafe(32)
    expires = min(deps.clock.now() + timedelta(hours=deps.settings.link_hours), datetime.fromisoformat(deadline))
    deps.store.create_link(key_hash(token), {
        "definitionId": msg.definition_id, "releaseId": release.id, "stage": msg.stage, "attempt": msg.attempt,
        **record, "expires": expires.isoformat()})
    return f"{base_url(deps)}/api/{route}/{token}", expires


def _as_whom(to: str, entry: str) -> tuple[str, str]:
    """The footer (text, HTML) that says whom the link is for and how they sign in."""
    member = f" You are asked as a member of {entry}." if entry.casefold() != to.casefold() else ""
    text = f"Sign in as {to} to decide: {SIGN_IN_NOTE}.{member}"
    return text, f"<p>{html.escape(text)}</p>"


def tell(deps: Deps, msg: TellOutcome, delivery: str = "") -> str:
    found = _deployment(deps, msg)
    if found is None:
        return "no such deployment"
    if _mailed(deps, msg, delivery, msg.to):
        return f"already told {msg.to}"
    release, dep = found
    outcome = "rejected" if msg.event == EventType.DEPLOYMENT_REJECTED else "failed"
    title = subject(f"Deployment {outcome}", release, msg.stage)
    pipeline = str(release.definition.get("name", ""))
    line = f"{release.name} of {pipeline}: stage {msg.stage} {outcome}"
    text = f"{line}.\n\n{dep.failure or ''}\n\n{base_url(deps)}/releases/{release.id}"
    body = f"<p>{html.escape(line)}.</p><p>{html.escape(dep.failure or '')}</p>"
    _send(deps, msg, delivery, msg.to, title, text, body)
    return f"told {msg.to}"


def ask(deps: Deps, msg: AskApproval, delivery: str = "") -> str:
    """Mail the approver entry `msg.to` (each member of a group) a personal link to the approval."""
    found = _deployment(deps, msg)
    approval = found[1].approvals.get(msg.approval) if found else None
    if found is None or approval is None or approval.status != ApprovalStatus.PENDING \
            or msg.to not in approval.approvers:
        return "no longer pending"
    release = found[0]
    pending = [a for a in recipients.addresses(deps.settings, msg.to) if not _mailed(deps, msg, delivery, a)]
    if not pending:
        return f"nobody left to mail for {msg.to}"
    pipeline = str(release.definition.get("name", ""))
    title = subject("Approval needed", release, msg.stage) + ("" if msg.approval == Kind.PRE else " (after deployment)")
    artifacts = ", ".join(f"{a['alias']} {a['version']}" for a in release.artifacts)
    changes = previews.lines_for(release, msg.stage, previews.ensure(deps, release, msg.stage, msg.attempt)) \
        if msg.approval == Kind.PRE else []
    what_if = ("\n\nWhat the infrastructure steps will change (what-if):\n" + "\n".join(changes)) if changes else ""
    for to in pending:
        record = {"kind": msg.approval, "approver": to, **({"group": msg.to} if to != msg.to else {})}
        link, expires = _link(deps, msg, release, record, approval.deadline, "approve")
        footer, footer_html = _as_whom(to, msg.to)
        text = (f"{release.name} of {pipeline} ({artifacts}) waits for your {msg.approval}-deployment approval of "
                f"stage {msg.stage}.{what_if}\n\nReview and decide: {link}\n\nThe link is yours alone, works once "
                f"and expires {expires.isoformat()}.\n\n{footer}")
        body = (f"<p><b>{html.escape(release.name)}</b> of {html.escape(pipeline)} ({html.escape(artifacts)}) waits "
                f"for your {html.escape(msg.approval)}-deployment approval of stage "
                f"<b>{html.escape(msg.stage)}</b>.</p>"
                + (f"<p>What the infrastructure steps will change (what-if):</p>"
                   f"<pre>{html.escape(chr(10).join(changes))}</pre>" if changes else "")
                + f'<p><a href="{html.escape(link)}">Review and decide</a></p>'
                f"<p>The link is yours alone, works once and expires {html.escape(expires.isoformat())}.</p>"
                f"<hr>{footer_html}")
        _send(deps, msg, delivery, to, title, text, body)
        logger.info("asked %s to approve release %s stage %s", to, release.id, msg.stage)
    return f"asked {', '.join(pending)}"


def ask_intervention(deps: Deps, msg: AskIntervention, delivery: str = "") -> str:
    """Mail an assignee entry (each member of a group) a personal, single-use link to a manual intervention
    that still waits (the same link rules as approvals: the page only shows; the signed-in assignee
    decides with a POST)."""
    found = _deployment(deps, msg)
    step = found[1].step(msg.step) if found else None
    intervention = (step.state.get("intervention") or {}) if step else {}
    if found is None or step is None or intervention.get("status") != "pending" \
            or msg.to not in intervention.get("assignees", []):
        return "no longer pending"
    release = found[0]
    pending = [a for a in recipients.addresses(deps.settings, msg.to) if not _mailed(deps, msg, delivery, a)]
    if not pending:
        return f"nobody left to mail for {msg.to}"
    pipeline = str(release.definition.get("name", ""))
    title = subject("Manual intervention needed", release, msg.stage)
    instructions = str(intervention.get("instructions") or "")
    for to in pending:
        record = {"kind": "intervention", "step": msg.step, "approver": to,
                  **({"group": msg.to} if to != msg.to else {})}
        link, expires = _link(deps, msg, release, record, intervention["deadline"], "intervene")
        footer, footer_html = _as_whom(to, msg.to)
        text = (f"{release.name} of {pipeline} waits in stage {msg.stage} at step '{step.name}' for you to resume or "
                f"reject it.\n\n{instructions}\n\nDecide: {link}\n\nThe link is yours alone, works once and expires "
                f"{expires.isoformat()}; unless someone decides, the step will "
                f"{intervention.get('onTimeout', 'reject')} at {intervention['deadline']}.\n\n{footer}")
        body = (f"<p><b>{html.escape(release.name)}</b> of {html.escape(pipeline)} waits in stage "
                f"<b>{html.escape(msg.stage)}</b> at step <b>{html.escape(step.name)}</b> for you to resume or "
                f"reject it.</p><pre>{html.escape(instructions)}</pre>"
                f'<p><a href="{html.escape(link)}">Resume or reject</a></p>'
                f"<p>The link is yours alone, works once and expires {html.escape(expires.isoformat())}.</p>"
                f"<hr>{footer_html}")
        _send(deps, msg, delivery, to, title, text, body)
        logger.info("asked %s to intervene in release %s stage %s", to, release.id, msg.stage)
    return f"asked {', '.join(pending)}"

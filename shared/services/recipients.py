"""Who is mailed about an event of a release: the approvers of an approval that became pending (and the
new approver of a reassigned entry), the assignees of a manual intervention, and whoever asked for a
deployment that was rejected or failed. A change that commits puts one message per approver or assignee
entry in its outbox (`shared/services/apply.py`); the mail queue's reactions (`mail.py`) turn an entry
into addresses (`addresses`: itself, or a group's members from `SLIPWAY_MAIL_GROUPS`) and send."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from shared.config import Settings
from shared.domain.release import Release
from shared.domain.transitions.results import Event
from shared.domain.vocabulary import EventType, Kind, Phase
from shared.messages import AskApproval, AskIntervention, TellOutcome

logger = logging.getLogger(__name__)


def recipients(release: Release, event: Event) -> list[AskApproval | AskIntervention | TellOutcome]:
    """One message per approver or assignee entry (a person or a group) to mail about `event` of the
    release as it is after the change; people who requested a deployment only by their address."""
    run = release.stages.get(event.stage or "")
    attempt = event.attempt or 1
    if run is None or not 0 < attempt <= len(run.deployments):
        return []
    dep = run.deployments[attempt - 1]
    did, stage = int(release.definition_id), event.stage or ""
    if event.type == EventType.APPROVAL_REQUESTED:
        kind = Kind.PRE if dep.phase == Phase.PRE_APPROVAL else Kind.POST
        approval = dep.approvals.get(kind)
        return [AskApproval(did, release.id, stage, attempt, kind, a) for a in (approval.approvers if approval else [])]
    if event.type == EventType.APPROVAL_REASSIGNED:
        # the entry's new approver, as the reassignment recorded it in the same change (same time, same person)
        return [AskApproval(did, release.id, stage, attempt, approval.kind, str(h["to"]))
                for approval in dep.approvals.values() for h in approval.history
                if h.get("action") == "reassign" and h.get("at") == event.at and h.get("by") == event.by]
    if event.type == EventType.INTERVENTION_PENDING and event.step is not None:
        step = dep.step(event.step)
        assignees = (step.state.get("intervention") or {}).get("assignees", []) if step else []
        return [AskIntervention(did, release.id, stage, attempt, event.step, a) for a in assignees]
    if event.type in (EventType.DEPLOYMENT_REJECTED, EventType.DEPLOYMENT_FAILED):
        to = sorted(p for p in {release.created_by, dep.requested_by} if "@" in p)
        return [TellOutcome(did, release.id, stage, attempt, event.type, p) for p in to]
    return []


def addresses(settings: Settings, entry: str) -> list[str]:
    """Where mail for an approver or assignee entry goes: a group's members when `SLIPWAY_MAIL_GROUPS`
    names it, else the entry itself when it is an address (a user's sign-in name is their mail address,
    or a group's distribution address); otherwise nowhere, and the log says so."""
    members = mail_groups(settings.mail_groups).get(entry.casefold())
    if members is not None:
        return list(members)
    if "@" in entry:
        return [entry]
    logger.warning("%r is neither a mail address nor a group in SLIPWAY_MAIL_GROUPS: nobody is mailed for it", entry)
    return []


@lru_cache(maxsize=4)
def mail_groups(value: str) -> dict[str, tuple[str, ...]]:
    """`SLIPWAY_MAIL_GROUPS` read (group, case-insensitive → its members' addresses); a value that is not
    a JSON object of lists of addresses is logged and mails no group, never fails a release."""
    if not value.strip():
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) and "@" in a for a in v)
            for k, v in data.items()):
        logger.error('SLIPWAY_MAIL_GROUPS is not a JSON object of groups to lists of addresses '
                     '({"group": ["a@contoso.com"]}): no group is mailed')
        return {}
    return {k.casefold(): tuple(dict.fromkeys(a.strip() for a in v if a.strip())) for k, v in data.items()}

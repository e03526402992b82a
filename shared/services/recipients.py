"""Who is mailed about an event of a release: the approvers of an approval that became pending, the
assignees of a manual intervention, and whoever asked for a deployment that was rejected or failed.
A change that commits puts one message per recipient in its outbox (`shared/services/apply.py`); the
mail queue's reactions (`mail.py`) write and send the mails."""

from __future__ import annotations

from shared.domain.release import Release
from shared.domain.transitions.results import Event
from shared.domain.vocabulary import EventType, Kind, Phase
from shared.messages import AskApproval, AskIntervention, TellOutcome


def recipients(release: Release, event: Event) -> list[AskApproval | AskIntervention | TellOutcome]:
    """One message per person to mail about `event` of the release as it is after the change."""
    run = release.stages.get(event.stage or "")
    attempt = event.attempt or 1
    if run is None or not 0 < attempt <= len(run.deployments):
        return []
    dep = run.deployments[attempt - 1]
    did, stage = int(release.definition_id), event.stage or ""
    if event.type == EventType.APPROVAL_REQUESTED:
        kind = Kind.PRE if dep.phase == Phase.PRE_APPROVAL else Kind.POST
        approval = dep.approvals.get(kind)
        return [AskApproval(did, release.id, stage, attempt, kind, a)
                for a in (approval.approvers if approval else []) if "@" in a]
    if event.type == EventType.INTERVENTION_PENDING and event.step is not None:
        step = dep.step(event.step)
        assignees = (step.state.get("intervention") or {}).get("assignees", []) if step else []
        return [AskIntervention(did, release.id, stage, attempt, event.step, a) for a in assignees if "@" in a]
    if event.type in (EventType.DEPLOYMENT_REJECTED, EventType.DEPLOYMENT_FAILED):
        to = sorted(p for p in {release.created_by, dep.requested_by} if "@" in p)
        return [TellOutcome(did, release.id, stage, attempt, event.type, p) for p in to]
    return []

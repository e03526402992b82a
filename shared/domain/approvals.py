"""Pre- and post-deployment approvals: who may decide, and when an approval is complete.

Approvers are names of users or groups (one member of a group is enough). Policies:
anyOne; allInAnyOrder; allInSequence (each in the listed order); count (`required` distinct
people). Every identity counts once, whatever groups it belongs to. Any eligible rejection
rejects. The requester of the release or deployment cannot approve when the setting says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.access import Forbidden, Principal
from shared.domain.errors import Conflict
from shared.domain.vocabulary import ApprovalStatus, Choice, Kind

HISTORY_KEPT = 10
"""Reassignments and deferrals an approval keeps; every one is also an event of the release."""
DEFAULT_TIMEOUT_MINUTES = 30 * 24 * 60


@dataclass
class Vote:
    by: str
    decision: Choice
    comment: str
    at: str
    entry: str
    """The approver entry (user or group) this vote stands for."""
    override: bool = False
    self_override: bool = False
    """An admin overrode the approval of a deployment they requested themselves (audited)."""


@dataclass
class Approval:
    kind: Kind
    status: ApprovalStatus
    approvers: list[str]
    policy: str
    required: int
    requester_cannot_approve: bool
    requested_at: str
    deadline: str
    votes: list[Vote] = field(default_factory=list)
    deferred_until: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    """The last reassignments and deferrals (HISTORY_KEPT); the release's events keep them all."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        return cls(**{**data, "kind": Kind(data["kind"]), "status": ApprovalStatus(data["status"]),
                      "votes": [Vote(**{**v, "decision": Choice(v["decision"])}) for v in data.get("votes", [])]})

    def satisfied(self) -> set[str]:
        return {v.entry for v in self.votes if v.decision == Choice.APPROVE}

    def waiting_for(self) -> list[str]:
        """The entries still open, in order (an entry listed twice stays open until two people approved it)."""
        used: dict[str, int] = {}
        for v in self.votes:
            if v.decision == Choice.APPROVE:
                used[v.entry] = used.get(v.entry, 0) + 1
        left = []
        for a in self.approvers:
            if used.get(a, 0) > 0:
                used[a] -= 1
            else:
                left.append(a)
        return left[:1] if self.policy == "allInSequence" else left


def check_voter(approval: Approval, who: Principal, requesters: set[str]) -> str:
    """The approver entry `who` may decide for now; raises Forbidden or Conflict otherwise."""
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"the {approval.kind}-deployment approval is {approval.status}, not pending")
    if any(v.by.casefold() == who.name.casefold() for v in approval.votes):
        raise Conflict(f"{who.name} has already decided on this approval")
    if not any(who.is_(a) for a in approval.approvers):
        hint = ("" if who.groups_complete else "; your sign-in carries no groups (Entra leaves them out past 200 "
                "groups): ask for approvers named by user, or fewer group memberships")
        raise Forbidden(f"{who.name} is not an approver of this stage (approvers: {', '.join(approval.approvers)})"
                        + hint)
    if approval.requester_cannot_approve and who.name.casefold() in {r.casefold() for r in requesters}:
        raise Forbidden(f"{who.name} requested this deployment and cannot approve it")
    open_entries = approval.waiting_for()
    mine = [a for a in open_entries if who.is_(a)]
    if not mine:
        raise Forbidden(f"waiting for {', '.join(open_entries)}; {who.name} has nothing left to approve here")
    return mine[0]


def outcome(approval: Approval) -> ApprovalStatus | None:
    """approved, rejected, or None while more votes are needed."""
    if any(v.decision == Choice.REJECT for v in approval.votes):
        return ApprovalStatus.REJECTED
    approvals = [v for v in approval.votes if v.decision == Choice.APPROVE]
    if any(v.override for v in approvals):
        return ApprovalStatus.APPROVED
    if approval.policy == "anyOne":
        return ApprovalStatus.APPROVED if approvals else None
    if approval.policy == "count":
        return ApprovalStatus.APPROVED if len({v.by.casefold() for v in approvals}) >= approval.required else None
    # Every entry needs its own approver: an entry listed twice needs two different people.
    votes_per_entry: dict[str, set[str]] = {}
    for v in approvals:
        votes_per_entry.setdefault(v.entry.casefold(), set()).add(v.by.casefold())
    needed: dict[str, int] = {}
    for entry in approval.approvers:
        needed[entry.casefold()] = needed.get(entry.casefold(), 0) + 1
    return ApprovalStatus.APPROVED if all(len(votes_per_entry.get(e, ())) >= n for e, n in needed.items()) else None


def check_reassign(approval: Approval, to: str) -> None:
    """A reassignment may not give one person two entries, nor an entry to someone who already decided:
    either would let one identity count twice (or leave an entry nobody can fill)."""
    if any(a.casefold() == to.casefold() for a in approval.approvers):
        raise Conflict(f"{to} is already an approver here: one person counts once, so the entry cannot be "
                       f"reassigned to them")
    if any(v.by.casefold() == to.casefold() for v in approval.votes):
        raise Conflict(f"{to} has already decided on this approval")

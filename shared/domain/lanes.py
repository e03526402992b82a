"""A lane: the per-(definition, stage) queue that enforces how many deployments run at once.

With a limit, a deployment occupies its lane from its pre-deployment approval to its end, so the
next release's approval is requested only when the previous one has finished (Azure DevOps'
R1…R5 behaviour). Policy `sequence` deploys the queued releases one after another; `latest`
keeps only the newest queued release and skips the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lane:
    active: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lane:
        return cls(list(data.get("active", [])), list(data.get("queued", [])))

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "queued": self.queued}

    def admit(self, release_id: int, limit: int, latest: bool) -> tuple[bool, list[int]]:
        """Let a release's deployment in, or queue it. Returns whether it must wait, and the queued
        releases it pushed out (policy `latest`: only the newest waits)."""
        if release_id in self.active:
            return False, []
        if len(self.active) < limit and not self.queued:
            self.active.append(release_id)
            return False, []
        skipped = list(self.queued) if latest else []
        if latest:
            self.queued.clear()
        self.queued.append(release_id)
        return True, skipped

    def leave(self, release_id: int) -> int | None:
        """A release's deployment ended: the next queued release, if any, takes its place."""
        self.active.remove(release_id)
        if not self.queued:
            return None
        nxt = self.queued.pop(0)
        self.active.append(nxt)
        return nxt

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


def limit_of(queue: dict[str, Any] | None) -> int:
    """0 means unlimited."""
    return int((queue or {}).get("parallel") or 0)

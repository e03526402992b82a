"""Retention: when a release may be deleted, and why it is kept until then.

Azure DevOps classic Release's rules (prior-art §2.9, Microsoft Learn "Set release retention
policies"): per stage, days to retain a release counted from its last change or deployment, and a
minimum number of releases to keep, which wins over the days and counts only releases whose
deployment to that stage started; a multi-stage release keeps the largest of its stages' days; a
release kept forever is never deleted. Slipway adds one rule of its own: a release that runs in a
stage's slot now (what runs where) or is being deployed is never deleted.

Pure: `now` comes in, nothing is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DEFAULT_DAYS = 30
"""Azure DevOps' default `daysToKeep` (definitions in the wild carry 30 days, 3 releases)."""
DEFAULT_MINIMUM = 3
"""Azure DevOps' default `releasesToKeep`."""


@dataclass(frozen=True)
class Policy:
    days: int = DEFAULT_DAYS
    minimum_releases: int = DEFAULT_MINIMUM


@dataclass(frozen=True)
class DefinitionPolicy:
    """The definition's policy, and each stage's own (a stage without one takes the definition's)."""

    default: Policy = Policy()
    stages: Mapping[str, Policy] = field(default_factory=dict)

    def of(self, stage: str) -> Policy:
        return self.stages.get(stage, self.default)

    @property
    def longest_days(self) -> int:
        """A multi-stage release keeps the largest of its stages' days."""
        return max([self.default.days, *(p.days for p in self.stages.values())])

    @classmethod
    def of_definition(cls, definition: Mapping[str, Any]) -> DefinitionPolicy:
        """From a definition body (`retention` on it and on its stages; absent: Azure DevOps' defaults)."""
        default = _policy(definition.get("retention"), Policy())
        stages = {str(s["name"]): _policy(s.get("retention"), default) for s in definition.get("stages", [])}
        return cls(default, stages)


@dataclass(frozen=True)
class ReleaseFacts:
    """What retention needs to know of one release."""

    id: int
    created_at: str
    last_activity: str
    """The release's last change or deployment (queued, started or finished): the days count from here."""
    deployed_to: frozenset[str] = frozenset()
    """Stages a deployment of it started on (success or failure): what the minimum counts."""
    deploying_to: frozenset[str] = frozenset()
    """Stages where a deployment of it is queued or in progress now."""
    running_in: frozenset[str] = frozenset()
    """Stages whose slot runs it now (what runs where)."""
    kept_forever_by: str | None = None


@dataclass(frozen=True)
class Verdict:
    delete: bool
    remove_after: str | None
    """When it goes, if nothing keeps it (None while something keeps it)."""
    kept_because: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"removeAfter": self.remove_after, "keptBecause": list(self.kept_because)}


@dataclass(frozen=True)
class Newest:
    """Per stage, the ids of the newest releases deployed there that its minimum keeps, and whether the
    list is complete (`partial` stages: the window read ended before the minimum was reached, so every
    release deployed there is kept rather than guessed at)."""

    kept: Mapping[str, frozenset[int]]
    partial: frozenset[str] = frozenset()


def newest_per_stage(policy: DefinitionPolicy, window: Iterable[ReleaseFacts], *, complete: bool) -> Newest:
    """The minimum releases each stage keeps, from `window`: the definition's newest releases, all of
    them when `complete`, else the newest few (a bounded read)."""
    deployed: dict[str, list[int]] = {}
    for facts in sorted(window, key=lambda f: f.id, reverse=True):
        for stage in facts.deployed_to:
            deployed.setdefault(stage, []).append(facts.id)
    kept = {stage: frozenset(ids[:policy.of(stage).minimum_releases]) for stage, ids in deployed.items()}
    partial = frozenset() if complete else frozenset(
        stage for stage in policy.stages if len(deployed.get(stage, [])) < policy.of(stage).minimum_releases)
    return Newest(kept, partial)


def decide(policy: DefinitionPolicy, facts: ReleaseFacts, newest: Newest, now: datetime) -> Verdict:
    """Delete now, or when it will go, or why it is kept."""
    reasons: list[str] = []
    if facts.kept_forever_by:
        reasons.append(f"kept forever by {facts.kept_forever_by}")
    reasons += [f"runs in {stage} now" for stage in sorted(facts.running_in)]
    reasons += [f"deploying to {stage} now" for stage in sorted(facts.deploying_to)]
    for stage in sorted(facts.deployed_to):
        minimum = policy.of(stage).minimum_releases
        if facts.id in newest.kept.get(stage, frozenset()):
            reasons.append(f"one of the {minimum} newest of stage {stage}")
        elif stage in newest.partial:
            reasons.append(f"maybe one of the {minimum} newest of stage {stage}")
    if reasons:
        return Verdict(False, None, tuple(reasons))
    since = max(facts.created_at, facts.last_activity)
    remove_after = datetime.fromisoformat(since) + timedelta(days=policy.longest_days)
    return Verdict(now >= remove_after, remove_after.isoformat())


def _policy(raw: Any, fallback: Policy) -> Policy:
    if not isinstance(raw, Mapping):
        return fallback
    days, minimum = raw.get("days", fallback.days), raw.get("minimumReleases", fallback.minimum_releases)
    return Policy(int(days), int(minimum))

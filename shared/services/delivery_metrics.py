"""Delivery metrics of a definition over a period (see shared/domain/delivery_metrics.py), read from the
rollup's day buckets (shared/services/metrics_rollup.py): a read costs the same at 10 and 10,000 releases.

A read takes: the definition's head, its rollup state (stages, `tailFrom`), one query per calendar month
of the window (a month's day buckets share a partition), and one page (at most `metrics_batch`) of the
releases created since the last pass's `tailFrom`: those it did not see, and those it saw still deploying
(a release moves through its stages over hours or days). Before a definition's first pass ends, the tail
is the releases created in the period.
Time to restore looks past the period for the deployment that restored a failure of it, up to
`RESTORE_MONTHS` months on (never past the current month). `exact` is the old whole-history computation,
kept for comparison.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.delivery_metrics import Fact, delivery_metrics, metrics_from_facts, release_facts, stage_names
from shared.domain.release import Release
from shared.domain.vocabulary import GOOD
from shared.services.definitions import current_head
from shared.services.deps import Deps
from shared.services.metrics_rollup import bucket_kind, definition_state

MAX_RELEASES = 5000
"""Releases `exact` reads per definition: enough for a year of a busy pipeline."""
RESTORE_MONTHS = 3
"""How far past the period a failure's restoring deployment is looked for."""


def for_definition(deps: Deps, definition_id: int, *, since: datetime, until: datetime,
                   stage: str | None = None) -> dict[str, Any]:
    current_head(deps, definition_id)
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    if until <= since:
        raise ValueError("until must be after since")
    info, _ = definition_state(deps, definition_id)
    tail_from = datetime.fromisoformat(info["tailFrom"]) if info.get("tailFrom") else since
    tail, _cursor = deps.store.releases(definition_id, cursor=None, limit=deps.settings.metrics_batch,
                                        since=tail_from.astimezone(UTC).isoformat())
    facts: dict[str, Fact] = {}
    months = _months(since, until - timedelta(microseconds=1))
    for month in months:
        facts.update(_month(deps, definition_id, month))
    facts.update(_facts_of(tail))
    last = _month_of(deps.clock.now())
    month = months[-1]
    for _ in range(RESTORE_MONTHS):
        if not _unrestored(facts.values(), since, until) or month >= last:
            break
        month = _after(month)
        facts.update(_month(deps, definition_id, month))
    names = list(info.get("stages") or [])
    names += [name for name in stage_names(tail) if name not in names]
    return {"definitionId": definition_id,
            **metrics_from_facts(facts.values(), names, since=since, until=until, stage=stage)}


def exact(deps: Deps, definition_id: int, *, since: datetime, until: datetime,
          stage: str | None = None) -> dict[str, Any]:
    """The old computation over the definition's releases themselves (up to `MAX_RELEASES`): what the
    rollup must agree with; its cost grows with the history."""
    current_head(deps, definition_id)
    found: list[Release] = []
    cursor = None
    while len(found) < MAX_RELEASES:
        items, cursor = deps.store.releases(definition_id, cursor=cursor, limit=200)
        found.extend(items)
        if not cursor:
            break
    return {"definitionId": definition_id, **delivery_metrics(found, since=since, until=until, stage=stage)}


def _facts_of(releases: list[Release]) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    for release in releases:
        out.update(release_facts(release))
    return out


def _month(deps: Deps, definition_id: int, month: str) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    for body, _etag in deps.store.documents(bucket_kind(definition_id, month)):
        out.update(body.get("facts") or {})
    return out


def _unrestored(facts: Any, since: datetime, until: datetime) -> bool:
    """Whether a failure of the period has no good deployment of its stage after it among `facts`."""
    last_good: dict[str, datetime] = {}
    failures: list[tuple[str, datetime]] = []
    for fact in facts:
        if fact.get("k") != "d":
            continue
        at = datetime.fromisoformat(str(fact["at"]))
        if fact["status"] in GOOD:
            last_good[fact["stage"]] = max(at, last_good.get(fact["stage"], at))
        elif fact["cf"] and since <= at < until:
            failures.append((fact["stage"], at))
    return any(name not in last_good or last_good[name] <= at for name, at in failures)


def _months(since: datetime, until: datetime) -> list[str]:
    """The calendar months (UTC, YYYY-MM) from `since`'s to `until`'s."""
    month, last = _month_of(since), _month_of(until)
    out = [month]
    while month < last:
        month = _after(month)
        out.append(month)
    return out


def _month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def _after(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"

"""The metrics rollup: folds finished deployments into per-day buckets, so a metrics read costs the same
whatever the history (see shared/services/delivery_metrics.py for the read).

A bucket is a document per definition and UTC day (`metrics|<definition>|<YYYY-MM>`, key `YYYY-MM-DD`:
one partition per month, so a window reads a month's days in one query) holding each deployment's
facts by a key unique to the deployment (`shared/domain/delivery_metrics.py` `release_facts`). Folding
the same deployment again replaces its entry: a tick that crashes halfway, or two ticks at once, or a
pass over releases already folded, count each deployment once. Buckets are written under their ETag.
A fact is some 170 characters, so a day's bucket holds about 2,500 deployments of one definition (an
entity holds at most 1 MiB): far beyond what a release pipeline deploys in a day.

The store has no feed of finished deployments (any release can be redeployed, a rollback is one), so
the timer makes passes over each definition's releases, oldest first, `metrics_batch` releases a tick
from a cursor (as retention does). A pass folds only what finished since the previous pass began
(less `MARGIN`, for a change stamped before it committed); when it ends, the definition's `foldedUntil`
moves to that time: every deployment finished earlier is in the buckets; and its `tailFrom` to the
oldest release the pass saw still deploying (or its newest): the read folds the releases created since
itself, so what they do shows before the next pass. Buckets outlive the releases
retention deletes (a release expires days after its last deployment, long after a pass saw it), so the
metrics of history stay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.delivery_metrics import Fact, release_facts, stage_names
from shared.domain.release import Release
from shared.domain.vocabulary import FINISHED, ReleaseStatus
from shared.records import ConcurrentChange
from shared.services.deps import Deps

logger = logging.getLogger(__name__)

STATE = ("metrics", "cursor")
"""Where the timer is: the definition of the current pass and its releases cursor."""
DEFINITION = "metrics"
"""Documents of kind `metrics` keyed by definition id: its stages (in the order first seen) and `foldedUntil`."""
MARGIN = timedelta(minutes=10)
"""How long before a pass began a deployment may have finished and still be unseen by it (its stamp is
taken before its change commits, and retries may delay the commit)."""
OPEN_FOR = timedelta(days=7)
"""How long an unfinished release (a stage not deployed yet) keeps the read's recent tail open for it; an older
one's next deployment shows once the next pass reaches it."""
MAX_DEFINITIONS = 20
"""Definitions a tick may move through (small ones take a page each), whatever the batch."""
TRIES = 10


@dataclass
class Fold:
    """What one tick did, for the log line."""

    releases: int = 0
    facts: int = 0
    buckets: int = 0
    passes: int = 0


def bucket_kind(definition_id: int, day: str) -> str:
    """The document kind of a month's buckets (`day` is YYYY-MM-DD or YYYY-MM)."""
    return f"metrics|{definition_id}|{day[:7]}"


def day_of(fact: Fact) -> str:
    return datetime.fromisoformat(str(fact["at"])).astimezone(UTC).date().isoformat()


def definition_state(deps: Deps, definition_id: int) -> tuple[dict[str, Any], str | None]:
    found = deps.store.document(DEFINITION, str(definition_id))
    return (dict(found[0]), found[1]) if found else ({}, None)


def tick(deps: Deps) -> Fold:
    """Fold at most `metrics_batch` releases, from where the last tick stopped."""
    budget = deps.settings.metrics_batch
    done = Fold()
    found = deps.store.document(*STATE)
    state: dict[str, Any] = dict(found[0]) if found else {}
    visited: set[int] = set()
    for _ in range(MAX_DEFINITIONS):
        if state.get("definitionId") is None or state.get("done"):
            following = _next_definition(deps, state)
            if following.get("definitionId") is None or int(following["definitionId"]) in visited:
                break  # none, or round the circle already: the next tick starts that pass
            state = following
        visited.add(int(state["definitionId"]))
        read = _fold_page(deps, state, budget, done)
        budget -= read
        if budget <= 0:
            break
    try:
        deps.store.put_document(*STATE, state, found[1] if found else None)
    except ConcurrentChange:
        logger.info("metrics rollup: another tick moved the cursor meanwhile")  # it folded the same: fine
    if done.facts:
        logger.info("metrics rollup: %(releases)s releases, %(facts)s facts into %(buckets)s buckets",
                    {"releases": done.releases, "facts": done.facts, "buckets": done.buckets})
    return done


def _fold_page(deps: Deps, state: dict[str, Any], budget: int, done: Fold) -> int:
    """One page of the definition's releases: their new facts into the buckets, then the cursor on."""
    definition_id = int(state["definitionId"])
    page, cursor = deps.store.releases(definition_id, cursor=state.get("releases"), limit=budget)
    info, etag = definition_state(deps, definition_id)
    floor = info.get("foldedUntil")
    fold(deps, definition_id, page, since=datetime.fromisoformat(floor) if floor else None, done=done)
    stages = list(info.get("stages") or [])
    fresh = [name for name in stage_names(page) if name not in stages]
    _note_tail(state, page)
    ended = cursor is None
    if fresh or ended:
        info["stages"] = stages + fresh
        if ended:
            info["foldedUntil"] = (datetime.fromisoformat(state["passStart"]) - MARGIN).isoformat()
            info["tailFrom"] = _tail_from(state) or info["foldedUntil"]
        try:
            deps.store.put_document(DEFINITION, str(definition_id), info, etag)
        except ConcurrentChange:  # another tick wrote it: this pass ends again later, nothing is lost
            return max(1, len(page))
    if ended:
        state.update(done=True, releases=None)
        done.passes += 1
    else:
        state["releases"] = cursor
    done.releases += len(page)
    return max(1, len(page))


def _note_tail(state: dict[str, Any], page: list[Release]) -> None:
    """Keep, for the pass, its newest release's creation and its oldest unfinished release's."""
    for release in page:
        created = _utc(release.created_at)
        state["newest"] = max(created, state.get("newest") or created)
        unfinished = release.status == ReleaseStatus.ACTIVE and any(
            run.status not in FINISHED for run in release.stages.values())
        if unfinished:
            state["open"] = min(created, state.get("open") or created)


def _tail_from(state: dict[str, Any]) -> str | None:
    """Where the read's tail starts once this pass ended: at its oldest release that may still deploy (not
    before `OPEN_FOR` from its newest one), else at its newest; releases created later it has not seen."""
    if not state.get("newest"):
        return None
    newest = datetime.fromisoformat(state["newest"])
    start = datetime.fromisoformat(state.get("open") or state["newest"])
    return (max(start, newest - OPEN_FOR) - MARGIN).isoformat()


def _utc(stamp: str) -> str:
    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def fold(deps: Deps, definition_id: int, releases: list[Release], *, since: datetime | None,
         done: Fold | None = None) -> None:
    """Put the facts of these releases that are at or after `since` (all when None) into their day buckets."""
    by_day: dict[str, dict[str, Fact]] = {}
    for release in releases:
        for key, fact in release_facts(release).items():
            if since is None or datetime.fromisoformat(str(fact["at"])) >= since:
                by_day.setdefault(day_of(fact), {})[key] = fact
    for day, facts in sorted(by_day.items()):
        if _merge(deps, definition_id, day, facts) and done is not None:
            done.buckets += 1
        if done is not None:
            done.facts += len(facts)


def _merge(deps: Deps, definition_id: int, day: str, facts: dict[str, Fact]) -> bool:
    """Add the facts to the day's bucket under its ETag; False when it had them all already (no write)."""
    kind = bucket_kind(definition_id, day)
    for _ in range(TRIES):
        found = deps.store.document(kind, day)
        body: dict[str, Any] = dict(found[0]) if found else {"day": day, "facts": {}}
        held = dict(body.get("facts") or {})
        if all(held.get(key) == fact for key, fact in facts.items()):
            return False
        body["facts"] = {**held, **facts}
        try:
            deps.store.put_document(kind, day, body, found[1] if found else None)
            return True
        except ConcurrentChange:
            continue  # another tick wrote the bucket: merge into what it wrote
    raise ConcurrentChange(f"metrics bucket {day} of definition {definition_id} kept changing")


def _next_definition(deps: Deps, state: dict[str, Any]) -> dict[str, Any]:
    """The next definition after the one the state names (round robin), its pass starting now."""
    rows, cursor = deps.store.definitions_page(cursor=state.get("definitions"), limit=1)
    if not rows and state.get("definitions"):
        rows, cursor = deps.store.definitions_page(cursor=None, limit=1)
    if not rows:
        return {}
    return {"definitionId": int(rows[0]["id"]), "definitions": cursor, "releases": None,
            "passStart": deps.clock.now().isoformat()}

"""Retention: why a release is kept or when it goes, keep-forever, and the timer's bounded deletions.

A tick costs the same whatever the history: it reads one page of one definition's releases, oldest
first, from a cursor kept in a small state document, and deletes at most `retention_batch` of them.
Each release goes as a whole: marked `deleting` under its ETag (from then on no read sees it), then
its step logs, the packages no other release uses, its rows and list entries, its release row last.
A crash anywhere leaves a `deleting` release that the next pass over its definition finishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.errors import Conflict, NotFound
from shared.domain.plan import environment_target
from shared.domain.release import Release
from shared.domain.retention import DefinitionPolicy, Newest, ReleaseFacts, Verdict, decide, newest_per_stage
from shared.domain.target import Target
from shared.ports import RetentionStore
from shared.records import ConcurrentChange
from shared.services import definitions, releases, step_logs
from shared.services.deps import Deps

logger = logging.getLogger(__name__)

STATE = ("retention", "cursor")
REFERENCES_SINCE = ("retention", "references-since")
"""The document that holds where the timer is: (kind, key)."""
KEEP = "keep"
"""Documents of kind `keep`, keyed by release id: who keeps a release forever, and why."""
DEPLOYING = ("queued", "inProgress")


def store_of(deps: Deps) -> RetentionStore:
    """The store's retention operations (both stores have them; a store without them is a wiring error)."""
    if not isinstance(deps.store, RetentionStore):  # pragma: no cover
        raise TypeError(f"{type(deps.store).__name__} cannot delete releases")
    return deps.store


# -- why a release is kept, or when it goes


def verdict(deps: Deps, release: Release, slots: dict[str, dict[str, Any]] | None = None) -> Verdict:
    """For the API and the dashboard: the release's fate as the timer would judge it now. `slots`: the
    definition's slot records by lower-case slot id, when the caller read them already (its page shows them)."""
    definition_id = int(release.definition_id)
    definition = _definition(deps, release)
    policy, targets = DefinitionPolicy.of_definition(definition), _stage_slots(definition)
    if slots is None:
        slots = {r["slot"].lower(): r for r in deps.store.slot_records(definition_id)}
    facts = _facts(release, targets, slots, _kept_by(deps, release.id))
    # Whether it is one of a stage's newest is asked only of a release that no deployment keeps now: one that
    # deploys is kept whatever is newer, and asking meant reading every newer release (an approver's page,
    # while a burst of newer releases waited behind it, read each of them).
    newest = _newest_for(deps, definition_id, facts, policy, targets, slots) \
        if facts.deployed_to and not facts.deploying_to else Newest({})
    return decide(policy, facts, newest, deps.clock.now())


def _newest_for(deps: Deps, definition_id: int, facts: ReleaseFacts, policy: DefinitionPolicy,
                targets: dict[str, str], slots: dict[str, dict[str, Any]]) -> Newest:
    """`_newest` as far as one release is concerned: only newer releases can push it out of a stage's newest,
    so only they are read, and none at all when fewer are newer than any of its stages keeps (every release
    page and answer asks this, mostly of a recent release)."""
    listed, more = _window(deps, definition_id, policy)
    newer = [rid for rid in listed if rid > facts.id]
    reached = more is None or len(newer) < len(listed)  # the listing got down to this release: no newer one unread
    if reached and len(newer) < min(policy.of(s).minimum_releases for s in facts.deployed_to):
        return newest_per_stage(policy, [facts], complete=True)
    return newest_per_stage(policy, [facts, *_read_facts(deps, definition_id, newer, targets, slots)],
                            complete=reached)


def retain(deps: Deps, release_id: int, *, keep_forever: bool, comment: str, by: str) -> Verdict:
    """Keep a release forever, or let retention have it again; audited on the definition."""
    release = releases.get(deps, release_id)
    found = deps.store.document(KEEP, str(release_id))
    record = {"keepForever": keep_forever, "by": by, "comment": comment, "at": deps.clock.now().isoformat()}
    try:
        deps.store.put_document(KEEP, str(release_id), record, found[1] if found else None)
    except ConcurrentChange:
        raise Conflict(f"release {release_id}'s retention changed meanwhile: try again") from None
    store_of(deps).audit(int(release.definition_id), {"type": "releaseRetained" if keep_forever else "releaseReleased",
                                                       "releaseId": release_id, **record})
    return verdict(deps, release)


# -- the timer


@dataclass
class Tick:
    """What one tick did: counts for the log line and the audit record."""

    releases: int = 0
    rows: int = 0
    logs: int = 0
    packages: int = 0
    by_definition: dict[int, list[int]] = field(default_factory=dict)
    references_since: datetime | None = None
    """When release rows began to record the packages they use (see `_references_since`), read once a tick."""

    def to_json(self) -> dict[str, int]:
        return {"releases": self.releases, "rows": self.rows, "logs": self.logs, "packages": self.packages}


def tick(deps: Deps) -> Tick:
    """Delete at most `retention_batch` expired releases of one definition, from where the last tick stopped."""
    batch = deps.settings.retention_batch
    done = Tick(references_since=_references_since(deps))  # every tick, so the first one sets it
    found = deps.store.document(*STATE)
    state: dict[str, Any] = dict(found[0]) if found else {}
    definition_id = state.get("definitionId")
    if definition_id is None or state.get("done"):  # the pass over the last definition ended: the next one
        state = _next_definition(deps, state)
        definition_id = state.get("definitionId")
    if definition_id is not None:
        definition_id = int(definition_id)
        for release in store_of(deps).deleting_releases(definition_id, batch):
            _delete(deps, definition_id, release, done)  # a crash left it half-deleted: finish it first
        if done.releases < batch:
            _expire(deps, definition_id, state, batch - done.releases, done)
    _save(deps, state, found[1] if found else None)
    for did, ids in done.by_definition.items():
        store_of(deps).audit(did, {"type": "releasesDeleted", "at": deps.clock.now().isoformat(), "by": "retention",
                                   "releaseIds": ids, **done.to_json()})
    if done.releases:
        logger.warning("retention: deleted %(releases)s releases, %(rows)s rows, %(logs)s logs, %(packages)s "
                       "packages", done.to_json())
    return done


def _expire(deps: Deps, definition_id: int, state: dict[str, Any], budget: int, done: Tick) -> None:
    """One page of the definition's releases, oldest first: delete the expired ones, move the cursor on."""
    definition = _policy_source(deps, definition_id)
    if definition is None:
        state.update(done=True)
        return
    policy = DefinitionPolicy.of_definition(definition)
    targets = _stage_slots(definition)
    slots = {r["slot"].lower(): r for r in deps.store.slot_records(definition_id)}
    if "newest" not in state:  # once per pass over the definition: newer releases only keep more
        newest = _newest(deps, definition_id, policy, targets, slots)
        state["newest"] = {stage: sorted(ids) for stage, ids in newest.kept.items()}
        state["partial"] = sorted(newest.partial)
    newest = Newest({s: frozenset(ids) for s, ids in state["newest"].items()}, frozenset(state["partial"]))
    page, cursor = deps.store.releases(definition_id, cursor=state.get("releases"), limit=budget)
    now = deps.clock.now()
    for release in page:
        if not decide(policy, _facts(release, targets, slots, None), newest, now).delete:
            continue
        if _kept_by(deps, release.id):
            continue
        loaded = deps.store.release(definition_id, release.id)
        if loaded is None:
            continue
        try:
            store_of(deps).mark_deleting(definition_id, release.id, loaded[1])
        except ConcurrentChange:
            continue  # it changed meanwhile (a deployment?): the next pass judges it again
        _delete(deps, definition_id, loaded[0], done)
    if cursor is None:  # the pass over this definition is done: the next tick starts on the next one
        state.update(done=True, releases=None)
    else:
        state["releases"] = cursor


def _delete(deps: Deps, definition_id: int, release: Release, done: Tick) -> None:
    """A release marked deleting: the logs an earlier version wrote as blobs, the packages nobody else uses, then
    its rows (its log parts with them, the release row last)."""
    for name in step_logs.blobs(deps, release):  # the parts go with the release's rows
        deps.logs.delete(name)
    done.logs += len(step_logs.ran(release))
    for artifact in release.artifacts:
        stored = artifact.get("stored")
        if stored and not _package_needed(deps, definition_id, release.id, artifact, done):
            deps.packages.discard(stored)
            done.packages += 1
    done.rows += store_of(deps).purge_release(definition_id, release.id)
    done.releases += 1
    done.by_definition.setdefault(definition_id, []).append(release.id)


def _package_needed(deps: Deps, definition_id: int, release_id: int, artifact: dict[str, Any], done: Tick) -> bool:
    """A package stays while another release names it, while it is its source's newest version (a release
    made without a version takes it), when it was registered before release rows recorded the packages they
    use (an older row could name it unseen), and whenever the store cannot tell at once."""
    source = str(artifact.get("source", ""))
    latest = deps.store.latest_artifact(source)
    if latest is not None and latest.get("stored") == artifact["stored"]:
        return True
    registered = (deps.store.artifact(source, str(artifact.get("version", ""))) or {}).get("registeredAt")
    since = done.references_since or _references_since(deps)
    if not registered or datetime.fromisoformat(str(registered)) < since:
        return True
    return store_of(deps).package_in_use(artifact["stored"], (definition_id, release_id))


def _references_since(deps: Deps) -> datetime:
    """The first retention tick's time, kept (insert-only: the first writer wins). Release rows written by this
    version record each package they use; rows written before do not, so only a package registered after this
    time is known to be named by recording rows alone (every release naming it was created after it)."""
    found = deps.store.document(*REFERENCES_SINCE)
    if found is None:
        try:
            deps.store.put_document(*REFERENCES_SINCE, {"at": deps.clock.now().isoformat()}, None)
        except ConcurrentChange:
            pass  # another tick was first: its time stands
        found = deps.store.document(*REFERENCES_SINCE)
    return datetime.fromisoformat(str(found[0]["at"])) if found else deps.clock.now()


def _newest(deps: Deps, definition_id: int, policy: DefinitionPolicy, targets: dict[str, str],
            slots: dict[str, dict[str, Any]]) -> Newest:
    """The minimum each stage keeps, from a bounded window of the definition's newest releases."""
    listed, more = _window(deps, definition_id, policy)
    return newest_per_stage(policy, _read_facts(deps, definition_id, listed, targets, slots), complete=more is None)


def _window(deps: Deps, definition_id: int, policy: DefinitionPolicy) -> tuple[list[int], object | None]:
    """The ids of the definition's newest releases, as many as retention looks at, and whether more exist."""
    window = max([deps.settings.retention_batch, *(policy.of(s).minimum_releases for s in policy.stages)])
    listed, more = deps.store.releases_page(cursor=None, limit=window, definition_id=definition_id)
    return [int(summary["id"]) for summary in listed], more


def _read_facts(deps: Deps, definition_id: int, ids: list[int], targets: dict[str, str],
                slots: dict[str, dict[str, Any]]) -> list[ReleaseFacts]:
    found = (deps.store.release(definition_id, rid) for rid in ids)
    return [_facts(loaded[0], targets, slots, None) for loaded in found if loaded is not None]


def _facts(release: Release, targets: dict[str, str], slots: dict[str, dict[str, Any]],
           kept_by: str | None) -> ReleaseFacts:
    times = [release.created_at] + [t for run in release.stages.values() for d in run.deployments
                                    for t in (d.queued_at, d.started_at, d.finished_at) if t]
    return ReleaseFacts(
        id=release.id, created_at=release.created_at, last_activity=max(times),
        deployed_to=frozenset(n for n, run in release.stages.items() if any(d.started_at for d in run.deployments)),
        deploying_to=frozenset(n for n, run in release.stages.items()
                               if run.current is not None and run.current.status in DEPLOYING),
        running_in=frozenset(stage for stage, slot in targets.items()
                             if (slots.get(slot) or {}).get("releaseId") == release.id),
        kept_forever_by=kept_by)


def _kept_by(deps: Deps, release_id: int) -> str | None:
    found = deps.store.document(KEEP, str(release_id))
    return str(found[0].get("by") or "someone") if found and found[0].get("keepForever") else None


def _stage_slots(definition: dict[str, Any]) -> dict[str, str]:
    """Each stage's slot resource id (lower case), as what runs where records it."""
    return {s["name"]: Target.from_dict(environment_target(s)).resource_id.lower()
            for s in definition.get("stages", [])}


def _policy_source(deps: Deps, definition_id: int) -> dict[str, Any] | None:
    """The definition whose policy applies: its current revision, or a deleted one's last (its releases still
    expire as it said, and what runs in a slot is still kept); None when there is none."""
    head = deps.store.head(definition_id)
    if head is None:
        return None
    try:
        return definitions.get(deps, definition_id, head.revision if head.deleted else None)
    except NotFound:
        return None


def _definition(deps: Deps, release: Release) -> dict[str, Any]:
    """The definition's current body (a policy changed later applies to older releases too), or the
    release's own copy when the definition is gone."""
    try:
        return definitions.get(deps, int(release.definition_id))
    except NotFound:
        return release.definition


def _next_definition(deps: Deps, state: dict[str, Any]) -> dict[str, Any]:
    """The next definition after the one the state names (round robin, one per pass)."""
    rows, cursor = deps.store.definitions_page(cursor=state.get("definitions"), limit=1, include_deleted=True)
    if not rows and state.get("definitions"):
        rows, cursor = deps.store.definitions_page(cursor=None, limit=1, include_deleted=True)
    if not rows:
        return {}
    return {"definitionId": int(rows[0]["id"]), "definitions": cursor}  # where the next lookup goes on from


def _save(deps: Deps, state: dict[str, Any], etag: str | None) -> None:
    try:
        deps.store.put_document(*STATE, state, etag)
    except ConcurrentChange:
        logger.info("retention: another tick moved the cursor meanwhile")  # it did the same work; fine

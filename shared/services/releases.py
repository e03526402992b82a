"""Releases: created by a person, a pipeline or a build; read with why each stage waits."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import re
from typing import Any

from shared import telemetry
from shared.domain import variables
from shared.domain.access import Principal
from shared.domain.errors import Conflict, FieldError, Invalid, NotFound, Unprocessable
from shared.domain.release import Release, StepRun
from shared.domain.transitions import decide
from shared.domain.transitions.commands import Abandon, DeployStage, IgnoreGate, StartRelease
from shared.domain.transitions.results import Event
from shared.domain.vocabulary import EventType, Kind, Reason
from shared.records import Changes, ConcurrentChange, Head
from shared.schemas.actions import DeployIn
from shared.schemas.release import ArtifactVersionIn, ArtifactWebhookIn, BuildIn, ReleaseIn
from shared.services import artifacts, outbox, step_logs, variable_groups
from shared.services.apply import MAX_TRIES, apply, back_off, lane_changes, outbox_for, read_lanes
from shared.services.definitions import body_of, current_body, current_head
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def _check_variables(definition: dict[str, Any], given: dict[str, str]) -> None:
    """Release-time values only for variables the definition lets a release set, and never a secret (a
    Key Vault reference given by a caller would read any secret Slipway can)."""
    allowed = variables.overridable(definition)
    errors = [FieldError(f"variables.{name}", f"'{name}' is not a variable this definition lets a release set "
                                               f"(declare it with allowOverride)")
              for name in given if name.casefold() not in allowed]
    errors += [FieldError(f"variables.{name}", "a Key Vault reference cannot be given when a release is created")
               for name, value in given.items() if variables.is_secret(value)]
    if errors:
        raise Invalid(errors)


def create(deps: Deps, body: ReleaseIn, *, by: str, reason: str = "manual", idempotency_key: str | None = None,
           client_key: str | None = None, current: tuple[Head, dict[str, Any]] | None = None,
           registered: dict[tuple[str, str], dict[str, Any]] | None = None) -> tuple[Release, bool]:
    """Create a release and fire its `afterRelease` stages. Returns (release, created now?).

    `client_key` is a caller's Idempotency-Key: kept apart from Slipway's own keys (`idempotency_key`:
    a build, a schedule occurrence) and from other callers' keys, and bound to the request body, so
    that the same key with another body is a 422 rather than someone else's release. `current` is the
    definition's head and body as the caller just read them (a stale head costs one failed write);
    `registered`, artifact records by (source, version) the caller just registered.

    A key already used is found by the write itself (its row exists: the transaction fails), not read
    before: the usual creation is a new one, and a repeated one costs a release id nobody sees."""
    definition_id = body.definitionId
    fingerprint = ""
    if client_key:
        idempotency_key = f"client|{by}|{client_key}"
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:32]
    registered = registered or {}
    head, definition = current or current_body(deps, definition_id)
    _check_variables(definition, body.variables)
    snapshot = _artifacts(deps, definition, body.artifacts, registered)
    groups = variable_groups.snapshot(deps, definition)
    release_id = deps.store.next_id("release")
    for attempt in range(MAX_TRIES):
        back_off(attempt)
        with deps.serial.turn(("definition head", definition_id)):  # no loss to this process's own creators
            # The head as this process last read or wrote it (no read); after a lost write, as it is now.
            fresh = (deps.store.known_head(definition_id) if not attempt else None) \
                or current_head(deps, definition_id)
            if fresh.deleted:
                raise NotFound(f"definition {definition_id} not found")
            if fresh.revision != head.revision:  # a revision's body never changes: read only a new one
                definition = body_of(deps, fresh)
                _check_variables(definition, body.variables)
                snapshot = _artifacts(deps, definition, body.artifacts, registered)
                groups = variable_groups.snapshot(deps, definition)
            head = fresh
            head.release_counter += 1
            release = Release.new(id=release_id, definition_id=str(definition_id), revision=head.revision,
                                  name=release_name(definition, head.release_counter, snapshot),
                                  created_at=deps.clock.now().isoformat(), created_by=by, reason=reason,
                                  description=body.description, artifacts=snapshot, definition=definition,
                                  debug=body.debug, variables=dict(body.variables), groups=groups)
            lanes, lane_etags = read_lanes(deps, definition_id, release, known=not attempt)
            decision = decide(release, StartRelease(), deps.clock.now(), lanes)
            created = Event(EventType.RELEASE_CREATED, decision.release.created_at, by=by, message=reason)
            events = [created, *decision.events]
            decision.release.event_seq = len(events)
            items = outbox_for(deps, None, decision)
            try:
                deps.store.commit(Changes(definition_id, head=head, release=decision.release, events=events,
                                          outbox=items, lanes=lane_changes(decision, lane_etags),
                                          idempotency=(idempotency_key, f"{release_id}|{fingerprint}".rstrip("|"))
                                          if idempotency_key else None))
            except ConcurrentChange as exc:
                if idempotency_key and exc.existed:  # the key's row may be another request's, done meanwhile
                    earlier = _earlier(deps, definition_id, idempotency_key, fingerprint)
                    if earlier is not None:
                        return earlier, False
                continue
        outbox.flush(deps, definition_id, items)
        telemetry.transitions(decision.release, events)
        logger.info("created release %s (%s) of definition %s", release_id, release.name, definition_id)
        return decision.release, True
    raise Conflict(f"definition {definition_id} kept changing; try again")


def _earlier(deps: Deps, definition_id: int, key: str, fingerprint: str = "") -> Release | None:
    result = deps.store.idempotent_result(definition_id, key)
    if result is None:
        return None
    release_id, _, kept = result.partition("|")
    if kept != fingerprint:
        raise Unprocessable("Idempotency-Key", "this key was used with another request body: use a new key for a "
                                               "new request, or send the first body again")
    loaded = deps.store.release(definition_id, int(release_id))
    return None if loaded is None else loaded[0]


def _artifacts(deps: Deps, definition: dict[str, Any], given: list[ArtifactVersionIn],
               registered: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Snapshot one version of every artifact the definition declares (`registered`: records just registered)."""
    declared = {a["alias"]: a for a in definition.get("artifacts", [])}
    errors, by_alias = [], {}
    for i, item in enumerate(given):
        if item.alias not in declared:
            errors.append(FieldError(f"artifacts[{i}].alias", f"the definition has no artifact '{item.alias}'"))
        elif item.alias in by_alias:
            errors.append(FieldError(f"artifacts[{i}].alias", f"artifact '{item.alias}' given twice"))
        else:
            by_alias[item.alias] = (i, item)
    if errors:
        raise Invalid(errors)
    snapshot = []
    for alias, decl in declared.items():
        at, asked = by_alias.get(alias, (None, None))
        field = f"artifacts[{at}].version" if at is not None else "artifacts"
        if asked is not None and asked.version and (asked.package or asked.packageUrl or asked.sha256):
            build = BuildIn(**asked.model_dump(exclude={"alias"}, exclude_none=True))
            record = artifacts.register(deps, decl["source"], build, field=f"artifacts[{at}]")
        elif asked is not None and asked.version and (decl["source"], asked.version) in registered:
            record = registered[(decl["source"], asked.version)]
        else:
            record = artifacts.resolve(deps, decl["source"], asked.version if asked else None, field)
        snapshot.append({"alias": alias, "isPrimary": decl.get("isPrimary", False),
                         **{k: v for k, v in record.items() if k != "registeredAt"}})
    return snapshot


def release_name(definition: dict[str, Any], counter: int, snapshot: list[dict[str, Any]]) -> str:
    primary = next((a for a in snapshot if a.get("isPrimary")), snapshot[0] if snapshot else {})

    def value(match: re.Match[str]) -> str:
        token = match[1]
        if token.startswith("rev:"):
            return str(counter).zfill(len(token) - 4)
        if token == "Build.BuildNumber":
            return str(primary.get("buildId") or primary.get("version") or "")
        return str(definition.get("name", ""))

    return re.sub(r"\$\(([^)]*)\)", value, definition.get("releaseNameFormat", "Release-$(rev:r)"))[:256]


def from_build(deps: Deps, hook: ArtifactWebhookIn, *, by: str) -> list[Release]:
    """The continuous-deployment trigger: register the build, then release it to every definition
    that consumes its source on a matching branch. A build delivered twice creates nothing new."""
    build = BuildIn(**hook.model_dump(exclude={"source"}, exclude_none=True))
    registered = {(hook.source, hook.version): artifacts.register(deps, hook.source, build)}
    created = []
    for definition_id in _consumers(deps):
        head, definition = current_body(deps, definition_id)
        for art in definition.get("artifacts", []):
            trigger = art.get("trigger")
            if art["source"] != hook.source or not trigger or not trigger.get("enabled", True):
                continue
            if not branch_matches(hook.branch, trigger.get("branches", {})):
                logger.info("build %s %s on %s filtered out for definition %s", hook.source, hook.version,
                            hook.branch, definition_id)
                continue
            body = ReleaseIn(definitionId=definition_id, description=f"Continuous deployment of {hook.source} "
                             f"{hook.version}", artifacts=[ArtifactVersionIn(alias=art["alias"], version=hook.version)])
            release, _ = create(deps, body, by=by, reason="continuousIntegration",
                                idempotency_key=f"build|{hook.source}|{hook.version}|{art['alias']}",
                                current=(dataclasses.replace(head), definition), registered=registered)
            created.append(release)
    return created


def _consumers(deps: Deps) -> list[int]:
    ids, cursor = [], None
    while True:
        rows, cursor = deps.store.definitions_page(cursor=cursor, limit=1000)
        ids += [int(r["id"]) for r in rows]
        if not cursor:
            return ids


def branch_matches(branch: str | None, filters: dict[str, list[str]]) -> bool:
    """Include and exclude globs on the branch name (with or without `refs/heads/`); exclude wins."""
    include, exclude = filters.get("include", ["*"]), filters.get("exclude", [])
    if branch is None:
        return include == ["*"] and not exclude
    names = {branch, branch.removeprefix("refs/heads/")}

    def hit(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(n, p.removeprefix("refs/heads/")) or fnmatch.fnmatchcase(n, p)
                   for n in names for p in patterns)

    return hit(include) and not hit(exclude)


# -- reading and acting on one release

def locate(deps: Deps, release_id: int) -> int:
    """The definition a release belongs to, from the index."""
    found = deps.store.release_definition(release_id)
    if found is None:
        raise NotFound(f"release {release_id} not found")
    return found


def get(deps: Deps, release_id: int) -> Release:
    return read(deps, release_id)[0]


def read(deps: Deps, release_id: int) -> tuple[Release, str]:
    """The release and its ETag (what a decision's If-Match names)."""
    loaded = deps.store.release(locate(deps, release_id), release_id)
    if loaded is None:
        raise NotFound(f"release {release_id} not found")
    return loaded


def running(deps: Deps, release: Release) -> dict[str, dict[str, Any]]:
    """What Slipway last put in each slot of the release's definition, by slot resource id."""
    return {r["slot"].lower(): r for r in deps.store.slot_records(int(release.definition_id))}


def deploy_stage(deps: Deps, release_id: int, stage: str, body: DeployIn | None = None, *, by: str,
                 admin: bool = False) -> Release:
    """A person deploys the stage now (the API's, the dashboard's and the CLI's one rule set)."""
    body = body or DeployIn()
    definition_id = locate(deps, release_id)
    groups = None
    if body.refreshVariableGroups:
        loaded = deps.store.release(definition_id, release_id)
        groups = variable_groups.snapshot(deps, loaded[0].definition) if loaded else None
    command = DeployStage(stage, by, Reason(body.reason) if body.reason else None, body.breakGlass, admin,
                          body.notBefore, groups, body.override.reason if body.override else None)
    return apply(deps, definition_id, release_id, command).release


def ignore_gate(deps: Deps, release_id: int, stage: str, kind: Kind, who: Principal, comment: str) -> Release:
    return apply(deps, locate(deps, release_id), release_id, IgnoreGate(stage, kind, who, comment)).release


def step_log(deps: Deps, release_id: int, stage: str, attempt: int, index: int) -> tuple[Release, StepRun, str]:
    """A step of one attempt and its log so far; NotFound when the release has no such step."""
    release = get(deps, release_id)
    step = release.find_step(stage, attempt, index)
    if step is None:
        raise NotFound(f"release {release.id} has no step {index} in attempt {attempt} of stage '{stage}'")
    return release, step, step_logs.read(deps, release, stage, attempt, index) or ""


def abandon(deps: Deps, release_id: int, *, by: str, comment: str) -> Release:
    return apply(deps, locate(deps, release_id), release_id, Abandon(by, comment)).release


def events(deps: Deps, release_id: int) -> list[dict[str, Any]]:
    return deps.store.events(locate(deps, release_id), release_id)


def list_page(deps: Deps, *, definition_id: int | None, status: str | None, since: str | None,
              cursor: dict[str, str] | None, limit: int) -> tuple[list[Release], Any]:
    if definition_id is not None:
        current_head(deps, definition_id)
        return deps.store.releases(definition_id, cursor=cursor, limit=limit, since=since, status=status)
    rows, nxt = deps.store.releases_page(cursor=cursor, limit=limit, status=status, since=since)
    return _load(deps, rows), nxt


def newest(deps: Deps, definition_id: int, *, limit: int) -> list[Release]:
    """The definition's newest releases first, from the index (a partition scan gives the oldest first)."""
    return newest_page(deps, definition_id, limit=limit, cursor=None)[0]


def newest_page(deps: Deps, definition_id: int, *, limit: int,
                cursor: dict[str, str] | None) -> tuple[list[Release], dict[str, str] | None]:
    rows, nxt = deps.store.releases_page(cursor=cursor, limit=limit, definition_id=definition_id)
    return _load(deps, rows), nxt


def _load(deps: Deps, rows: list[dict[str, Any]]) -> list[Release]:
    found = [deps.store.release(int(r["definitionId"]), int(r["id"])) for r in rows]
    return [f[0] for f in found if f is not None]

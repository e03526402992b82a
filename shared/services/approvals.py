"""Approvals as people act on them: decide (approve, reject, override), defer, reassign, list; and manual
interventions, which people resume or reject the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain.access import Principal
from shared.domain.errors import FieldError, Invalid, NotFound
from shared.domain.release import Release
from shared.domain.transitions.commands import CastVote, Command, Defer, Intervene, Reassign
from shared.domain.vocabulary import Choice, Kind
from shared.services.apply import apply
from shared.services.deps import Deps
from shared.services.releases import locate


def _act(deps: Deps, release_id: int, stage: str, attempt: int | None, if_match: str | None,
         command: Callable[[int], Command]) -> Release:
    """Read the release once, name the current attempt when the caller did not, and apply."""
    definition_id = locate(deps, release_id)
    loaded = deps.store.release(definition_id, release_id)
    if loaded is None:
        raise NotFound(f"release {release_id} not found")
    if attempt is None:
        run = loaded[0].stages.get(stage)
        attempt = run.current.attempt if run and run.current else 0
    return apply(deps, definition_id, release_id, command(attempt), read=loaded, if_match=if_match).release


def cast_vote(deps: Deps, release_id: int, stage: str, kind: str, who: Principal, choice: str, comment: str, *,
              attempt: int | None, if_match: str | None, override: bool = False) -> Release:
    """An approver's vote (or an admin's override) on the stage's pending `kind` approval."""
    side, chosen = _kind(kind), _choice(choice)
    return _act(deps, release_id, stage, attempt, if_match,
                lambda n: CastVote(stage, n, side, who, chosen, comment, override))


def intervene(deps: Deps, release_id: int, stage: str, step: int, who: Principal, decision: str, comment: str, *,
              attempt: int | None, if_match: str | None) -> Release:
    """Resume or reject the stage's manual-intervention step `step` (its index in the stage)."""
    if decision not in ("resume", "reject"):
        raise Invalid([FieldError("decision", "must be resume or reject")])
    return _act(deps, release_id, stage, attempt, if_match,
                lambda n: Intervene(stage, n, step, who, decision == "resume", comment))


def _kind(kind: str) -> Kind:
    if kind not in tuple(Kind):
        raise Invalid([FieldError("kind", "must be pre or post")])
    return Kind(kind)


def _choice(choice: str) -> Choice:
    if choice not in tuple(Choice):
        raise Invalid([FieldError("decision", "must be approve or reject")])
    return Choice(choice)


def defer(deps: Deps, release_id: int, stage: str, who: Principal, until: str, comment: str, *,
          attempt: int | None, if_match: str | None) -> Release:
    try:
        when = datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid([FieldError("until", "must be an ISO-8601 time with a zone")]) from None
    if when.tzinfo is None:
        raise Invalid([FieldError("until", "must say its time zone (for example 2026-12-01T03:00:00Z)")])
    if when <= deps.clock.now():
        raise Invalid([FieldError("until", "must be in the future")])
    return _act(deps, release_id, stage, attempt, if_match,
                lambda n: Defer(stage, n, who, when.isoformat(), comment))


def reassign(deps: Deps, release_id: int, stage: str, kind: str, who: Principal, to: str, comment: str, *,
             attempt: int | None, if_match: str | None) -> Release:
    """Hand an open entry to `to`; its mail (a link of their own, once) goes out from the outbox of the
    same change (`recipients`: the `approvalReassigned` event names whom)."""
    side = _kind(kind)
    return _act(deps, release_id, stage, attempt, if_match, lambda n: Reassign(stage, n, side, who, to, comment))


def pending(deps: Deps, *, who: Principal | None, definition_id: int | None, status: str | None,
            cursor: dict[str, str] | None, limit: int) -> tuple[list[dict[str, Any]], Any]:
    """Approvals from the index (newest release first); `who` keeps those they can decide."""
    rows, nxt = deps.store.approvals_page(cursor=cursor, limit=limit, definition_id=definition_id, status=status)
    items = [_view(r) for r in rows]
    if who is not None:
        items = [i for i in items if any(who.is_(a) for a in i["approvers"])]
    return items, nxt


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {"releaseId": row["releaseId"], "releaseName": row.get("releaseName"),
            "definitionId": row["definitionId"], "stage": row["stage"], "attempt": row["attempt"],
            "kind": row["kind"], "status": row["status"], "approvers": list(row["approvers"]),
            "requestedAt": row["requestedAt"], "deadline": row["deadline"], "requestedBy": row.get("requestedBy")}

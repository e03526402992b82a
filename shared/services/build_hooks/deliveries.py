"""What happened to each delivery: an insert-only row per delivery id (a redelivery answers the first
result, design.md "Idempotency keys"), and a bounded list of the latest deliveries per source for people."""

from __future__ import annotations

from typing import Any

from shared.records import ConcurrentChange
from shared.services.deps import Deps

SEEN = "hookdelivery"
LISTS = "hookdeliveries"
KEEP = 50
"""Deliveries listed per source, newest first; older ones drop off the list (their idempotency rows stay)."""
TRIES = 5


def first_answer(deps: Deps, platform: str, delivery: str) -> dict[str, Any] | None:
    found = deps.store.document(SEEN, f"{platform}|{delivery}")
    return None if found is None else found[0]


def settle(deps: Deps, platform: str, delivery: str, answer: dict[str, Any]) -> dict[str, Any]:
    """Keep `answer` as the delivery's result, unless a concurrent copy of the delivery settled first: then
    that one is the answer (both did the same idempotent work)."""
    try:
        deps.store.put_document(SEEN, f"{platform}|{delivery}", answer, None)
        return answer
    except ConcurrentChange:
        return first_answer(deps, platform, delivery) or answer


def record(deps: Deps, source: str, entry: dict[str, Any]) -> None:
    """Put `entry` first in `source`'s list, under the list's ETag (a lost race reads and tries again)."""
    for _ in range(TRIES):
        found = deps.store.document(LISTS, source)
        listed = [] if found is None else list(found[0].get("deliveries", []))
        listed = [entry, *[e for e in listed if e.get("id") != entry.get("id")]][:KEEP]
        try:
            deps.store.put_document(LISTS, source, {"source": source, "deliveries": listed},
                                    None if found is None else found[1])
            return
        except ConcurrentChange:
            continue


def every_source(deps: Deps, per_source: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each source's latest `per_source` deliveries, sources by name (one small document per source)."""
    found = [(str(body.get("source")), list(body.get("deliveries", []))[:per_source])
             for body, _ in deps.store.documents(LISTS)]
    return sorted(found, key=lambda item: item[0].casefold())


def recent(deps: Deps, source: str) -> list[dict[str, Any]]:
    found = deps.store.document(LISTS, source)
    return [] if found is None else list(found[0].get("deliveries", []))


def finish(deps: Deps, platform: str, source: str | None, entry: dict[str, Any], status: int,
           answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Settle the delivery `entry["id"]` with (status, answer) and list it under `source`; a copy that settled
    first wins, and is the one listed."""
    kept = settle(deps, platform, entry["id"], {"status": status, "answer": answer})
    if kept["answer"] is answer:
        made = [r.get("id") for r in answer.get("releases", [])]
        note(deps, source, {**entry, "status": status, "reason": answer.get("reason"),
                            **({"releases": made} if made else {})})
    return int(kept["status"]), kept["answer"]


def note(deps: Deps, source: str | None, entry: dict[str, Any]) -> None:
    """List `entry` (without empty fields) under `source`, when the delivery named one."""
    if source is not None:
        record(deps, source, {k: v for k, v in entry.items() if v is not None})

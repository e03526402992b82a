"""Delivery metrics of a definition over a period, from its releases (see shared/domain/delivery_metrics.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.delivery_metrics import delivery_metrics
from shared.domain.release import Release
from shared.services.definitions import current_head
from shared.services.deps import Deps

MAX_RELEASES = 5000
"""Releases read per definition (newest first): enough for a year of a busy pipeline."""


def for_definition(deps: Deps, definition_id: int, *, since: datetime, until: datetime,
                   stage: str | None = None) -> dict[str, Any]:
    current_head(deps, definition_id)
    found: list[Release] = []
    cursor = None
    while len(found) < MAX_RELEASES:
        items, cursor = deps.store.releases(definition_id, cursor=cursor, limit=200)
        found.extend(items)
        if not cursor:
            break
    return {"definitionId": definition_id, **delivery_metrics(found, since=since, until=until, stage=stage)}

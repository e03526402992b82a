"""A manual stage may require upstream stages: its trigger's `stages` are the stages a release must have
succeeded in before anyone deploys it there by hand ("the same release through every stage"). Azure DevOps
lets a manual stage take any release; Slipway refuses one that failed or skipped the stages before it,
unless an admin overrides with a reason."""

from __future__ import annotations

from shared.domain.plan import MANUAL, StagePlan
from shared.domain.release import Release
from shared.domain.vocabulary import Status


def not_passed(release: Release, stage: StagePlan) -> list[str]:
    """The stages a manual `stage` requires that the release has not passed, each with its status
    ("Dev (failed)"); partially succeeded counts when the trigger allows partial success."""
    if stage.trigger != MANUAL:
        return []
    missing = []
    for up in stage.after:
        run = release.stages.get(up)
        status = run.status if run is not None else Status.NOT_STARTED
        if status == Status.SUCCEEDED or (status == Status.PARTIALLY_SUCCEEDED and stage.allow_partial):
            continue
        missing.append(f"{up} ({status})")
    return missing

"""Bodies of approval actions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.schemas.fields import Text
from shared.schemas.step_base import Strict

Comment = Text


class DecisionIn(Strict):
    decision: Literal["approve", "reject"]
    comment: Comment = ""
    attempt: int | None = Field(None, ge=1)
    """The deployment attempt decided on; a decision on a superseded attempt is a 409."""


class InterventionIn(Strict):
    """Resume or reject a manual-intervention step that waits."""

    decision: Literal["resume", "reject"]
    comment: Comment = ""
    attempt: int | None = Field(None, ge=1)
    """The deployment attempt; a decision on a superseded attempt is a 409."""


class OverrideIn(Strict):
    decision: Literal["approve", "reject"]
    reason: Annotated[Text, StringConstraints(min_length=1)]
    attempt: int | None = Field(None, ge=1)


class DeferIn(Strict):
    until: Annotated[str, StringConstraints(min_length=10, max_length=40)]
    comment: Comment = ""
    attempt: int | None = Field(None, ge=1)


class ReassignIn(Strict):
    to: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    comment: Comment = ""
    attempt: int | None = Field(None, ge=1)


class BatchItem(Strict):
    releaseId: int = Field(ge=1)
    stage: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    kind: Literal["pre", "post"]
    attempt: int = Field(ge=1)
    etag: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class BatchIn(Strict):
    decision: Literal["approve", "reject"]
    comment: Comment = ""
    items: list[BatchItem] = Field(min_length=1, max_length=50)

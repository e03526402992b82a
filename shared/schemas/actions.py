"""Bodies of the actions a person takes on a release: deploy a stage, abandon the release, let a
deployment past a gate. The API, the dashboard's forms and the CLI send these same shapes, so one
rule set answers all three (and the OpenAPI document shows it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints, field_validator

from shared.schemas.fields import Text
from shared.schemas.step_base import Strict


def _instant(value: str) -> str:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValueError("an ISO-8601 time with a time zone, e.g. 2026-12-01T03:00:00Z")
    return at.isoformat()


Instant = Annotated[str, StringConstraints(max_length=40), AfterValidator(_instant)]
"""An ISO-8601 time with its zone, normalised."""


class OverrideIn(Strict):
    """An admin deploys a manual stage before the release passed the stages it requires."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    """Why (audited as an event of the release, with who)."""


class DeployIn(Strict):
    """Deploy a stage now."""

    reason: Literal["manual", "redeploy", "rollback"] | None = None
    """rollback marks an earlier release deployed again; the others are the default's words. Slipway's own
    reasons (automated, scheduled) are not a person's to give."""
    breakGlass: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None
    """An admin's reason to deploy outside the stage's windows and freezes (audited)."""
    notBefore: Instant | None = None
    """The steps run no earlier than this; approvals are asked now."""
    refreshVariableGroups: bool = False
    """Read the linked variable groups again for this release (from then on); otherwise it keeps the values
    they had when it was created."""
    override: OverrideIn | None = None
    """An admin's reason to deploy a manual stage before the release passed the stages its trigger names."""


class AbandonIn(Strict):
    comment: Text = ""


class IgnoreGateIn(Strict):
    comment: Text
    """Why the gate is ignored (audited)."""

    @field_validator("comment")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why the gate is ignored")
        return value.strip()

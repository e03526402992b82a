"""The `manual-intervention` step as a definition gives it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.schemas.step_base import StepBase

MAX_TIMEOUT_MINUTES = 60 * 24 * 60


class ManualInterventionStep(StepBase):
    """Pause the deployment until a person resumes or rejects it (Azure DevOps' Manual Intervention
    task). The assignees are mailed a personal, single-use link; they (or an admin) decide on the
    release page, its API, the CLI or that link. Every decision is audited like an approval's."""

    type: Literal["manual-intervention"]
    instructions: Annotated[str, StringConstraints(max_length=10000)] = ""
    """What to check or do, in Markdown; `$(Name)` variables are substituted when the step starts."""
    assignees: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=50)
    """Users (sign-in names, which are their mail addresses) or groups who may decide, and who are mailed;
    when empty, any release manager may decide and nobody is mailed."""
    onTimeout: Literal["reject", "resume"] = "reject"
    """What happens when nobody decided in time (Azure DevOps' default: reject)."""
    timeoutMinutes: int = Field(24 * 60, ge=1, le=MAX_TIMEOUT_MINUTES)
    """At most 60 days, as in Azure DevOps."""

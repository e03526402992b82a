"""The body that issues a personal access token (PAT) for the Azure DevOps-compatible surface."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from shared.schemas.fields import LongName
from shared.schemas.step_base import Strict

MAX_DAYS = 365


def _printable(name: str) -> str:
    if any(not ch.isprintable() for ch in name) or name != name.strip():
        raise ValueError("printable characters, no spaces around")
    return name


Identity = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)]


class AccessTokenIn(Strict):
    """A token that acts as `identity`, with exactly these roles and groups (nothing its identity's sign-in
    would add), until it expires or an admin revokes it."""

    name: LongName
    """What the token is for (shown in lists; never the token)."""
    identity: Identity
    """The sign-in name the token acts as: approvals it casts are this person's."""
    roles: list[Literal["admin", "releaseManager", "reader"]] = Field(min_length=1, max_length=3)
    groups: list[Identity] = Field(default_factory=list, max_length=50)
    """Groups (names or object ids) it counts as a member of, for approvers named by group."""
    expiresInDays: int = Field(90, ge=1, le=MAX_DAYS)

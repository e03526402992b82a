"""The request bodies the surface takes, as Azure DevOps' 7.1 swagger names them (ReleaseStartMetadata,
ReleaseEnvironmentUpdateMetadata, ReleaseApproval, GateUpdateMetadata, ManualInterventionUpdateMetadata).
Fields Slipway does not use are ignored, as a tool may send a whole object back; a field Slipway
cannot honour is refused by name where it is read."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.domain.errors import Invalid
from shared.schemas.fields import Text, field_errors

M = TypeVar("M", bound="Lenient")
Short = Annotated[str, StringConstraints(max_length=256)]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BuildVersionIn(Lenient):
    id: Short | None = None
    """The build's id."""
    name: Short | None = None
    """The build number: Slipway's artifact version."""


class ArtifactMetadataIn(Lenient):
    alias: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    instanceReference: BuildVersionIn


class VariableValueIn(Lenient):
    value: Annotated[str, StringConstraints(max_length=4000)] | None = None
    isSecret: bool = False


class ReleaseStartIn(Lenient):
    definitionId: int = Field(ge=1, le=2**31 - 1)
    description: Text | None = None
    artifacts: list[ArtifactMetadataIn] = Field(default_factory=list, max_length=10)
    manualEnvironments: list[Short] | None = Field(None, max_length=50)
    isDraft: bool = False
    reason: Short | None = None
    variables: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], VariableValueIn] | None = \
        Field(None, max_length=50)
    environmentsMetadata: list[Any] | None = None


class EnvironmentUpdateIn(Lenient):
    status: Short
    comment: Text | None = None
    scheduledDeploymentTime: Annotated[str, StringConstraints(max_length=40)] | None = None
    variables: dict[str, Any] | None = None


class IdentityIn(Lenient):
    id: Short | None = None
    uniqueName: Short | None = None
    displayName: Short | None = None


class ApprovalUpdateIn(Lenient):
    status: Short
    comments: Text | None = None
    approver: IdentityIn | None = None


class GateUpdateIn(Lenient):
    gatesToIgnore: list[Short] = Field(default_factory=list, max_length=10)
    comment: Text | None = None


class InterventionUpdateIn(Lenient):
    status: Short
    comment: Text | None = None


def parse(model: type[M], body: Any) -> M:
    """The body as `model`, or a 400 naming every field that is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Invalid(field_errors(exc)) from None

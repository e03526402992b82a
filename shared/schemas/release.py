"""Bodies that create releases: by a person or pipeline (POST /releases) or by a build (webhook)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator

from shared.domain.errors import Invalid
from shared.schemas.fields import Sha256, Source, Text, Token, field_errors
from shared.schemas.step_base import Strict

M = TypeVar("M", bound=Strict)
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")]
Ref = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Commit = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{7,64}$")]


def _plain_segments(name: str) -> str:
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError("a blob name without empty, `.` or `..` segments (they would name another blob)")
    return name


BlobName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,1000}$"), AfterValidator(_plain_segments)]
Url = Annotated[str, Field(pattern=r"^https?://[!-~]+$", max_length=2048)]


class BuildIn(Strict):
    """One version of a build's output: what the artifact webhook receives, and what a release snapshots."""

    version: Version
    buildId: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")] | None = None
    branch: Ref | None = None
    commit: Commit | None = None
    package: BlobName | None = None
    """Blob name in the packages container (where builds upload)."""
    packageUrl: Url | None = None
    """Or a package elsewhere: Slipway downloads it once, when the version is registered."""
    sha256: Sha256 | None = None
    """What the build computed; Slipway computes it too, and a difference is refused."""

    @model_validator(mode="after")
    def _one_package(self) -> BuildIn:
        if self.package and self.packageUrl:
            raise ValueError("give `package` or `packageUrl`, not both")
        return self


class ArtifactWebhookIn(BuildIn):
    source: Source


class ArtifactVersionIn(BuildIn):
    alias: Token
    version: Version | None = None  # type: ignore[assignment]
    """Omitted: the newest registered version of the artifact's source."""


class ReleaseIn(Strict):
    definitionId: int = Field(ge=1)
    description: Text = ""
    artifacts: list[ArtifactVersionIn] = Field(default_factory=list, max_length=10)
    debug: bool = False
    """Verbose step logs for this release (Azure DevOps' `system.debug`)."""
    variables: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")],
                    Annotated[str, StringConstraints(max_length=4000)]] = Field(default_factory=dict, max_length=50)
    """Values for the definition's variables that allow it (`allowOverride`); a secret cannot be given here."""


def parse(model: type[M], body: Any) -> M:
    """The body as `model`, or a 400 naming every field that is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


class RetainIn(Strict):
    """POST /releases/{id}/retain: keep a release forever (Azure DevOps' `keepForever`), or let retention have it."""

    keepForever: bool
    comment: Text = ""

"""The `deploy-container` step as a definition gives it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from shared.schemas.fields import SlotName, Token
from shared.schemas.step_base import StepBase

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
PINNED_IMAGE = re.compile(rf"^(?P<repository>(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*)"
                          r"(?::(?P<tag>\w[\w.-]{0,127}))?@sha256:(?P<digest>[0-9a-f]{64})$", re.ASCII)
"""An image pinned by digest: `[registry[:port]/]repository[:tag]@sha256:<64 lower-case hex>` (the Docker / OCI
reference grammar, github.com/distribution/reference regexp.go). A tag alone can be moved to another image
after the release was approved; a digest names one image for ever."""


class DeployContainerStep(StepBase):
    """Point the slot at a container image pinned by digest (`linuxFxVersion = DOCKER|<image>`, Linux web and
    function apps on App Service plans), mark the slot with the release, then, with `verifyPath`, wait until
    the new container answers with the release's version."""

    type: Literal["deploy-container"]
    artifact: Token | None = None
    """Alias of the artifact this image is a build of (the primary artifact when omitted): its version is
    `{version}`, and its registered sha256, when it has one, must be the image's digest."""
    image: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\s|]+$")]
    """The image, e.g. `myacr.azurecr.io/web@sha256:<digest>` or `myacr.azurecr.io/web@sha256:$(ImageDigest)`;
    `{version}`, `{release}` and `$(Name)` variables (an earlier step's output) are substituted when the step
    runs, and the result must be pinned by digest."""
    slot: SlotName | None = None
    """A slot of the stage's app to deploy to instead of the stage's own."""
    verifyPath: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)] | None = None
    """A page of the slot that shows the build's version: the step ends when it does."""
    verifyText: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "{version}"
    """What that page must show; `{version}` is the artifact's version, `{release}` the release id."""
    verifyTimeoutSeconds: int = Field(600, ge=10, le=3600)
    """How long the slot may take to pull the image and start it (a large image takes minutes)."""

    @field_validator("image")
    @classmethod
    def _pinned(cls, image: str) -> str:
        """Checked here unless variables fill it in (then when the step runs)."""
        if "{" not in image and "$(" not in image and not PINNED_IMAGE.match(image):
            raise ValueError("must be pinned by digest: [registry/]repository[:tag]@sha256:<64 lower-case hex>")
        return image

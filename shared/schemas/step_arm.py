"""The `arm-deployment` step: an ARM template deployment at a resource group or a subscription.

Bicep files are compiled by the user's build (`az bicep build` / `bicep build`): Slipway deploys the
JSON template, which the build puts in the release's artifact (or publishes as a template spec version,
or at an https URL).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from shared.schemas.fields import ResourceGroup, Token
from shared.schemas.step_base import StepBase


def _inside(path: str) -> str:
    """A path inside the artifact's zip: relative, `/`-separated, never climbing out of it."""
    if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError("must be a relative path inside the artifact (`dir/file.json`: no `..`, `.`, `//`, "
                         "leading `/` or `\\`)")
    return path


ArtifactPath = Annotated[str, StringConstraints(min_length=6, max_length=1024, pattern=r"(?i)^[^\s].*\.json$"),
                         AfterValidator(_inside)]
TemplateSpecVersionId = Annotated[str, StringConstraints(
    max_length=1024, pattern=r"(?i)^/subscriptions/[^/\s]+/resourceGroups/[^/\s]+/providers/Microsoft\.Resources/"
                             r"templateSpecs/[^/\s]+/versions/[^/\s]+$")]
HttpsUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https://[^\s/]+/[^\s]*$")]
ParameterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")]
DeploymentName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[-\w._()]+$")]
Location = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{2,40}$")]


class ArmDeploymentStep(StepBase):
    """Deploy an ARM template (JSON; compile Bicep in the build with `az bicep build`) and wait for ARM to
    finish it. Its outputs become the step's outputs (secure ones are never logged nor kept). Before the
    stage is approved, what-if shows what it would change."""

    type: Literal["arm-deployment"]
    template: ArtifactPath | None = None
    """Path of the template's .json file inside the release's artifact zip, e.g. `infra/main.json`."""
    templateSpecId: TemplateSpecVersionId | None = None
    """A template spec *version* id (`/subscriptions/…/resourceGroups/…/providers/Microsoft.Resources/
    templateSpecs/{name}/versions/{version}`); ARM reads it with Slipway's identity (Template Spec Reader)."""
    templateUrl: HttpsUrl | None = None
    """An https URL ARM downloads the template from (it must be reachable by ARM, e.g. a SAS URL)."""
    artifact: Token | None = None
    """Alias of the artifact holding `template` / `parametersFile`; the primary artifact when omitted."""
    parameters: dict[ParameterName, Any] = Field(default_factory=dict, max_length=256)
    """Parameter name → value (any JSON: string, number, bool, object, array); strings anywhere in a value
    may hold `$(Var)` variables (outputs of earlier steps, variables of the release). They override
    `parametersFile`."""
    parametersFile: ArtifactPath | None = None
    """Path of an ARM parameters file (`{"parameters": {"name": {"value": …}}}`) inside the artifact; used
    as it is (no variables). Key Vault references in it are refused: use a `$(secret)` variable instead."""
    mode: Literal["Incremental", "Complete"] = "Incremental"
    """Complete deletes resources of the resource group that the template does not declare
    (resource-group scope only)."""
    scope: Literal["resourceGroup", "subscription"] = "resourceGroup"
    """resourceGroup: the stage target's subscription and resource group (or `resourceGroup`);
    subscription: the stage target's subscription (needs `location`)."""
    resourceGroup: ResourceGroup | None = None
    """Another resource group of the target's subscription to deploy to (resource-group scope)."""
    location: Location | None = None
    """Where ARM keeps a subscription-scope deployment's data (`westeurope`); required at that scope."""
    deploymentName: DeploymentName | None = None
    """ARM's name for the deployment. Default: `slipway-{release}-{stage}-{attempt}-{step}`, the same for
    every run of one step of one attempt, so that a run that lost track of its deployment finds it again.
    A name that is used again replaces that deployment's history entry."""
    timeoutMinutes: int = Field(60, ge=1, le=1440)
    """Give up (cancel the deployment in ARM and fail the step) after this long."""

    @model_validator(mode="after")
    def _coherent(self) -> ArmDeploymentStep:
        given = [name for name in ("template", "templateSpecId", "templateUrl") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `template` (a file in the artifact), `templateSpecId` or "
                             f"`templateUrl` (got {', '.join(given) or 'none'})")
        if self.scope == "subscription":
            if self.mode == "Complete":
                raise ValueError("`mode: Complete` is only for `scope: resourceGroup`: at a subscription ARM "
                                 "deploys incrementally")
            if self.location is None:
                raise ValueError("`scope: subscription` needs `location` (where ARM keeps the deployment's data)")
            if self.resourceGroup is not None:
                raise ValueError("`resourceGroup` is only for `scope: resourceGroup`")
        elif self.location is not None:
            raise ValueError("`location` is only for `scope: subscription` (a resource-group deployment lives in "
                             "its resource group)")
        return self

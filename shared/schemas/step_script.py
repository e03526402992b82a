"""The `script` step: run a container (a database migration, a smoke test, a data fix) as one execution of
an existing Azure Container Apps job, stream its console lines into the step's log, and pass or fail with
its exit.

Secrets reach the container only through `secretEnv`: environment variables that name secrets of the job
(Key Vault references the job reads with its own identity). Never put a secret's value in `command`,
`args` or `env`: those are stored with the definition and the execution, shown in Azure's execution
history to anyone who may read the job, and written to the step's log.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from shared.schemas.step_base import StepBase

JOB_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}/resource[gG]roups/[-\w._()]{1,90}/"
    r"providers/Microsoft\.App/jobs/(?P<name>[a-z](?:[a-z0-9]|-(?!-)){0,30})$")
"""A Container Apps job's resource id. Job names are lower case letters, digits and '-', start with a
letter, end with a letter or digit, have no '--' and fewer than 32 characters (`az containerapp job`)."""

_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
IMAGE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?::{_TAG}(?:@{_DIGEST})?|@{_DIGEST})$")
"""An image reference with a tag or a digest (the Docker reference grammar): `repo/name:1.4.2`,
`myacr.azurecr.io/tools/migrate@sha256:…`. No implicit `latest`: a release runs what it names."""
VARIABLE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.\- ]{0,127}\)")
CPU_STEPS = tuple(round(0.25 * n, 2) for n in range(1, 17))
"""Consumption workload profile: 0.25 to 4 vCPU in steps of 0.25, each with twice as many GiB of memory
(learn.microsoft.com, Container Apps "Containers": the allowed CPU - memory combinations)."""
RESERVED_ENV = ("SLIPWAY_RUN",)
"""Set by Slipway on every execution: finds the execution again after a crash between start and record."""


def valid_image(text: str) -> bool:
    """Is `text` an image reference with a tag or digest? `$(Var)` variables count as one tag or path
    character each; the step checks the reference again once they are substituted."""
    return len(text) <= 512 and IMAGE.match(VARIABLE.sub("v", text)) is not None


def _image(value: str) -> str:
    if not valid_image(value):
        raise ValueError("must be an image reference with a tag or an @sha256 digest, e.g. "
                         "myregistry.azurecr.io/migrate:1.4.2")
    return value


def _job(value: str) -> str:
    if JOB_ID.match(value) is None or value.endswith("-"):
        raise ValueError("must be a Container Apps job's resource id: /subscriptions/{id}/resourceGroups/{group}/"
                         "providers/Microsoft.App/jobs/{name}")
    return value


JobId = Annotated[str, StringConstraints(max_length=400), AfterValidator(_job)]
Image = Annotated[str, StringConstraints(min_length=1, max_length=512), AfterValidator(_image)]
Arg = Annotated[str, StringConstraints(max_length=4096)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
EnvValue = Annotated[str, StringConstraints(max_length=4096)]
SecretName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")]
"""Container Apps secret names: lower case letters, digits, '-' and '.', starting and ending with a letter
or digit."""
Memory = Annotated[str, StringConstraints(pattern=r"^\d+(?:\.\d{1,2})?Gi$")]


class ScriptStep(StepBase):
    """Run `image` once as an execution of the Container Apps job `job`, wait for it to end, and show its
    console lines in the step's log. The step succeeds when the execution succeeds (exit code 0); it fails
    when the execution fails or is stopped, with the exit code and the last lines of its output, and stops
    the execution and fails when it runs longer than `timeoutMinutes`.

    The execution runs exactly the container described here: ARM's start replaces the job's containers for
    that execution, so the job's own environment variables are not inherited; name what the container needs
    in `env` and `secretEnv`. Slipway needs a role that may start and read the job (e.g. Container Apps Jobs
    Operator) and Log Analytics Reader on the workspace of the job's environment."""

    type: Literal["script"]
    job: JobId
    """Resource id of the Container Apps job to run (it provides the environment, the registry credentials,
    the identity and the secrets)."""
    image: Image
    """The container image, with a tag or an @sha256 digest; may name variables: `…/migrate:$(Build.BuildNumber)`."""
    command: list[Arg] = Field(default_factory=list, max_length=64)
    """Replaces the image's ENTRYPOINT (and, without `args`, its CMD too). Plain text, stored and shown:
    never a secret value."""
    args: list[Arg] = Field(default_factory=list, max_length=256)
    """Replaces the image's CMD (the arguments of the ENTRYPOINT, or of `command`); may hold `$(Var)`.
    Plain text, stored and shown: never a secret value."""
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=100)
    """Environment variables with plain values (may hold `$(Var)`). Stored and shown: never a secret value."""
    secretEnv: dict[EnvName, SecretName] = Field(default_factory=dict, max_length=50)
    """Environment variable → the name of a secret of the job (a value or a Key Vault reference the job
    resolves with its identity). The only way a secret should reach the container: Slipway sends the
    secret's name, never sees its value, and does not log these variables."""
    timeoutMinutes: int = Field(30, ge=1, le=1440)
    """How long the execution may run; then the step stops it and fails. Keep it below the job's own
    replica timeout, which ends the execution as failed by itself."""
    cpu: float | None = None
    """vCPU for the container: 0.25 to 4 in steps of 0.25, with `memory` twice as many GiB (default 0.5)."""
    memory: Memory | None = None
    """Memory for the container, e.g. `1Gi`: twice `cpu` in GiB (default 1Gi)."""

    @model_validator(mode="after")
    def _consistent(self) -> ScriptStep:
        both = set(self.env) & set(self.secretEnv)
        if both:
            raise ValueError(f"{sorted(both)[0]} is in both env and secretEnv")
        reserved = (set(self.env) | set(self.secretEnv)) & set(RESERVED_ENV)
        if reserved:
            raise ValueError(f"{sorted(reserved)[0]} is set by Slipway itself")
        if (self.cpu is None) != (self.memory is None):
            raise ValueError("give both cpu and memory, or neither")
        if self.cpu is not None and self.memory is not None:
            if round(self.cpu, 2) not in CPU_STEPS or self.cpu != round(self.cpu, 2):
                raise ValueError("cpu must be 0.25 to 4 in steps of 0.25")
            if abs(float(self.memory[:-2]) - 2 * self.cpu) > 1e-9:
                raise ValueError(f"memory must be {2 * self.cpu:g}Gi with cpu {self.cpu:g} (twice the vCPU in GiB)")
        return self

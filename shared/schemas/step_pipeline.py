"""The `run-pipeline` step as a definition gives it: run a GitHub Actions workflow and wait for it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.schemas.step_base import StepBase

MAX_INPUTS = 20
"""User inputs; with the marker that is 21 of the 25 a workflow may declare (docs.github.com/actions/reference/
workflows-and-actions/workflow-syntax#onworkflow_dispatchinputs)."""
MAX_TIMEOUT_MINUTES = 4320
LOOKS_LIKE_TOKEN = re.compile(r"(?<![A-Za-z0-9])(gh[pousr]_|github_pat_)[A-Za-z0-9_]{10,}")
"""GitHub's token formats: `ghp_` (classic PAT), `github_pat_` (fine-grained PAT), `gho_`, `ghu_`, `ghs_` (app
installation), `ghr_` (docs.github.com/authentication/keeping-your-account-and-data-secure/about-authentication-
to-github#githubs-token-formats)."""

Repository = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")]
"""`owner/name`: an owner of 1-39 alphanumerics and single inner hyphens, a name of 1-100 of `A-Za-z0-9._-`."""
WorkflowRef = Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z0-9._-]{1,250}\.ya?ml|[1-9][0-9]{0,19})$")]
"""A workflow file name in `.github/workflows/` (`smoke.yml`) or the workflow's numeric id."""
GitRef = Annotated[str, StringConstraints(
    pattern=r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)(?!.*\.lock$)(?!.*[/.]$)[^\s~^:?*\[\\]{1,255}$")]
"""A branch or tag name, short (`main`, `v1.2`) or full (`refs/heads/main`), as git allows it; `$(Name)`
variables may stand in it."""
InputName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")]
"""A workflow_dispatch input id: a letter or `_`, then alphanumerics, `-` or `_` (workflow-syntax, input_id)."""
InputValue = Annotated[str, StringConstraints(max_length=4000)]
SecretUri = Annotated[str, StringConstraints(
    pattern=r"^https://[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,23}\.vault\.azure\.net/secrets/"
            r"[A-Za-z0-9-]{1,127}(?:/[0-9a-fA-F]{32})?$")]
"""`https://{vault}.vault.azure.net/secrets/{name}[/{version}]`: a vault name of 3-24 letters, digits and single
hyphens starting with a letter; a secret name of 1-127 letters, digits and hyphens; a 32-hex version."""


class RunPipelineStep(StepBase):
    """Run a GitHub Actions workflow (`workflow_dispatch`) and wait for its run: the step succeeds when the run
    concludes `success` and fails with the conclusion and the run's last log lines otherwise; the last `logLines`
    lines of the jobs' logs are copied into the step's log. On its timeout, or when the release is abandoned,
    the run is cancelled.

    The workflow must accept `workflow_dispatch`, declare the input named by `markerInput` (default
    `slipway_run`) and show it in its `run-name`, which is how Slipway finds a run it started even if it crashed
    right after starting it:

        on:
          workflow_dispatch:
            inputs:
              slipway_run: {type: string, required: false}
              release: {type: string, required: false}
        run-name: "Smoke tests ${{ inputs.release }} ${{ inputs.slipway_run }}"

    Only the marker and the `inputs` below are sent (GitHub refuses inputs a workflow does not declare); map
    what the workflow needs from `$(Name)` variables, e.g. `release: $(Release.ReleaseName)`,
    `version: $(Release.Artifacts.web.BuildNumber)`."""

    model_config = ConfigDict(regex_engine="python-re")  # the patterns above use look-arounds

    type: Literal["run-pipeline"]
    provider: Literal["github"] = "github"
    """Where the pipeline runs: GitHub Actions (at the app's `SLIPWAY_GITHUB_API_URL`, GitHub Enterprise Server's
    `https://HOST/api/v3` there too)."""
    repository: Repository
    """The workflow's repository, `owner/name`."""
    workflow: WorkflowRef
    """The workflow's file name in `.github/workflows/` (`smoke.yml`) or its numeric id."""
    ref: GitRef = "main"
    """The branch or tag whose version of the workflow runs (a commit SHA is not accepted by GitHub)."""
    inputs: dict[InputName, InputValue] = Field(default_factory=dict, max_length=MAX_INPUTS)
    """The workflow's inputs, as strings (booleans `true`/`false`, numbers as digits); values may hold
    `$(Name)` variables, `{version}` and `{release}`. Never secrets: inputs show in the run's page and logs."""
    tokenSecret: SecretUri
    """The Key Vault secret (read with Slipway's managed identity) that holds a GitHub App installation token or a
    fine-grained personal access token with Actions read and write on the repository. Never the token itself."""
    markerInput: InputName = "slipway_run"
    """The workflow's input that receives Slipway's marker for the run; the workflow's `run-name` must show it."""
    timeoutMinutes: int = Field(60, ge=1, le=MAX_TIMEOUT_MINUTES)
    """How long the run may take from when the step starts; then it is cancelled and the step fails."""
    logLines: int = Field(200, ge=0, le=2000)
    """How many of the run's last log lines are copied into the step's log when it completes."""

    @model_validator(mode="before")
    @classmethod
    def _no_literal_tokens(cls, data: Any) -> Any:
        """A token pasted into a definition would be stored and shown to every reader: refuse it anywhere."""
        for where, text in _strings(data, ""):
            if LOOKS_LIKE_TOKEN.search(text):
                raise ValueError(f"{where or 'the step'} holds what looks like a GitHub token: put the token in Key "
                                 f"Vault and give its secret URI in `tokenSecret`")
        return data

    @model_validator(mode="after")
    def _marker_is_not_an_input(self) -> RunPipelineStep:
        if self.markerInput in self.inputs:
            raise ValueError(f"`inputs` must not set `{self.markerInput}`: Slipway sends its marker in that input")
        return self


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found += [(path, str(key))] + _strings(item, path)
        return found
    if isinstance(value, list):
        return [hit for i, item in enumerate(value) for hit in _strings(item, f"{where}[{i}]")]
    return []

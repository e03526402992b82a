"""The `run-pipeline` step as a definition gives it: run a GitHub Actions workflow or an Azure Pipelines pipeline
and wait for its run."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.schemas.step_base import StepBase, Strict

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
Organization = Annotated[str, StringConstraints(
    pattern=r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?"
            r"|https://dev\.azure\.com/[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?/?)$")]
"""An Azure DevOps organization's name or its `https://dev.azure.com/{organization}` URL: 1-50 letters, digits and
hyphens, starting and ending with a letter or digit (learn.microsoft.com/azure/devops/organizations/accounts/
rename-organization)."""
ProjectName = Annotated[str, StringConstraints(
    pattern=r"^(?![_.])[^/:\\~&%;@'\"?<>|#$*{},+=\[\]\x00-\x1f]{1,64}(?<![.])$")]
"""An Azure DevOps project's name (or id): at most 64 characters, none of `/ : \\ ~ & % ; @ ' " ? < > | # $ * { } , +
= [ ]`, not starting with `_` or `.`, not ending with `.` (learn.microsoft.com/azure/devops/organizations/settings/
naming-restrictions, Project names)."""
VariableName = Annotated[str, StringConstraints(
    pattern=r"^(?!(?i:endpoint|input|secret|path|securefile))[A-Za-z0-9._]{1,100}$")]
"""A pipeline variable's name: letters, digits, `.` and `_`, not starting with a prefix the system reserves
(`endpoint`, `input`, `secret`, `path`, `securefile`; learn.microsoft.com/azure/devops/pipelines/process/variables,
"Variable naming restrictions")."""
AppId = Annotated[str, StringConstraints(pattern=r"^(?:[1-9][0-9]{0,19}|Iv[A-Za-z0-9.]{2,40})$")]
"""A GitHub App's numeric app id (`123456`) or its client id (`Iv23li...`, `Iv1.` and 16 hex): GitHub takes either as
the JWT's `iss` and recommends the client id (docs.github.com/apps/creating-github-apps/authenticating-with-a-github-
app/generating-a-json-web-token-jwt-for-a-github-app)."""
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
MAX_PARAMETERS = 50
GITHUB_FIELDS = ("repository", "workflow", "ref", "inputs", "tokenSecret", "app", "markerInput")
AZURE_FIELDS = ("organization", "project", "pipelineId", "branch", "templateParameters", "variables", "markerParameter")
REQUIRED = {"github": ("repository", "workflow"),
            "azure-pipelines": ("organization", "project", "pipelineId")}
DEFAULTS: dict[str, dict[str, Any]] = {
    "github": {"ref": "main", "inputs": {}, "markerInput": "slipway_run"},
    "azure-pipelines": {"branch": "refs/heads/main", "templateParameters": {}, "variables": {},
                        "markerParameter": "slipway_run"}}
"""Each provider's defaults, filled in only for that provider, so that the other's fields stay off its steps."""


class GitHubApp(Strict):
    """Sign in as a GitHub App installation: Slipway signs a short JWT with the app's private key (read from Key
    Vault when the step runs) and exchanges it for an installation token, which expires after an hour. The app
    needs the Actions repository permission (read and write) and must be installed on the repository."""

    model_config = ConfigDict(regex_engine="python-re")  # SecretUri uses a look-ahead

    appId: AppId
    """The app's client id (recommended by GitHub) or its numeric app id, from the app's settings page."""
    installationId: int = Field(ge=1, le=2**63 - 1)
    """The installation of the app on the repository's owner (`/settings/installations/{id}` in its URL)."""
    privateKeySecret: SecretUri
    """The Key Vault secret that holds the app's private key (the `.pem` GitHub generated, whole). Never the key
    itself."""


class RunPipelineStep(StepBase):
    """Run a pipeline and wait for its run: the step succeeds when the run succeeds and fails with its conclusion and
    the run's last log lines otherwise; the last `logLines` lines of its logs are copied into the step's log. On the
    step's timeout, or when the release is abandoned, the run is cancelled. A marker sent with the run is how
    Slipway finds a run it started even if it crashed right after starting it.

    `provider: github` (the default) runs a GitHub Actions workflow (`workflow_dispatch`). The workflow must
    declare the input named by `markerInput` (default `slipway_run`) and show it in its `run-name`:

        on:
          workflow_dispatch:
            inputs:
              slipway_run: {type: string, required: false}
              release: {type: string, required: false}
        run-name: "Smoke tests ${{ inputs.release }} ${{ inputs.slipway_run }}"

    Only the marker and the `inputs` below are sent (GitHub refuses inputs a workflow does not declare); map
    what the workflow needs from `$(Name)` variables, e.g. `release: $(Release.ReleaseName)`,
    `version: $(Release.Artifacts.web.BuildNumber)`.

    `provider: azure-pipelines` runs an Azure Pipelines YAML pipeline (`organization`, `project`, `pipelineId`)
    with runtime parameters (`templateParameters`) and queue-time variables (`variables`), as Slipway's managed
    identity (Microsoft Entra; no token is configured). The pipeline must declare the runtime parameter named by
    `markerParameter` (default `slipway_run`), which receives the marker:

        parameters:
          - name: slipway_run
            type: string
            default: ' '
          - name: release
            type: string
            default: ' '
        name: $(Date:yyyyMMdd).$(Rev:r) ${{ parameters.slipway_run }}
    """

    model_config = ConfigDict(regex_engine="python-re")  # the patterns above use look-arounds

    type: Literal["run-pipeline"]
    provider: Literal["github", "azure-pipelines"] = "github"
    """Where the pipeline runs: GitHub Actions (at the app's `SLIPWAY_GITHUB_API_URL`, GitHub Enterprise Server's
    `https://HOST/api/v3` there too) or Azure Pipelines (Azure DevOps Services, `https://dev.azure.com`)."""
    repository: Repository | None = None
    """GitHub: the workflow's repository, `owner/name`."""
    workflow: WorkflowRef | None = None
    """GitHub: the workflow's file name in `.github/workflows/` (`smoke.yml`) or its numeric id."""
    ref: GitRef | None = None
    """GitHub: the branch or tag whose version of the workflow runs (default `main`; a commit SHA is not accepted
    by GitHub)."""
    inputs: Annotated[dict[InputName, InputValue], Field(max_length=MAX_INPUTS)] | None = None
    """GitHub: the workflow's inputs, as strings (booleans `true`/`false`, numbers as digits); values may hold
    `$(Name)` variables, `{version}` and `{release}`. Never secrets: inputs show in the run's page and logs."""
    tokenSecret: SecretUri | None = None
    """GitHub: the Key Vault secret (read with Slipway's managed identity) that holds a GitHub App installation token
    or a fine-grained personal access token with Actions read and write on the repository. Never the token itself.
    Give this or `app`, not both."""
    app: GitHubApp | None = None
    """GitHub: sign in as this GitHub App's installation instead of with a stored token: installation tokens
    are minted when needed and never stored."""
    markerInput: InputName | None = None
    """GitHub: the workflow's input that receives Slipway's marker for the run (default `slipway_run`); the
    workflow's `run-name` must show it."""
    organization: Organization | None = None
    """Azure Pipelines: the Azure DevOps organization, `https://dev.azure.com/{organization}` or its name."""
    project: ProjectName | None = None
    """Azure Pipelines: the project's name (or id)."""
    pipelineId: int | None = Field(None, ge=1, le=2**31 - 1)
    """Azure Pipelines: the pipeline's id (`definitionId=` in its URL)."""
    branch: GitRef | None = None
    """Azure Pipelines: the branch or tag whose version of the pipeline runs, as a ref (`refs/heads/main`, the
    default, or `refs/tags/v1.2`; a short name is a branch); `$(Name)` variables may stand in it."""
    templateParameters: Annotated[dict[InputName, InputValue], Field(max_length=MAX_PARAMETERS)] | None = None
    """Azure Pipelines: the pipeline's runtime parameters (`parameters:` in its YAML), as strings; values may hold
    `$(Name)` variables, `{version}` and `{release}`. Azure DevOps refuses parameters the pipeline does not declare
    and values of the wrong type. Never secrets: they show in the run's page."""
    variables: Annotated[dict[VariableName, InputValue], Field(max_length=MAX_PARAMETERS)] | None = None
    """Azure Pipelines: queue-time variables, as strings (with `$(Name)` variables). Each must be defined on the
    pipeline and marked "Settable at queue time" (organizations limit queue-time variables to those). Never
    secrets."""
    markerParameter: InputName | None = None
    """Azure Pipelines: the runtime parameter that receives Slipway's marker for the run (default `slipway_run`)."""
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
            if PRIVATE_KEY.search(text):
                raise ValueError(f"{where or 'the step'} holds what looks like a private key: put the key in Key "
                                 f"Vault and give its secret URI in `app.privateKeySecret`")
        return data

    @model_validator(mode="before")
    @classmethod
    def _one_provider(cls, data: Any) -> Any:
        """Each provider takes its own fields and only those; its defaults are filled in here."""
        if not isinstance(data, dict):
            return data
        provider = data.get("provider", "github")
        if provider not in REQUIRED:
            return data  # the Literal refuses it
        other = "azure-pipelines" if provider == "github" else "github"
        foreign = [name for name in (AZURE_FIELDS if provider == "github" else GITHUB_FIELDS)
                   if data.get(name) is not None]
        if foreign:
            raise ValueError(f"{', '.join(f'`{n}`' for n in foreign)} {'is' if len(foreign) == 1 else 'are'} for "
                             f"provider {other}, not {provider}")
        missing = [name for name in REQUIRED[provider] if data.get(name) is None]
        if missing:
            raise ValueError(f"provider {provider} needs {', '.join(f'`{n}`' for n in missing)}")
        if provider == "github" and (data.get("tokenSecret") is None) == (data.get("app") is None):
            raise ValueError("provider github needs either `tokenSecret` (a token in Key Vault) or `app` (a GitHub "
                             "App's installation), and only one of them")
        return {**DEFAULTS[provider], **{k: v for k, v in data.items() if v is not None}}

    @model_validator(mode="after")
    def _marker_is_not_an_input(self) -> RunPipelineStep:
        if self.markerInput is not None and self.markerInput in (self.inputs or {}):
            raise ValueError(f"`inputs` must not set `{self.markerInput}`: Slipway sends its marker in that input")
        if self.markerParameter is not None and self.markerParameter in (self.templateParameters or {}):
            raise ValueError(f"`templateParameters` must not set `{self.markerParameter}`: Slipway sends its marker "
                             f"in that parameter")
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

"""A release definition as the API accepts it: stages with targets, triggers and steps."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, ValidationError, model_validator

from shared import plugins
from shared.domain import variables
from shared.domain.errors import FieldError, Invalid
from shared.domain.gates import JSON_PATH
from shared.domain.plan import graph_errors
from shared.domain.schedules import valid_cron
from shared.schemas.fields import (
    Guid,
    LongName,
    Name,
    ResourceGroup,
    SiteName,
    SlotName,
    Source,
    Text,
    Token,
    field_errors,
)
from shared.schemas.step_base import StepBase, Strict
from shared.schemas.variables import GroupName, Variables

NAME_TOKENS = re.compile(r"\$\((rev:r+|Build\.BuildNumber|Release\.DefinitionName)\)")


class TargetIn(Strict):
    subscriptionId: Guid
    resourceGroup: ResourceGroup
    site: SiteName
    slot: SlotName | None = None


class DeployPackageStep(StepBase):
    """Put the artifact's package on the slot: zip deployment, or run-from-package read with the app's
    managed identity; then, with `verifyPath`, wait until the slot shows the release's version."""

    type: Literal["deploy-package"]
    artifact: Token | None = None
    """Alias of the artifact to deploy; the primary artifact when omitted."""
    method: Literal["auto", "zipDeploy", "runFromPackage"] = "auto"
    """auto: run-from-package when `packageIdentity` is given and the stack supports it, else zip deployment."""
    packageIdentity: Annotated[str, StringConstraints(pattern=r"^/subscriptions/[0-9a-fA-F-]{36}/resource[gG]roups/"
                                                              r"[^/]+/providers/Microsoft\.ManagedIdentity/"
                                                              r"userAssignedIdentities/[^/\s]+$",
                                                      max_length=1024)] | None = None
    """The app's user-assigned identity that reads the package (run-from-package, no SAS)."""
    verifyPath: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)] | None = None
    """A page of the slot that shows the build's version: the step ends when it does."""
    verifyText: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "{version}"
    """What that page must show; `{version}` is the artifact's version, `{release}` the release id."""
    verifyTimeoutSeconds: int = Field(300, ge=10, le=3600)


class HttpCheckStep(StepBase):
    """A URL answers the expected status (and text) before the timeout."""

    type: Literal["http-check"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)] | None = None
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)] | None = None
    """Relative to the stage's slot URL; used when `url` is not given (default `/`)."""
    slot: SlotName | None = None
    """Probe another slot of the stage's app (with `path`), e.g. the source slot before a swap."""
    postSwap: bool = False
    """A failing post-swap check swaps the slots back and fails the deployment."""
    expectStatus: int = Field(200, ge=100, le=599)
    expectText: Annotated[str, Field(max_length=1000)] | None = None
    """Text the body must contain; `{version}` is the release's version of the step's (or the primary)
    artifact, `{release}` the release id: proof that the new build answered, not any build."""
    timeoutSeconds: int = Field(300, ge=0, le=86400)
    intervalSeconds: int = Field(10, ge=1, le=3600)
    requestTimeoutSeconds: int = Field(10, ge=1, le=120)

    @model_validator(mode="after")
    def _url_or_path(self) -> HttpCheckStep:
        if self.url and self.path:
            raise ValueError("give `url` or `path`, not both")
        return self


class WaitStep(StepBase):
    type: Literal["wait"]
    seconds: int = Field(ge=0, le=30 * 86400)


class SwapBase(StepBase):
    slot: SlotName | None = None
    """The source slot; the stage's own slot when omitted."""
    targetSlot: SlotName = "production"
    preserveVnet: bool = True
    artifact: Token | None = None
    """Whose version must end up in `targetSlot`; the primary artifact when omitted."""


class SwapStep(SwapBase):
    """Swap the source slot into the target slot (zero downtime); a no-op when it is already there."""

    type: Literal["swap"]


class StartSwapStep(SwapBase):
    """Swap with preview, phase 1: the source slot runs with the target's slot-sticky settings."""

    type: Literal["start-swap"]


class CompleteSwapStep(SwapBase):
    type: Literal["complete-swap"]


class CancelSwapStep(SwapBase):
    type: Literal["cancel-swap"]


class RestartStep(StepBase):
    type: Literal["restart"]
    slot: SlotName | None = None


SettingName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")]


SettingText = Annotated[str, StringConstraints(max_length=4000)]


class SettingValueIn(Strict):
    """A setting's value, secret (write-only: never shown again) unless `secret` is false. Without
    `value`, an update keeps the value of the revision it replaces (what reads show as `{"secret": true}`)."""

    value: SettingText | None = None
    secret: bool = True

    @model_validator(mode="after")
    def _shown_values_are_given(self) -> SettingValueIn:
        if self.value is None and not self.secret:
            raise ValueError("a setting that is not secret needs its `value`")
        return self


class SetAppSettingsStep(StepBase):
    """Merge app settings into the slot; `sticky` names stay with their slot on swaps. A value given
    as a plain string is secret; `{"value": "…", "secret": false}` is shown to readers."""

    type: Literal["set-app-settings"]
    slot: SlotName | None = None
    settings: dict[SettingName, SettingText | SettingValueIn] = Field(default_factory=dict, max_length=100)
    remove: list[SettingName] = Field(default_factory=list)
    sticky: list[SettingName] = Field(default_factory=list)


if TYPE_CHECKING:
    Step = StepBase
else:  # every step kind the plugin registry holds, built-in or a plugin's (see shared/plugins.py)
    Step = Annotated[Union[tuple(plugins.current().step_models())], Field(discriminator="type")]  # noqa: UP007


class ApprovalsIn(Strict):
    """Who must sign off before (pre) or after (post) a stage deploys."""

    approvers: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(min_length=1,
                                                                                           max_length=50)
    """Users (sign-in names) or groups; one member of a group is enough."""
    policy: Literal["anyOne", "allInAnyOrder", "allInSequence", "count"] = "allInAnyOrder"
    required: int | None = Field(None, ge=1, le=50)
    """With policy `count`: how many distinct people must approve."""
    requesterCannotApprove: bool = True
    skipIfApprovedInPreviousStage: bool = False
    timeoutMinutes: int = Field(30 * 24 * 60, ge=1, le=365 * 24 * 60)
    order: Literal["beforeGates", "afterGates"] | None = None
    """Relative to gates; pre: beforeGates and post: afterGates by default."""

    @model_validator(mode="after")
    def _required_fits(self) -> ApprovalsIn:
        if self.policy == "count" and self.required is None:
            raise ValueError("policy count needs `required`")
        if self.required is not None and self.required > len(self.approvers):
            raise ValueError(f"`required` ({self.required}) is more than the {len(self.approvers)} approvers")
        return self


class QueueIn(Strict):
    """How many deployments of this stage may run at once, and what happens to the others."""

    parallel: int = Field(0, ge=0, le=100)
    """0: no limit."""
    policy: Literal["sequence", "latest"] = "sequence"


Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
MonthDay = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


def _zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Europe/London)") from None
    return name


Zone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_zone)]


class WindowIn(Strict):
    """When the stage may deploy: these days, from `start` to `end`, in `timeZone`."""

    days: list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]] = Field(min_length=1, max_length=7)
    start: Clock
    end: Clock
    timeZone: Zone = "UTC"

    @model_validator(mode="after")
    def _ordered(self) -> WindowIn:
        if self.end != "24:00" and self.end <= self.start:
            raise ValueError("`end` must be after `start` on the same day")
        return self


class FreezeIn(Strict):
    """No deployments: from `start` to `end` (ISO times), or every year from `from` to `to` (MM-DD)."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    start: datetime | None = None
    end: datetime | None = None
    from_: MonthDay | None = Field(None, alias="from")
    to: MonthDay | None = None
    timeZone: Zone = "UTC"

    @model_validator(mode="after")
    def _one_kind(self) -> FreezeIn:
        one_off, yearly = self.start is not None or self.end is not None, self.from_ is not None or self.to is not None
        if one_off == yearly:
            raise ValueError("give `start` and `end` (one-off) or `from` and `to` (every year)")
        if one_off and (self.start is None or self.end is None or self.start.tzinfo is None
                        or self.end.tzinfo is None or self.end <= self.start):
            raise ValueError("a one-off freeze needs `start` before `end`, both with a time zone")
        if yearly and (self.from_ is None or self.to is None):
            raise ValueError("a yearly freeze needs `from` and `to`")
        return self


def _cron(expression: str) -> str:
    if not valid_cron(expression):
        raise ValueError(f"'{expression}' is not a 5-field cron expression (minute hour day month weekday)")
    return expression


Cron = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True), AfterValidator(_cron)]


class ScheduleIn(Strict):
    """A stage schedule: fire at every occurrence of `cron` on the wall clock of `timeZone`."""

    cron: Cron
    timeZone: Zone = "UTC"


class TriggerIn(Strict):
    type: Literal["afterRelease", "afterStages", "manual", "schedule"]
    stages: list[Name] = Field(default_factory=list, max_length=20)
    """afterStages: the stages to wait for; schedule: the stages a release must have passed; manual: the stages a
    release must have succeeded in before it can be deployed here by hand (a 409 otherwise; an admin may
    override with a reason)."""
    allowPartialSuccess: bool = False
    """afterStages, schedule and manual: a partially succeeded upstream stage counts as passed."""
    schedules: list[ScheduleIn] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> TriggerIn:
        if self.type == "afterStages" and not self.stages:
            raise ValueError("an afterStages trigger names at least one stage in `stages`")
        if self.type not in ("afterStages", "schedule", "manual") and self.stages:
            raise ValueError("`stages` is only allowed with type afterStages, schedule or manual (the stages a "
                             "release must have passed before it is deployed here by hand)")
        if (self.type == "schedule") != bool(self.schedules):
            raise ValueError("a schedule trigger needs `schedules`, and only it may have them")
        return self


Operator = Literal[">", ">=", "<", "<=", "==", "!="]
Threshold = StrictBool | float | Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A bool first and strictly: `true` stays a bool (a REST probe's default is `== true`), where a float first
would make it 1.0, which a probe's `true` never equals."""
ResourceId = Annotated[str, StringConstraints(pattern=r"^/subscriptions/[0-9a-fA-F-]{36}/resource[gG]roups/[^/]+"
                                                      r"/providers/[^\s]+$", max_length=1024)]


def _json_path(path: str) -> str:
    if not JSON_PATH.fullmatch(path):
        raise ValueError(f"'{path}' is not a JSON path this gate understands: $.field.field or $.list[0].field")
    return path


class SignalBase(Strict):
    name: Name
    operator: Operator
    threshold: Threshold


class MetricSignal(SignalBase):
    """An Azure Monitor platform metric of a resource (the stage's slot when `resourceId` is absent)."""

    type: Literal["metric"]
    metric: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,99}$")]
    aggregation: Literal["Total", "Average", "Maximum", "Minimum", "Count"]
    windowMinutes: float = Field(5, gt=0, le=1440)
    resourceId: ResourceId | None = None


class LogQuerySignal(SignalBase):
    """A KQL query on a Log Analytics workspace or a resource: its row count, or a column of its first row."""

    type: Literal["logQuery"]
    query: Annotated[str, StringConstraints(min_length=1, max_length=10000)]
    workspaceId: Guid | None = None
    resourceId: ResourceId | None = None
    column: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")] | None = None
    windowMinutes: float = Field(30, gt=0, le=43200)

    @model_validator(mode="after")
    def _one_scope(self) -> LogQuerySignal:
        if (self.workspaceId is None) == (self.resourceId is None):
            raise ValueError("give `workspaceId` or `resourceId`")
        return self


class AlertsSignal(Strict):
    """Azure Monitor alerts firing for a scope (the stage's app when absent); passes when none is."""

    type: Literal["alerts"]
    name: Name
    scope: ResourceId | None = None
    severities: list[Literal["Sev0", "Sev1", "Sev2", "Sev3", "Sev4"]] = Field(default_factory=list)
    operator: Operator = "=="
    threshold: Threshold = 0


class RestSignal(SignalBase):
    """An HTTP call: the expected status, then a condition on a value of the JSON body (or, without
    `jsonPath`, the status alone). Header values name app settings, so no secret is in the definition."""

    type: Literal["rest"]
    method: Literal["GET", "POST", "HEAD"] = "GET"
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    headersFromSettings: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")],
                              Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]] = \
        Field(default_factory=dict, max_length=10)
    expectStatus: int = Field(200, ge=100, le=599)
    jsonPath: Annotated[str, StringConstraints(max_length=200), AfterValidator(_json_path)] | None = None
    timeoutSeconds: float = Field(10, gt=0, le=20)
    operator: Operator = "=="
    threshold: Threshold = True


if TYPE_CHECKING:
    Signal = SignalBase | AlertsSignal
else:  # every signal type the plugin registry holds
    Signal = Annotated[Union[tuple(plugins.current().signal_models())], Field(discriminator="type")]  # noqa: UP007


class GatesIn(Strict):
    """Signals sampled together: all must pass in one sample and stay green `minimumSuccessMinutes`."""

    signals: list[Signal] = Field(min_length=1, max_length=10)
    delayMinutes: float = Field(0, ge=0, le=2880)
    intervalMinutes: float = Field(5, gt=0, le=1440)
    timeoutMinutes: float = Field(60, gt=0, le=43200)
    minimumSuccessMinutes: float = Field(0, ge=0, le=43200)
    maxFailedSamples: int | None = Field(None, ge=0, le=10000)
    maxInconclusiveSamples: int | None = Field(None, ge=0, le=10000)
    maxConsecutiveErrors: int = Field(4, ge=1, le=100)
    order: Literal["beforeApprovals", "afterApprovals"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GatesIn:
        if self.timeoutMinutes < self.intervalMinutes:
            raise ValueError("`timeoutMinutes` is shorter than `intervalMinutes`: the gate could never sample twice")
        if self.minimumSuccessMinutes >= self.timeoutMinutes:
            raise ValueError("`minimumSuccessMinutes` must be shorter than `timeoutMinutes`")
        names = [s.name.casefold() for s in self.signals]
        if len(names) != len(set(names)):
            raise ValueError("signal names must differ")
        return self


class RetentionIn(Strict):
    """How long releases are kept (Azure DevOps' `retentionPolicy`: `daysToKeep`, `releasesToKeep`); absent,
    Azure DevOps' defaults of 30 days and 3 releases apply (shared/domain/retention.py)."""

    days: int = Field(default=30, ge=1, le=3650)
    minimumReleases: int = Field(default=3, ge=0, le=100)


class StageIn(Strict):
    name: Name
    target: TargetIn
    trigger: TriggerIn = TriggerIn(type="manual")
    steps: list[Step] = Field(default_factory=list, max_length=50)
    preApprovals: ApprovalsIn | None = None
    postApprovals: ApprovalsIn | None = None
    queue: QueueIn | None = None
    windows: list[WindowIn] = Field(default_factory=list, max_length=20)
    freezes: list[FreezeIn] = Field(default_factory=list, max_length=50)
    rollbackIgnoresWindows: bool = False
    preGates: GatesIn | None = None
    postGates: GatesIn | None = None
    variables: Variables = Field(default_factory=dict, max_length=200)
    """The stage's own variables: they win over the definition's of the same name."""
    variableGroups: list[GroupName] = Field(default_factory=list, max_length=20)
    """Variable groups this stage links: above the definition's variables, below the stage's own."""
    retention: RetentionIn | None = None
    """The stage's own retention; absent, the definition's."""

    @model_validator(mode="after")
    def _one_order(self) -> StageIn:
        for side, approvals, gates in (("pre", self.preApprovals, self.preGates),
                                       ("post", self.postApprovals, self.postGates)):
            if approvals and gates and approvals.order and gates.order and \
                    (approvals.order == "afterGates") != (gates.order == "beforeApprovals"):
                raise ValueError(f"`{side}Approvals.order` ({approvals.order}) and `{side}Gates.order` "
                                 f"({gates.order}) disagree: say it on one side")
        return self


class BranchFilter(Strict):
    include: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=lambda: ["*"])
    exclude: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list)


class ContinuousDeployment(Strict):
    enabled: bool = True
    branches: BranchFilter = BranchFilter()


class ArtifactIn(Strict):
    alias: Token
    source: Source
    """The build that produces it: the artifact webhook names builds by source."""
    isPrimary: bool = False
    trigger: ContinuousDeployment | None = None


class ReleaseScheduleIn(Strict):
    """Create a release on these days at this time (Azure DevOps' scheduled release trigger)."""

    days: list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]] = Field(min_length=1, max_length=7)
    time: Clock
    timeZone: Zone = "UTC"
    onlyIfChanged: bool = False
    """Skip the occurrence when no artifact has a newer version and the definition is unchanged."""

    @model_validator(mode="after")
    def _a_time_of_day(self) -> ReleaseScheduleIn:
        if self.time == "24:00":
            raise ValueError("`time` is a time of day: 00:00 to 23:59")
        return self


class DefinitionIn(Strict):
    name: LongName
    description: Text = ""
    releaseNameFormat: Annotated[str, Field(min_length=1, max_length=256)] = "Release-$(rev:r)"
    artifacts: list[ArtifactIn] = Field(default_factory=list, max_length=10)
    stages: list[StageIn] = Field(min_length=1, max_length=50)
    releaseSchedules: list[ReleaseScheduleIn] = Field(default_factory=list, max_length=10)
    variables: Variables = Field(default_factory=dict, max_length=200)
    """Variables every stage sees (`$(Name)` in steps, gates' URLs and instructions)."""
    variableGroups: list[GroupName] = Field(default_factory=list, max_length=20)
    """Variable groups every stage sees, below the definition's own variables; a release keeps their values
    as they were when it was created."""
    retention: RetentionIn | None = None
    """Retention of every stage without its own."""
    id: int | None = None
    revision: int | None = None
    modifiedBy: Any = None
    modifiedOn: Any = None
    warnings: Any = None
    """What a read adds (a GET's body can be PUT back as it is); ignored on the way in."""


READ_ONLY = ("id", "revision", "modifiedBy", "modifiedOn", "warnings")


def parse_definition(body: Any) -> dict[str, Any]:
    """Validate a definition body; return it normalised (defaults filled) or raise Invalid."""
    try:
        model = DefinitionIn.model_validate(body)
    except ValidationError as exc:
        raise Invalid(field_errors(exc)) from None
    data = model.model_dump(mode="json", exclude_none=True, by_alias=True, exclude=set(READ_ONLY))
    for stage in data["stages"]:
        for step in stage["steps"]:
            if step["type"] == "set-app-settings":
                step["settings"] = {k: {"value": v, "secret": True} if isinstance(v, str) else v
                                    for k, v in step["settings"].items()}
    errors = cross_field_errors(data)
    if errors:
        raise Invalid(errors)
    primary = [a for a in data["artifacts"] if a["isPrimary"]]
    if data["artifacts"] and not primary:
        data["artifacts"][0]["isPrimary"] = True
    return data


def cross_field_errors(data: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    errors += _duplicates([s["name"].casefold() for s in data["stages"]], "stages[{}].name", "stage name")
    aliases = [a["alias"] for a in data["artifacts"]]
    errors += _duplicates(aliases, "artifacts[{}].alias", "artifact alias")
    if sum(a["isPrimary"] for a in data["artifacts"]) > 1:
        errors.append(FieldError("artifacts", "only one artifact can be primary"))
    leftover = NAME_TOKENS.sub("", data["releaseNameFormat"])
    if "$(" in leftover:
        errors.append(FieldError("releaseNameFormat", "unknown variable; use $(rev:r), $(Build.BuildNumber) "
                                                      "or $(Release.DefinitionName)"))
    for i, stage in enumerate(data["stages"]):
        for j, step in enumerate(stage["steps"]):
            errors += _swap_errors(stage, step, f"stages[{i}].steps[{j}]")
            if step["type"] not in ("deploy-package", "swap", "complete-swap"):
                continue
            alias = step.get("artifact")
            if alias is None and not aliases:
                errors.append(FieldError(f"stages[{i}].steps[{j}]", f"{step['type']} needs an artifact; "
                                                                    "the definition has none"))
            elif alias is not None and alias not in aliases:
                errors.append(FieldError(f"stages[{i}].steps[{j}].artifact", f"unknown artifact alias '{alias}'"))
    errors += graph_errors(data["stages"])
    errors += [FieldError(where, why) for where, why in variables.save_errors(data)]
    for i, stage in enumerate(data["stages"]):
        post = stage.get("postApprovals") or {}
        if post.get("skipIfApprovedInPreviousStage"):
            errors.append(FieldError(f"stages[{i}].postApprovals.skipIfApprovedInPreviousStage",
                                     "only pre-deployment approvals can be skipped"))
    return errors


def _swap_errors(stage: dict[str, Any], step: dict[str, Any], field: str) -> list[FieldError]:
    if not step["type"].endswith("swap"):
        return []
    source = (step.get("slot") or stage["target"].get("slot") or "production").lower()
    target = step.get("targetSlot", "production").lower()
    if source == target == "production":
        return [FieldError(f"{field}.slot", "a swap needs a deployment slot: the stage targets the production "
                                            "slot, so name the source `slot`")]
    if source == target:
        return [FieldError(f"{field}.targetSlot", f"cannot swap slot '{source}' with itself")]
    return []


def referenced_slots(data: dict[str, Any]) -> list[tuple[str, dict[str, str], str]]:
    """(field, stage target, slot) for every slot a definition names, to check against the app."""
    out = []
    for i, stage in enumerate(data["stages"]):
        target = stage["target"]
        if target.get("slot"):
            out.append((f"stages[{i}].target.slot", target, target["slot"]))
        for j, step in enumerate(stage["steps"]):
            for key in ("slot", "targetSlot"):
                if step.get(key):
                    out.append((f"stages[{i}].steps[{j}].{key}", target, step[key]))
    return out


def _duplicates(values: list[str], field: str, what: str) -> list[FieldError]:
    seen: set[str] = set()
    errors = []
    for i, value in enumerate(values):
        if value in seen:
            errors.append(FieldError(field.format(i), f"duplicate {what} '{value}'"))
        seen.add(value)
    return errors

"""Azure DevOps classic Release enums: the same field arrives as a camelCase name (REST), a PascalCase
name, a number (the portal's Export) or, for flags, several names joined by commas.

Numbers and names: microsoft/azure-devops-node-api @ 881adee3, `api/interfaces/ReleaseInterfaces.ts`;
wire names: MicrosoftDocs/vsts-rest-api-specs @ adb28786, `specification/release/7.1/release.json`
(both summarised with line numbers in ado-samples/ENUMS.md).
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.ado_import.reading import whole


class AdoEnum:
    """One enum: its members' names and numbers."""

    def __init__(self, name: str, members: dict[str, int]) -> None:
        self.name = name
        self.members = members
        self._by_name = {k.casefold(): k for k in members}
        self._by_number = {v: k for k, v in members.items()}

    def parse(self, value: Any) -> str | None:
        """The member's name for a name in any case, a number or a number as text; None if unknown."""
        if isinstance(value, str) and value.strip().casefold() in self._by_name:
            return self._by_name[value.strip().casefold()]
        number = whole(value)
        return self._by_number.get(number) if number is not None else None

    def flags(self, value: Any) -> int | None:
        """A bit mask from a number, a member name or names joined by `,` `|` or spaces; None if any
        part is unknown."""
        number = whole(value)
        if number is not None:
            return number if 0 <= number < (1 << 31) else None
        if not isinstance(value, str) or not value.strip():
            return None
        mask = 0
        for part in re.split(r"[,|\s]+", value.strip()):
            if not part:
                continue
            name = self._by_name.get(part.casefold())
            if name is None:
                return None
            mask |= self.members[name]
        return mask


CONDITION_TYPE = AdoEnum("ConditionType", {"undefined": 0, "event": 1, "environmentState": 2, "artifact": 4})
APPROVAL_EXECUTION_ORDER = AdoEnum("ApprovalExecutionOrder",
                                   {"beforeGates": 1, "afterSuccessfulGates": 2, "afterGatesAlways": 4})
RELEASE_TRIGGER_TYPE = AdoEnum("ReleaseTriggerType", {
    "undefined": 0, "artifactSource": 1, "schedule": 2, "sourceRepo": 3, "containerImage": 4, "package": 5,
    "pullRequest": 6})
SCHEDULE_DAYS = AdoEnum("ScheduleDays", {
    "none": 0, "monday": 1, "tuesday": 2, "wednesday": 4, "thursday": 8, "friday": 16, "saturday": 32,
    "sunday": 64, "all": 127})
DEPLOY_PHASE_TYPES = AdoEnum("DeployPhaseTypes", {
    "undefined": 0, "agentBasedDeployment": 1, "runOnServer": 2, "machineGroupBasedDeployment": 4,
    "deploymentGates": 8})
PARALLEL_EXECUTION = AdoEnum("ParallelExecutionTypes", {"none": 0, "multiConfiguration": 1, "multiMachine": 2})
STAGE_STATE = AdoEnum("StageState", {"succeeded": 4, "partiallySucceeded": 8})
"""The value of an environmentState condition: a mask of the upstream stage's outcomes that trigger it.
4 is succeeded in every status enum; the "partially succeeded" option is DeploymentStatus' bit 8, and
EnvironmentStatus' own partiallySucceeded (128) is read the same way (ENUMS.md: the collected files only
ever hold "4")."""
SUCCEEDED = 4
PARTIALLY_SUCCEEDED = 8 | 128

"""Variables as a definition declares them: at definition scope or a stage's, a plain value, a value
that may be set when a release is created, or a Key Vault reference (a secret Slipway never stores)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from shared.domain.variables import PREDEFINED_PREFIXES
from shared.schemas.step_base import Strict


def _not_predefined(name: str) -> str:
    if name.casefold().startswith(tuple(p.casefold() for p in PREDEFINED_PREFIXES)):
        raise ValueError(f"'{name}' is a predefined variable's name ({', '.join(PREDEFINED_PREFIXES)}…): choose "
                         f"another")
    return name


VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"),
                         AfterValidator(_not_predefined)]
VariableText = Annotated[str, StringConstraints(max_length=4000)]


class VariableIn(Strict):
    """A variable's value; `allowOverride` lets a release set it when it is created (Azure DevOps'
    "settable at release time"). A value `@Microsoft.KeyVault(SecretUri=…)` (or `VaultName=…;SecretName=…`)
    is a secret: read with Slipway's identity when a step needs it, masked as *** everywhere."""

    value: VariableText = ""
    allowOverride: bool = False


Variables = dict[VariableName, VariableText | VariableIn]


GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()\-]{0,63}$")]


class VariableGroupIn(Strict):
    """Variables shared by definitions (Azure DevOps' variable groups): definitions and stages link them by
    name; a release keeps the values they had when it was created."""

    name: GroupName
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    variables: Variables = Field(default_factory=dict, max_length=200)

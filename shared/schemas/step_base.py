"""What every step model shares: no unknown fields, a name, and whether its failure stops the stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.schemas.fields import Name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StepBase(Strict):
    name: Name | None = None
    continueOnError: bool = False

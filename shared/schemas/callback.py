"""The body a service posts to an http-request step's callback URL."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.schemas.step_base import Strict


class CallbackIn(Strict):
    """`result` decides the step; `message` goes to its log; `outputs` become variables for later steps.
    Other top-level fields are allowed for the step's `criteria` to judge (so `extra` is not forbidden)."""

    model_config = {**Strict.model_config, "extra": "allow"}
    result: Literal["succeeded", "failed"]
    message: Annotated[str, StringConstraints(max_length=2000)] = ""
    outputs: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
                  Annotated[str, StringConstraints(max_length=4000)] | int | float | bool] = Field(
        default_factory=dict, max_length=50)

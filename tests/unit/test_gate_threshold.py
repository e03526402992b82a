"""A REST signal saved with its documented default (`== true`) passes on a healthy probe: the threshold survives
the definition's validation as a bool (a float-first union once made it 1.0, which `true` never equals)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import gates
from shared.schemas.definition import GatesIn


def saved(signal: dict[str, Any]) -> dict[str, Any]:
    """The signal as a definition stores it."""
    return GatesIn.model_validate({"signals": [signal]}).model_dump(mode="json")["signals"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("given", "kept"), [(None, True), (True, True), (False, False), (1, 1.0), (2.5, 2.5),
                                             ("ok", "ok")])
def test_a_threshold_keeps_its_kind(given: Any, kept: Any) -> None:
    signal = {"name": "health", "type": "rest", "url": "http://x/health"}
    if given is not None:
        signal["threshold"] = given
    threshold = saved(signal)["threshold"]
    assert threshold == kept and type(threshold) is type(kept)


def test_a_rest_signal_with_the_default_threshold_passes_on_a_healthy_probe() -> None:
    op, threshold = gates.condition(saved({"name": "health", "type": "rest", "url": "http://x/health"}))
    assert gates.compare(True, op, threshold) is True
    assert gates.compare(False, op, threshold) is False

"""Placeholder: being written."""

from __future__ import annotations

from typing import Any

from shared.config import Settings


class ContainerJobs:
    def __init__(self, settings: Settings, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential

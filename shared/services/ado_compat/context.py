"""One release as the surface renders it: where it is, its stages by index, and the references every
shape of it repeats."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from shared.domain.release import Release
from shared.services.ado_compat import ids, refs


@dataclass
class ReleaseContext:
    site: refs.Site
    release: Release

    @cached_property
    def stages(self) -> list[dict[str, Any]]:
        """The release's stages as its definition snapshot has them (the order ids count by)."""
        return list(self.release.definition.get("stages", []))

    @cached_property
    def definition_id(self) -> int:
        return int(self.release.definition_id)

    def index(self, stage: str) -> int:
        return next(i for i, s in enumerate(self.stages) if s["name"] == stage)

    def environment_id(self, stage: str) -> int:
        return ids.environment_id(self.release.id, self.index(stage))

    @property
    def release_ref(self) -> dict[str, Any]:
        return refs.release_ref(self.site, self.release.id, self.release.name)

    @property
    def definition_ref(self) -> dict[str, Any]:
        return refs.definition_ref(self.site, self.definition_id, str(self.release.definition.get("name", "")))

    def environment_ref(self, stage: str) -> dict[str, Any]:
        return refs.environment_ref(self.environment_id(stage), stage)

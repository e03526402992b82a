"""Artifact versions: registered once by a build, immutable after, shared by every definition."""

from __future__ import annotations

from typing import Any

from shared.domain.errors import Conflict, FieldError, Invalid
from shared.records import ConcurrentChange
from shared.schemas.release import BuildIn
from shared.services.deps import Deps


def register(deps: Deps, source: str, build: BuildIn, field: str = "body") -> dict[str, Any]:
    """Record `source` `build.version`; the same version with another digest is a 409."""
    record = {"source": source, **build.model_dump(exclude_none=True),
              "registeredAt": deps.clock.now().isoformat()}
    existing = deps.store.artifact(source, build.version)
    if existing is None:
        if build.package and not deps.packages.exists(build.package):
            raise Invalid([FieldError(f"{field}.package" if field != "body" else "package",
                                      f"no blob '{build.package}' in the packages container")])
        try:
            deps.store.register_artifact(source, record)
            return record
        except ConcurrentChange:
            existing = deps.store.artifact(source, build.version)
    assert existing is not None
    if build.sha256 and existing.get("sha256") and build.sha256.lower() != existing["sha256"].lower():
        raise Conflict(f"{source} version {build.version} is already registered with sha256 "
                       f"{existing['sha256']}; a version never changes: build a new version")
    return existing  # type: ignore[no-any-return]


def resolve(deps: Deps, source: str, version: str | None, field: str) -> dict[str, Any]:
    found = deps.store.artifact(source, version) if version else deps.store.latest_artifact(source)
    if found is None:
        what = f"version '{version}' of" if version else "any version of"
        raise Invalid([FieldError(field, f"{what} artifact source '{source}' is not registered")])
    return found  # type: ignore[no-any-return]

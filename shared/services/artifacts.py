"""Artifact versions: registered once by a build, immutable after, shared by every definition.

Registering a version with a package copies the package into Slipway's own container, computes
its sha256 from the bytes written (the caller's digest, when given, must match: a 400 naming
`sha256`), and keeps a read-only snapshot. The record names the snapshot; deployments check its
digest again before they use it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.domain.errors import Conflict, FieldError, Invalid
from shared.ports import MissingUpload, StoredPackage
from shared.records import ConcurrentChange
from shared.schemas.release import BuildIn
from shared.services.deps import Deps


def register(deps: Deps, source: str, build: BuildIn, field: str = "") -> dict[str, Any]:
    """Record `source` `build.version`; the same version with another digest is a 409.
    `field` prefixes the names of bad fields (`artifacts[0]` when a release registers it)."""
    prefix = f"{field}." if field else ""
    existing = deps.store.artifact(source, build.version)
    if existing is not None:
        return _same(existing, source, build.version, build.sha256)
    record = {"source": source, **build.model_dump(exclude_none=True), "registeredAt": deps.clock.now().isoformat()}
    stored = _store(deps, source, build, prefix)
    if stored is not None:
        if build.sha256 and build.sha256.lower() != stored.sha256:
            deps.packages.discard(stored.name)
            raise Invalid([FieldError(f"{prefix}sha256", f"the package's sha256 is {stored.sha256}, not "
                                                         f"{build.sha256.lower()}: it changed after the build")])
        record.update(sha256=stored.sha256, size=stored.size, stored=stored.name, snapshot=stored.snapshot)
        if build.packageUrl:
            record["packageUrl"] = without_query(build.packageUrl)
    try:
        deps.store.register_artifact(source, record)
        return record
    except ConcurrentChange:
        if stored is not None:
            deps.packages.discard(stored.name)
        existing = deps.store.artifact(source, build.version)
        assert existing is not None
        return _same(existing, source, build.version, stored.sha256 if stored else build.sha256)


def _store(deps: Deps, source: str, build: BuildIn, prefix: str) -> StoredPackage | None:
    dest = f"{source}/{build.version}/{uuid.uuid4().hex}.zip"
    if build.package:
        try:
            return deps.packages.store(build.package, dest)
        except MissingUpload:
            raise Invalid([FieldError(f"{prefix}package", f"no blob '{build.package}' in the packages container")]) \
                from None
    if build.packageUrl:
        try:
            return deps.packages.fetch(build.packageUrl, dest)
        except ValueError as exc:
            deps.packages.discard(dest)
            raise Invalid([FieldError(f"{prefix}packageUrl", f"{without_query(build.packageUrl)}: {exc}")]) from None
    return None


def _same(existing: dict[str, Any], source: str, version: str, sha256: str | None) -> dict[str, Any]:
    if sha256 and existing.get("sha256") and sha256.lower() != existing["sha256"].lower():
        raise Conflict(f"{source} version {version} is already registered with sha256 "
                       f"{existing['sha256']}; a version never changes: build a new version")
    return existing


def resolve(deps: Deps, source: str, version: str | None, field: str) -> dict[str, Any]:
    found = deps.store.artifact(source, version) if version else deps.store.latest_artifact(source)
    if found is None:
        what = f"version '{version}' of" if version else "any version of"
        raise Invalid([FieldError(field, f"{what} artifact source '{source}' is not registered")])
    return found


def without_query(url: str) -> str:
    """A URL as anyone may see it: no query (SAS signatures), no user info, no fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname
                       else parts.netloc, parts.path, "", ""))


def public(artifact: dict[str, Any]) -> dict[str, Any]:
    """An artifact as the API and pages show it: where it came from, never how to read it."""
    shown = {k: v for k, v in artifact.items() if k not in ("stored", "snapshot")}
    if shown.get("packageUrl"):
        shown["packageUrl"] = without_query(shown["packageUrl"])
    return shown

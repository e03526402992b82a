"""Where the surface is (its URLs) and how Slipway's names look as Azure DevOps references.

Azure DevOps names people by IdentityRef (`id` a GUID, `uniqueName` the sign-in name): Slipway's
identity is the sign-in name, so its GUID is derived from the name (uuid5) and stays the same on every
answer. Shallow references (`release`, `releaseDefinition`, `releaseEnvironment`) carry `_links` as an
object, as the client's models need.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

NAMESPACE = uuid.UUID("6d1f3f2a-5b7e-4c53-9a57-9f6f1d0e5a11")
"""Slipway's own namespace for the GUIDs it derives (people, projects, task instances)."""
NEVER = "0001-01-01T00:00:00"
"""What Azure DevOps sends for a time that has not happened (the client parses it; "" would not)."""


@dataclass(frozen=True)
class Site:
    """The surface as this request reached it: `origin` (scheme and host), the organization and the
    project as the caller named them (the project percent-decoded)."""

    origin: str
    organization: str
    project: str = ""

    @property
    def base(self) -> str:
        """The organization's URL: what the client is pointed at, and the Release area's locationUrl."""
        return f"{self.origin}/ado/{quote(self.organization, safe='')}"

    def api(self, path: str) -> str:
        return f"{self.base}/{quote(self.project, safe='')}/_apis/Release/{path}"


def guid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name.casefold()}"))


def identity(name: str | None) -> dict[str, Any] | None:
    """An IdentityRef for a sign-in name (or a group's name); None for nobody (Slipway itself)."""
    if not name:
        return None
    return {"id": guid("identity", name), "displayName": name, "uniqueName": name, "_links": {}}


def identity_matches(name: str, wanted: str) -> bool:
    """Does `wanted` (a uniqueName, displayName or the derived id) name `name`?"""
    return wanted.casefold() in (name.casefold(), guid("identity", name))


def project(site: Site) -> dict[str, Any]:
    return {"id": guid("project", site.project), "name": site.project}


def release_ref(site: Site, release_id: int, name: str) -> dict[str, Any]:
    return {"id": release_id, "name": name, "url": site.api(f"releases/{release_id}"), "_links": {}}


def definition_ref(site: Site, definition_id: int, name: str) -> dict[str, Any]:
    return {"id": definition_id, "name": name, "path": "\\", "url": site.api(f"definitions/{definition_id}"),
            "projectReference": project(site), "_links": {}}


def environment_ref(environment_id: int, name: str) -> dict[str, Any]:
    return {"id": environment_id, "name": name, "_links": {}}


def when(stamp: str | None) -> str | None:
    """An ISO time in UTC with a `Z` (what Azure DevOps sends), or None."""
    if not stamp:
        return None
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def latest(*stamps: str | None) -> str | None:
    """The latest of some times (ISO, any zone), as `when` writes them (fixed width: they sort as text)."""
    known = [w for w in (when(s) for s in stamps) if w]
    return max(known) if known else None

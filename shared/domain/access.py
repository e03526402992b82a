"""Who may do what. Pure: a principal and an action in, a verdict out.

Roles: admin (everything, including overriding approvals), releaseManager (create releases,
deploy, abandon), reader (read everything). Approvers are named per stage, not a role. A
principal's roles come from the app roles in its token (`Slipway.Admin`, `Slipway.ReleaseManager`,
`Slipway.Reader`) or from the settings that grant roles to names and groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN, RELEASE_MANAGER, READER = "admin", "releaseManager", "reader"
APP_ROLES = {"Slipway.Admin": ADMIN, "Slipway.ReleaseManager": RELEASE_MANAGER, "Slipway.Reader": READER}
IMPLIED = {ADMIN: {ADMIN, RELEASE_MANAGER, READER}, RELEASE_MANAGER: {RELEASE_MANAGER, READER}, READER: {READER}}


@dataclass(frozen=True)
class Principal:
    name: str
    """The sign-in name (user principal name or e-mail); the identity approvals are bound to."""
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"
    """user | automation (a function key or an app's Entra token) | development (the local stack's
    configured identity, or whoever a developer acts as there)."""
    object_id: str = ""
    """Entra object id (`oid`): approvers may be named by it, as it never changes."""
    groups_complete: bool = True
    """False when Entra left the groups claim out (more than 200 groups: the overage indicator)."""

    def has(self, role: str) -> bool:
        return any(role in IMPLIED.get(r, set()) for r in self.roles)

    def is_(self, identity: str) -> bool:
        """Is this principal the user (sign-in name or object id), or a member of the group (object id
        or a name mapped to one), named `identity`?"""
        wanted = identity.casefold()
        return (wanted == self.name.casefold() or (bool(self.object_id) and wanted == self.object_id.casefold())
                or wanted in {g.casefold() for g in self.groups})


class Forbidden(Exception):
    """The principal lacks the role or is not an eligible approver (HTTP 403)."""


class Unauthenticated(Exception):
    """No identity came with the request (HTTP 401)."""


def grant(name: str, groups: frozenset[str], claimed: set[str], grants: dict[str, list[str]]) -> frozenset[str]:
    """Roles from token app roles plus settings that grant a role to names or groups ('*' = anyone)."""
    roles = {APP_ROLES[c] for c in claimed if c in APP_ROLES}
    members = {name.casefold(), *(g.casefold() for g in groups), "*"}
    for role, names in grants.items():
        if members & {n.strip().casefold() for n in names if n.strip()}:
            roles.add(role)
    return frozenset(roles)


def require(principal: Principal, role: str, action: str) -> None:
    if not principal.has(role):
        raise Forbidden(f"{principal.name} may not {action}: it needs the {role} role")

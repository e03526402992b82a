"""Variable groups: variables shared by definitions, linked by name from a definition or a stage.

A release keeps the values of the groups its definition links, as they were when it was created (a
release is a snapshot: changing a group later changes the releases created after). A group that a
definition links cannot be deleted; a definition that links a group that does not exist is refused.
"""

from __future__ import annotations

from typing import Any

from shared.domain.errors import Conflict, FieldError, Invalid, NotFound, PreconditionFailed
from shared.records import ConcurrentChange
from shared.schemas.release import parse
from shared.schemas.variables import VariableGroupIn
from shared.services.deps import Deps

KIND = "vargroup"


def put(deps: Deps, body: Any, *, by: str, name: str | None = None, if_match: str | None = None
        ) -> tuple[dict[str, Any], str]:
    """Create a group (`name` None) or replace the one named `name` under the ETag it was read with."""
    group = parse(VariableGroupIn, body).model_dump(mode="json")
    if name is not None and group["name"].casefold() != name.casefold():
        raise Invalid([FieldError("name", "a group keeps its name: create another group to rename it")])
    record = {**group, "modifiedBy": by, "modifiedOn": deps.clock.now().isoformat()}
    if name is not None:
        _check(deps, name, if_match)
    try:
        etag = deps.store.put_document(KIND, group["name"], record, if_match if name is not None else None)
    except ConcurrentChange:
        if name is None:
            raise Conflict(f"a variable group named '{group['name']}' exists") from None
        raise PreconditionFailed(f"variable group '{name}' changed since it was read") from None
    return record, etag


def get(deps: Deps, name: str) -> tuple[dict[str, Any], str]:
    found = deps.store.document(KIND, name)
    if found is None:
        raise NotFound(f"variable group '{name}' not found")
    return found


def listed(deps: Deps) -> list[dict[str, Any]]:
    return sorted((body for body, _ in deps.store.documents(KIND)), key=lambda g: str(g["name"]).casefold())


def delete(deps: Deps, name: str, *, if_match: str, linked_by: list[str]) -> None:
    if linked_by:
        raise Conflict(f"variable group '{name}' is linked by {', '.join(linked_by)}: unlink it first")
    _check(deps, name, if_match)
    try:
        deps.store.delete_document(KIND, name, if_match)
    except ConcurrentChange:
        raise PreconditionFailed(f"variable group '{name}' changed (or went) since it was read") from None


def _check(deps: Deps, name: str, if_match: str | None) -> None:
    """The group exists and `if_match` is its ETag now (compared here, so that whatever a caller sends as
    an ETag never reaches the store)."""
    _, etag = get(deps, name)
    if if_match != etag:
        raise PreconditionFailed(f"variable group '{name}' changed since it was read (or If-Match is not its ETag)")


def linked(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, group name) of every group a definition links."""
    found = [(f"variableGroups[{i}]", g) for i, g in enumerate(definition.get("variableGroups") or [])]
    for i, stage in enumerate(definition.get("stages", [])):
        found += [(f"stages[{i}].variableGroups[{j}]", g) for j, g in enumerate(stage.get("variableGroups") or [])]
    return found


def missing(deps: Deps, definition: dict[str, Any]) -> list[FieldError]:
    """The links to groups that do not exist, by field."""
    return [FieldError(field, f"no variable group named '{name}'") for field, name in linked(definition)
            if deps.store.document(KIND, name) is None]


def snapshot(deps: Deps, definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The variables of every group the definition links, as they are now (for a new release)."""
    out: dict[str, dict[str, Any]] = {}
    for _, name in linked(definition):
        found = deps.store.document(KIND, name)
        if found is None:
            raise Conflict(f"variable group '{name}' no longer exists: link another or create it again")
        out[str(found[0]["name"])] = dict(found[0].get("variables") or {})
    return out

"""Release definitions: every change is a new revision; old revisions stay readable.

The API's ETag of a definition is its revision number: `If-Match: "3"` updates only revision 3.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from shared.domain.errors import Conflict, FieldError, Invalid, NotFound, PreconditionFailed
from shared.domain.plan import swap_warnings
from shared.domain.schedules import specs
from shared.domain.secrets import header_errors, redacted, restore_kept
from shared.domain.target import Target
from shared.messages import RegisterSchedules
from shared.ports import TargetError
from shared.records import Changes, ConcurrentChange, Head, OutboxItem, Summary
from shared.schemas.definition import READ_ONLY, DefinitionIn, parse_definition, referenced_slots
from shared.services import outbox, variable_groups
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def shown(stored: dict[str, Any]) -> dict[str, Any]:
    """A revision as reads show it: secrets redacted, and what its swaps are exposed to (`warnings`)."""
    warnings = [{"field": w.field, "message": w.message} for w in swap_warnings(stored)]
    return {**redacted(stored), **({"warnings": warnings} if warnings else {})}


def json_schema() -> dict[str, Any]:
    """The definition body as JSON Schema (draft 2020-12), from the model the API validates with, so
    an editor's checks cannot drift from the server's (cross-field rules, such as unique stage names,
    are the server's alone). Plugin step kinds installed here are part of it."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **DefinitionIn.model_json_schema()}


def etag_of(revision: int) -> str:
    return f'"{revision}"'


def _registration(deps: Deps, definition_id: int, stored: dict[str, Any]) -> list[OutboxItem]:
    """The message that puts the revision's schedules in the due index, when it has any (schedules
    a revision dropped are dropped when they come due)."""
    return [outbox.message_item(deps, 0, RegisterSchedules(definition_id))] if specs(stored) else []


def _stamp(body: dict[str, Any], definition_id: int, revision: int, by: str, now: str) -> dict[str, Any]:
    return {**body, "id": definition_id, "revision": revision, "modifiedBy": by, "modifiedOn": now}


def validate(deps: Deps, body: Any, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definition's own rules, then every slot it names must exist on its app (a 400 now, not
    a failed deployment at 3 AM). When ARM cannot be reached the slot check is skipped. Secret
    setting values an update sends back as markers are taken from `previous`."""
    data = parse_definition(body)
    errors: list[FieldError] = restore_kept(data, previous)
    errors += header_errors(data, deps.settings.gate_header_settings)
    errors += variable_groups.missing(deps, data)
    floor = deps.settings.gate_min_interval_seconds / 60
    for i, stage in enumerate(data["stages"]):
        for kind in ("preGates", "postGates"):
            interval = (stage.get(kind) or {}).get("intervalMinutes")
            if interval is not None and interval < floor:
                message = f"at least {floor:g} minutes between samples (the app's minimum)"
                errors.append(FieldError(f"stages[{i}].{kind}.intervalMinutes", message))
    flex_errors, flex = _flex_errors(deps, data)
    errors += flex_errors
    known: dict[tuple[str, str, str], list[str] | None] = {}
    for field, target, slot in referenced_slots(data):
        key = (target["subscriptionId"], target["resourceGroup"], target["site"])
        if key in flex:
            continue  # its slots are refused by the Flex check, with the reason
        if key not in known:
            try:
                known[key] = deps.app_service.slots(Target.from_dict(target))
            except TargetError as exc:
                known[key] = None
                if not exc.retryable:
                    errors.append(FieldError(field.split(".")[0] + ".target.site",
                                             f"cannot use app '{target['site']}': {exc}"))
        slots = known[key]
        if slots is not None and slot.lower() not in slots:
            errors.append(FieldError(field, f"app '{target['site']}' has no slot '{slot}' "
                                            f"(it has {', '.join(slots)})"))
    if errors:
        raise Invalid(list({(e.field, e.message): e for e in errors}.values()))
    return data


_NO_SLOTS = ("has no deployment slots (learn.microsoft.com, azure-functions/flex-consumption-plan, "
             "Considerations): target the app itself")


def _flex_errors(deps: Deps, data: dict[str, Any]) -> tuple[list[FieldError], set[tuple[str, str, str]]]:
    """A Flex Consumption app has no deployment slots, runs no custom container (ARM refuses its
    linuxFxVersion) and runs no WEBSITE_RUN_FROM_PACKAGE: a stage on one that names a slot, swaps, deploys a
    container or asks for run-from-package is refused now, each error naming its field. Only apps whose
    stages ask for one of these are read (one GET of the site each); when ARM cannot be reached, or the app
    not be read, the check is skipped (the slot check reports an app that does not exist). Returns the
    errors and the Flex apps."""
    wants: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    targets: dict[tuple[str, str, str], dict[str, str]] = {}
    for i, stage in enumerate(data["stages"]):
        target = stage["target"]
        key = (target["subscriptionId"], target["resourceGroup"], target["site"])
        found: list[tuple[str, str]] = []
        if target.get("slot") and str(target["slot"]).lower() != "production":
            found.append((f"stages[{i}].target.slot", _NO_SLOTS))
        for j, step in enumerate(stage["steps"]):
            field, kind = f"stages[{i}].steps[{j}]", str(step.get("type", ""))
            if kind.endswith("swap"):
                found.append((f"{field}.type", "has no deployment slots to swap"))
            elif step.get("slot") and str(step["slot"]).lower() != "production":
                found.append((f"{field}.slot", _NO_SLOTS))
            if kind == "deploy-container":
                found.append((f"{field}.type", "runs no custom container: ARM refuses a Flex app's linuxFxVersion "
                                               "(its runtime is functionAppConfig.runtime); deploy a package"))
            if kind == "deploy-package" and step.get("method") == "runFromPackage":
                found.append((f"{field}.method", "runs the package One Deploy stores in its deployment storage: "
                                                 "WEBSITE_RUN_FROM_PACKAGE is not supported there "
                                                 "(functions-app-settings, Flex Consumption plan deprecations); "
                                                 "use zipDeploy or auto"))
        if found:
            wants.setdefault(key, []).extend(found)
            targets[key] = target
    errors: list[FieldError] = []
    flex: set[tuple[str, str, str]] = set()
    for key, found in wants.items():
        try:
            hosting = deps.app_service.hosting(Target(*key))
        except TargetError as exc:
            logger.info("Flex Consumption check of %s skipped: %s", key[2], exc)
            continue
        if hosting.get("sku", "").lower() == "flexconsumption":
            flex.add(key)
            errors += [FieldError(field, f"app '{targets[key]['site']}' is a Flex Consumption function app and "
                                         f"{message}") for field, message in found]
    return errors, flex


def create(deps: Deps, body: Any, *, by: str, idempotency_key: str | None = None) -> dict[str, Any]:
    data = validate(deps, body)
    now = deps.clock.now().isoformat()
    definition_id = deps.store.next_id("definition")
    head = Head(id=definition_id, name=data["name"], revision=1, created_at=now, updated_at=now)
    stored = _stamp(data, definition_id, 1, by, now)
    items = [outbox.index_item(deps, 0, Summary.of_definition(head)), *_registration(deps, definition_id, stored)]
    deps.store.commit(Changes(definition_id, head=head, revision=(1, stored), outbox=items))
    outbox.flush(deps, definition_id, items)
    return shown(stored)


def current_head(deps: Deps, definition_id: int) -> Head:
    head = deps.store.head(definition_id)
    if head is None or head.deleted:
        raise NotFound(f"definition {definition_id} not found")
    return head


def current_body(deps: Deps, definition_id: int) -> tuple[Head, dict[str, Any]]:
    """The definition's head and its current revision's body."""
    head = current_head(deps, definition_id)
    return head, body_of(deps, head)


def body_of(deps: Deps, head: Head) -> dict[str, Any]:
    """The body of the revision `head` names (a revision's body never changes once written)."""
    body = deps.store.revision(head.id, head.revision)
    if body is None:
        raise NotFound(f"definition {head.id} revision {head.revision} not found")
    return body


def get(deps: Deps, definition_id: int, revision: int | None = None) -> dict[str, Any]:
    head = deps.store.head(definition_id)
    if head is None or (head.deleted and revision is None):
        raise NotFound(f"definition {definition_id} not found")
    body = deps.store.revision(definition_id, revision or head.revision)
    if body is None:
        raise NotFound(f"definition {definition_id} has no revision {revision}")
    return shown(body)


def revisions(deps: Deps, definition_id: int) -> list[dict[str, Any]]:
    current_head(deps, definition_id)
    return [redacted(r) for r in deps.store.revisions(definition_id)]


def list_page(deps: Deps, *, cursor: dict[str, str] | None, limit: int,
              name: str | None = None) -> tuple[list[dict[str, Any]], Any]:
    """A page of definitions by id; with `name`, only the one of that name (case-insensitive, as ADO's
    `isExactNameMatch`), found by scanning at most NAME_SCAN_ROWS index rows per call: when the cursor
    comes back with nothing found, the caller asks again from it (the cost of one call stays bounded)."""
    if name is None:
        rows, nxt = deps.store.definitions_page(cursor=cursor, limit=limit)
    else:
        wanted, rows, read, nxt = name.casefold(), [], 0, cursor
        while True:
            batch, nxt = deps.store.definitions_page(cursor=nxt, limit=100)
            read += len(batch)
            rows += [r for r in batch if str(r["name"]).casefold() == wanted]
            if not nxt or rows or read >= NAME_SCAN_ROWS:
                break
    return [{k: r[k] for k in ("id", "name", "revision", "updatedAt")} for r in rows], nxt


NAME_SCAN_ROWS = 1000


def comparable(body: Any, previous: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A body as it would be stored (defaults filled, read-only fields dropped, secret markers given
    back their kept values from `previous`), to tell whether a PUT changes anything; None when it is
    not a valid definition (then it is never equal to anything)."""
    try:
        data = parse_definition(body)
    except Invalid:
        return None
    if restore_kept(data, previous):
        return None
    return data


def _unchanged(body: Any, old: dict[str, Any]) -> bool:
    current = comparable({k: v for k, v in old.items() if k not in READ_ONLY})
    return current is not None and comparable(body, previous=old) == current


def update(deps: Deps, definition_id: int, body: Any, *, by: str, if_match: str | None) -> tuple[dict[str, Any], bool]:
    """A new revision when the body changes the current one; else the current one, nothing written
    (a definition applied from a repository on every CI run stays at one revision per change). Returns
    the revision and whether it is new. An unchanged body answers 200 even when If-Match names an
    older revision: RFC 9110 §13.1.1 lets a server answer 2xx when the change it was asked for is
    already in place."""
    parse_definition(body)  # a bad body is a 400 before anything is read
    _, old = current_body(deps, definition_id)
    if _unchanged(body, old):
        return shown(old), False
    return _new_revision(deps, definition_id, lambda old: validate(deps, body, previous=old), by=by,
                         if_match=if_match), True


def preview(deps: Deps, body: Any, definition_id: int | None = None) -> dict[str, Any]:
    """What a POST (or a PUT of `definition_id`) would store, as reads show it, saving nothing: the
    command line diffs it against the current revision (the server fills defaults and checks slots).
    `changed` says whether a PUT would make a new revision, which a diff of redacted bodies cannot
    show when only a secret value changes."""
    if definition_id is None:
        return {"definition": shown(validate(deps, body)), "changed": True}
    _, old = current_body(deps, definition_id)
    data = validate(deps, body, previous=old)
    return {"definition": shown(data), "changed": not _unchanged(body, old)}


STAGE_NAME_MAX = 64
"""A stage name's length limit (shared.schemas.fields.Name)."""


def copy_name(stage: str, taken: list[str]) -> str:
    """Azure DevOps' name for a cloned stage, "Copy of <stage>", made unique as "Copy of <stage> (2)",
    (3)... (stage names are unique case-insensitively) and cut to fit the name's length limit."""
    used = {name.casefold() for name in taken}
    for n in range(1, len(used) + 2):
        suffix = "" if n == 1 else f" ({n})"
        name = f"Copy of {stage}"[:STAGE_NAME_MAX - len(suffix)].rstrip() + suffix
        if name.casefold() not in used:
            return name
    raise AssertionError("unreachable: len(used) + 1 candidates cannot all be taken")


def clone_stage(deps: Deps, definition_id: int, stage: str, new_name: Any = None, *, by: str,
                if_match: str | None) -> dict[str, Any]:
    """A new revision with a copy of `stage` appended; `new_name` None: "Copy of <stage>" (see copy_name)."""
    def edit(old: dict[str, Any]) -> dict[str, Any]:
        source = next((s for s in old["stages"] if s["name"] == stage), None)
        if source is None:
            raise NotFound(f"definition {definition_id} has no stage '{stage}'")
        data = {k: v for k, v in old.items() if k not in ("id", "revision", "modifiedBy", "modifiedOn")}
        name = copy_name(source["name"], [s["name"] for s in old["stages"]]) if new_name is None else new_name
        clone = {**copy.deepcopy(source), "name": name}
        data["stages"] = [*data["stages"], clone]
        try:
            return validate(deps, data, previous=old)
        except Invalid as exc:
            # Errors point into the whole definition; the caller only sent `name`.
            last = f"stages[{len(data['stages']) - 1}].name"
            raise Invalid([FieldError("name", e.message) if e.field == last else e for e in exc.errors]) from None
    return _new_revision(deps, definition_id, edit, by=by, if_match=if_match)


def delete(deps: Deps, definition_id: int, *, by: str, if_match: str | None) -> None:
    head = current_head(deps, definition_id)
    _check_if_match(head, if_match)
    head.deleted, head.deleted_by, head.updated_at = True, by, deps.clock.now().isoformat()
    items = [outbox.index_item(deps, 0, Summary.of_definition(head))]
    try:
        deps.store.commit(Changes(definition_id, head=head, outbox=items))
    except ConcurrentChange:
        raise Conflict(f"definition {definition_id} changed meanwhile; read it again") from None
    outbox.flush(deps, definition_id, items)
    logger.info("definition %s deleted by %s", definition_id, by)


def _check_if_match(head: Head, if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", etag_of(head.revision), str(head.revision)):
        raise PreconditionFailed(f"definition {head.id} is at revision {head.revision}, not {if_match}")


def _new_revision(deps: Deps, definition_id: int, edit: Any, *, by: str, if_match: str | None) -> dict[str, Any]:
    head = current_head(deps, definition_id)
    _check_if_match(head, if_match)
    old = deps.store.revision(definition_id, head.revision)
    data = edit(old)
    now = deps.clock.now().isoformat()
    head.revision += 1
    head.name, head.updated_at = data["name"], now
    stored = _stamp(data, definition_id, head.revision, by, now)
    items = [outbox.index_item(deps, 0, Summary.of_definition(head)), *_registration(deps, definition_id, stored)]
    try:
        deps.store.commit(Changes(definition_id, head=head, revision=(head.revision, stored), outbox=items))
    except ConcurrentChange:
        raise PreconditionFailed(f"definition {definition_id} changed meanwhile; read it again") from None
    outbox.flush(deps, definition_id, items)
    return shown(stored)

"""The dashboard's pipeline editor: a working copy of a definition, changed one form at a time.

The working copy travels with every form as JSON (nothing is kept on the server between forms), the
fields a form shows are laid over it, then one action (add a stage, clone it, move a step...) is
applied. Nothing is stored until it is saved, and saving goes through the API's own validation and
revisions: a new revision with If-Match on the revision the editor started from. The copy is user
input like any request body: a malformed one is a 400 naming the field, never a 500.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shared import plugins
from shared.domain.errors import FieldError, Invalid, NotFound
from shared.domain.target import Target
from shared.ports import TargetError
from shared.schemas.definition import READ_ONLY, TargetIn, TriggerIn
from shared.services import definitions
from shared.services.deps import Deps

WIDGETS = "snbelmj"
"""How a form field is read: s text, n number, b checkbox, e choice, l list (commas or lines),
m several checkboxes, j JSON."""


@dataclass(frozen=True)
class Spec:
    """One field of a model as the editor shows it."""

    name: str
    widget: str
    options: tuple[str, ...] = ()
    default: Any = None
    required: bool = False


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
            return float if set(args) <= {int, float} else annotation
        return annotation


def _widget(annotation: Any) -> tuple[str, tuple[str, ...]]:
    kind = _unwrap(annotation)
    if kind is bool:
        return "b", ()
    if kind in (int, float):
        return "n", ()
    if get_origin(kind) is Literal:
        return "e", tuple(str(a) for a in get_args(kind))
    if kind is str:
        return "s", ()
    if get_origin(kind) is list and _unwrap(get_args(kind)[0]) is str:
        return "l", ()
    return "j", ()


@functools.cache
def specs(model: type[BaseModel], skip: tuple[str, ...] = ("type",)) -> tuple[Spec, ...]:
    """The model's fields as form fields, driven by its annotations (the API's own schema)."""
    out = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        widget, options = _widget(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append(Spec(info.alias or name, widget, options, default, info.is_required()))
    return tuple(out)


def step_kinds() -> dict[str, type[BaseModel]]:
    """Every step kind the plugin registry holds, built-in or a plugin's, by its `type`."""
    kinds: dict[str, type[BaseModel]] = {}
    for model in plugins.current().step_models():
        tag = get_args(_unwrap(model.model_fields["type"].annotation))
        if tag:
            kinds[str(tag[0])] = model
    return dict(sorted(kinds.items()))


@functools.cache
def manual_takes_stages() -> bool:
    """Whether a manual trigger may name the stages a release must have succeeded in (then a new
    manual stage after others names the one before it)."""
    try:
        TriggerIn.model_validate({"type": "manual", "stages": ["A"]})
    except ValidationError:
        return False
    return True


# -- the working copy


def empty() -> dict[str, Any]:
    return {"name": "", "artifacts": [{"alias": "", "source": ""}], "stages": []}


def working_copy(body: Any) -> dict[str, Any]:
    """A definition body as the editor holds it (read-only fields dropped), or a 400 when it cannot
    be one: the parts the editor walks must have the right shapes."""
    bad = Invalid([FieldError("draft", "the working copy is not a definition; reload the editor")])
    if not isinstance(body, dict):
        raise bad
    data = {k: v for k, v in body.items() if k not in READ_ONLY}
    data.setdefault("stages", [])
    data.setdefault("artifacts", [])
    if not isinstance(data["stages"], list) or not isinstance(data["artifacts"], list) or len(data["stages"]) > 200:
        raise bad
    if not all(isinstance(s, dict) for s in data["stages"]) or not all(isinstance(a, dict) for a in data["artifacts"]):
        raise bad
    if _depth(data) > MAX_DEPTH:
        raise bad
    for stage in data["stages"]:
        if not isinstance(stage.get("trigger", {}), dict) or not isinstance(stage.get("steps", []), list) \
                or not isinstance(stage.get("target", {}), dict) or not isinstance(stage.get("name", ""), str):
            raise bad
        if not all(isinstance(s, dict) and isinstance(s.get("type", ""), str) for s in stage.get("steps", [])):
            raise bad
        if not isinstance(stage.get("trigger", {}).get("type", ""), str):
            raise bad
        stage.setdefault("steps", [])
        stage.setdefault("target", {})
        stage.setdefault("trigger", {"type": "manual"})
    return data


MAX_DEPTH = 24
"""Deeper than any definition nests (a gate's signal's headers are 8 levels down)."""


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def loads(text: str, field: str) -> Any:
    """JSON from a form field, refused (naming the field) when it is not JSON or nests too deep."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Invalid([FieldError(field, f"not valid JSON: {str(exc)[:200]}")]) from None
    if _depth(value) > MAX_DEPTH:
        raise Invalid([FieldError(field, f"nests deeper than {MAX_DEPTH} levels")])
    return value


def stage_names(draft: dict[str, Any]) -> list[str]:
    return [str(s.get("name", "")) for s in draft["stages"]]


_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\[\d{1,3}\]|\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,10}")
_PART = re.compile(r"\[(\d+)\]|\.?([A-Za-z_][A-Za-z0-9_]*)")


def _parts(path: str) -> list[str | int]:
    if not _PATH.fullmatch(path):
        raise Invalid([FieldError(path[:100] or "field", "not a field of a definition")])
    return [int(i) if i else name for i, name in _PART.findall(path)]


def _child(node: Any, key: str | int, want: type, create: bool, path: str) -> Any:
    bad = Invalid([FieldError(path, "does not fit the working copy; reload the editor")])
    if isinstance(node, dict) and isinstance(key, str):
        if node.get(key) is None:
            if not create:
                return None
            node[key] = want()
        found = node[key]
    elif isinstance(node, list) and isinstance(key, int):
        if key == len(node) and create:
            node.append(want())
        if key >= len(node):
            if not create:
                return None
            raise bad
        found = node[key]
    else:
        raise bad
    if not isinstance(found, want):
        raise bad
    return found


GROWING = ("schedules",)
"""Lists a field may add an item to (a trigger's first schedule); stages, steps and artifacts are
added by the editor's actions only."""


def put(draft: dict[str, Any], path: str, value: Any, *, delete: bool = False) -> None:
    """Set (or remove) the value at `path` (`stages[0].target.slot`), making the objects on the way."""
    parts = _parts(path)
    node: Any = draft
    for before, here, after in zip([None, *parts], parts, parts[1:], strict=False):
        grow = not delete and (isinstance(here, str) or before in GROWING)
        node = _child(node, here, list if isinstance(after, int) else dict, grow, path)
        if node is None:
            if delete:
                return
            raise Invalid([FieldError(path, "names nothing in the working copy; reload the editor")])
    last = parts[-1]
    if not isinstance(node, dict) or not isinstance(last, str):
        raise Invalid([FieldError(path, "does not fit the working copy; reload the editor")])
    if delete:
        node.pop(last, None)
    else:
        node[last] = value


def _number(text: str) -> Any:
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text  # the schema names the field and says what it wants
    return value if math.isfinite(value) else text


def overlay(draft: dict[str, Any], fields: dict[str, list[str]]) -> list[FieldError]:
    """Lay the form's fields (`<widget>:<path>`) over the working copy; a stage renamed here is
    renamed in the triggers that name it. Returns what could not be read (bad JSON)."""
    before = stage_names(draft)
    errors: list[FieldError] = []
    for key, values in fields.items():
        widget, sep, path = key.partition(":")
        if not sep or len(widget) != 1 or widget not in WIDGETS:
            continue
        text = values[-1].strip() if values else ""
        if widget == "b":
            put(draft, path, text == "true")
        elif widget == "m":
            put(draft, path, [v for v in values if v])
        elif widget == "l":
            put(draft, path, [v.strip() for v in re.split(r"[,\n]", text) if v.strip()])
        elif not text:
            put(draft, path, None, delete=True)
        elif widget == "n":
            put(draft, path, _number(text))
        elif widget == "j":
            try:
                put(draft, path, loads(text, path))
            except Invalid as exc:
                put(draft, path, text)
                errors += exc.errors
        else:
            put(draft, path, text)
    after = stage_names(draft)
    renamed = {old: new for old, new in zip(before, after, strict=False) if old != new and old}
    if renamed:
        for stage in draft["stages"]:
            trigger = stage.get("trigger") or {}
            if isinstance(trigger.get("stages"), list):
                trigger["stages"] = [renamed.get(s, s) if isinstance(s, str) else s for s in trigger["stages"]]
    tidy(draft)
    return errors


OPTIONAL_OBJECTS = ("queue", "preGates", "postGates", "retention")


def tidy(draft: dict[str, Any]) -> None:
    """Drop what the chosen options make meaningless, so that the schema judges what was meant: the
    stages of a trigger type that has none, approvals without approvers, objects left empty."""
    with_stages = {"afterStages", "schedule", *(("manual",) if manual_takes_stages() else ())}
    for stage in draft["stages"]:
        trigger = stage.get("trigger")
        if isinstance(trigger, dict):
            kind = trigger.get("type")
            if kind != "schedule":
                trigger.pop("schedules", None)
            elif isinstance(trigger.get("schedules"), list):
                trigger["schedules"] = [s for s in trigger["schedules"] if not isinstance(s, dict) or s.get("cron")]
            if kind not in with_stages:
                trigger.pop("stages", None)
            if kind not in with_stages:
                trigger.pop("allowPartialSuccess", None)
        target = stage.get("target")
        if isinstance(target, dict) and str(target.get("slot", "")).lower() in ("", "production"):
            target.pop("slot", None)
        for key in ("preApprovals", "postApprovals"):
            if isinstance(stage.get(key), dict) and not stage[key].get("approvers"):
                stage.pop(key)
        for key in OPTIONAL_OBJECTS:
            if stage.get(key) == {}:
                stage.pop(key)
    if draft.get("retention") == {}:
        draft.pop("retention")


def _unique(draft: dict[str, Any], wanted: str) -> str:
    taken = {n.casefold() for n in stage_names(draft)}
    name, n = wanted, 2
    while name.casefold() in taken:
        name, n = f"{wanted} ({n})", n + 1
    return name


def add_stage(draft: dict[str, Any], name: str) -> int:
    """A new stage at the end: after the release when it is the first; else manual, naming the stage
    before it as the one a release must have succeeded in (when manual triggers take stages). Its app
    is the previous stage's (another slot is one choice away)."""
    stages = draft["stages"]
    trigger: dict[str, Any] = {"type": "afterRelease"} if not stages else {"type": "manual"}
    if stages and manual_takes_stages() and isinstance(stages[-1].get("name"), str):
        trigger["stages"] = [stages[-1]["name"]]
    target = {k: v for k, v in (stages[-1].get("target") or {}).items() if k != "slot"} if stages else {}
    stages.append({"name": _unique(draft, name.strip() or f"Stage {len(stages) + 1}"), "target": target,
                   "trigger": trigger, "steps": []})
    return len(stages) - 1


def clone_stage(draft: dict[str, Any], index: int) -> int:
    """Azure DevOps' clone: the same stage, named "Copy of <stage>", at the end."""
    source = _stage(draft, index)
    clone = {**copy.deepcopy(source), "name": definitions.copy_name(str(source.get("name", "")), stage_names(draft))}
    draft["stages"].append(clone)
    return len(draft["stages"]) - 1


def delete_stage(draft: dict[str, Any], index: int) -> None:
    """Remove the stage and its name from the triggers that wait for it (a stage left waiting for
    nothing starts after the release)."""
    name = _stage(draft, index).get("name")
    del draft["stages"][index]
    for stage in draft["stages"]:
        trigger = stage.get("trigger") or {}
        if isinstance(trigger.get("stages"), list) and name in trigger["stages"]:
            trigger["stages"] = [s for s in trigger["stages"] if s != name]
            if not trigger["stages"] and trigger.get("type") == "afterStages":
                stage["trigger"] = {"type": "afterRelease"}


def move(items: list[Any], index: int, offset: int) -> None:
    other = index + offset
    if 0 <= index < len(items) and 0 <= other < len(items):
        items[index], items[other] = items[other], items[index]


def _stage(draft: dict[str, Any], index: int) -> dict[str, Any]:
    if not 0 <= index < len(draft["stages"]):
        raise Invalid([FieldError("action", f"there is no stage {index}")])
    return draft["stages"][index]  # type: ignore[no-any-return]


def steps_of(draft: dict[str, Any], index: int) -> list[dict[str, Any]]:
    return _stage(draft, index)["steps"]  # type: ignore[no-any-return]


def add_step(draft: dict[str, Any], index: int, kind: str) -> None:
    if kind not in step_kinds():
        raise Invalid([FieldError("newStepKind", f"no step kind '{kind}'")])
    steps_of(draft, index).append({"type": kind})


def remove(items: list[Any], index: int, field: str) -> None:
    if not 0 <= index < len(items):
        raise Invalid([FieldError(field, f"there is no item {index}")])
    del items[index]


# -- validation and saving


def problems(deps: Deps, draft: dict[str, Any], definition_id: int | None) -> list[FieldError]:
    """What saving the working copy would refuse: the API's validation, slots checked against the apps."""
    previous = definitions.current_body(deps, definition_id)[1] if definition_id is not None else None
    try:
        definitions.validate(deps, draft, previous=previous)
    except Invalid as exc:
        return list(exc.errors)
    return []


def save(deps: Deps, definition_id: int | None, draft: dict[str, Any], base: int | None, *,
         by: str) -> dict[str, Any]:
    """A new definition, or a new revision of it when the working copy changes it; If-Match on the
    revision the editor started from, so a change made meanwhile is a 412, not overwritten."""
    if definition_id is None:
        return definitions.create(deps, draft, by=by)
    if base is None:
        raise Invalid([FieldError("base", "the revision the editor started from; reload the editor")])
    updated, _new = definitions.update(deps, definition_id, draft, by=by, if_match=definitions.etag_of(base))
    return updated


def restore(deps: Deps, definition_id: int, revision: int, *, by: str, if_match: str) -> dict[str, Any]:
    """A new revision with an old revision's body (its secret values included), If-Match guarded."""
    old = deps.store.revision(definition_id, revision)
    if old is None:
        raise NotFound(f"definition {definition_id} has no revision {revision}")
    body = {k: v for k, v in old.items() if k not in READ_ONLY}
    updated, _new = definitions.update(deps, definition_id, body, by=by, if_match=if_match)
    return updated


def normalized(body: dict[str, Any]) -> list[str]:
    """A body as diffable lines: keys sorted, read-only fields left out (secrets are already redacted)."""
    shown = {k: v for k, v in body.items() if k not in READ_ONLY}
    return json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def diff(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str) -> list[str]:
    return list(difflib.unified_diff(normalized(old), normalized(new), old_name, new_name, lineterm=""))


def slot_choices(deps: Deps, target: Any) -> list[str] | None:
    """The slots of the stage's app ("production" first), or None when the target is incomplete or
    the app cannot be read now (then the slot is typed, and checked on save)."""
    if not isinstance(target, dict):
        return None
    try:
        TargetIn.model_validate({**{k: v for k, v in target.items() if k != "slot"}})
    except ValidationError:
        return None
    try:
        return deps.app_service.slots(Target.from_dict(target))
    except TargetError:
        return None

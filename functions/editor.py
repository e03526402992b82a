"""The pipeline editor in the dashboard: create a definition, change it, see and restore its revisions.

Server-rendered like the rest of the dashboard: the editor page is one form whose buttons each post
the whole working copy (a JSON field) plus the fields on show; the server lays the fields over the
copy, applies the button's action and shows the page again, diagram and field errors included.
Saving is the API's own create or update (same schema, If-Match on the revision the editor started
from). Release managers and admins edit; readers see the same page read-only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import azure.functions as func

from functions.dashboard import Handler, _digits, _see_other, dispatch, page
from functions.lazy import lazy
from functions.web import diagram
from functions.web.render import HEADERS, environment
from shared import bootstrap
from shared.domain.access import ADMIN, Principal, require
from shared.domain.errors import FieldError, Invalid, PreconditionFailed

if TYPE_CHECKING:
    from shared.schemas import definition as definition_schemas
    from shared.services import definitions, editing
else:
    definition_schemas = lazy("shared.schemas.definition")
    definitions = lazy("shared.services.definitions")
    editing = lazy("shared.services.editing")

bp = func.Blueprint()
PAGES: list[tuple[re.Pattern[str], Handler]] = []
FORMS: list[tuple[re.Pattern[str], Handler]] = []
MAX_FORM_BYTES = 1_000_000
"""A working copy of 50 stages of 50 steps fits; anything larger is refused, not truncated."""


@bp.route(route="editor/{*path}", methods=["GET", "HEAD", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def pipeline_editor(req: func.HttpRequest) -> func.HttpResponse:
    """The dashboard's dispatch (same sign-in, roles, same-origin check and error pages) for `/editor/...`."""
    path = (req.route_params.get("path") or "").strip("/")
    return dispatch(req, path, PAGES, FORMS, f"/editor/{path}")


def _form(req: func.HttpRequest) -> dict[str, list[str]]:
    raw = req.get_body() or b""
    if len(raw) > MAX_FORM_BYTES:
        raise Invalid([FieldError("draft", f"the form is larger than {MAX_FORM_BYTES} bytes")])
    try:
        return parse_qs(raw.decode(errors="replace"), keep_blank_values=True, max_num_fields=20000)
    except ValueError:
        raise Invalid([FieldError("draft", "the form has too many fields")]) from None


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[-1]


# -- what the page shows


@dataclass
class Editing:
    """One showing of the editor page."""

    draft: dict[str, Any]
    definition_id: int | None
    base: int | None
    focus: int = 0
    errors: list[FieldError] = field(default_factory=list)
    readonly: bool = False
    notice: str = ""
    conflict: dict[str, Any] | None = None
    status: int = 200


def _drawable(draft: dict[str, Any]) -> dict[str, Any]:
    """The working copy as the diagram reads it, whatever the copy holds."""
    stages = []
    for stage in draft["stages"]:
        trigger = stage.get("trigger") or {}
        given = trigger.get("stages")
        upstream: list[Any] = given if isinstance(given, list) else []
        stages.append({"name": str(stage.get("name", "")),
                       "trigger": {"type": str(trigger.get("type", "manual")),
                                   "stages": [s for s in upstream if isinstance(s, str)]},
                       **{k: {"approvers": [str(p) for p in stage[k]["approvers"]],
                              "policy": str(stage[k].get("policy", "allInAnyOrder"))}
                          for k in ("preApprovals", "postApprovals")
                          if isinstance(stage.get(k), dict) and isinstance(stage[k].get("approvers"), list)},
                       **{k: True for k in ("preGates", "postGates") if stage.get(k)}})
    return {"name": str(draft.get("name", "")), "stages": stages}


def _as_json(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _humanize(name: str) -> str:
    """`verifyTimeoutSeconds` as a label: "Verify timeout seconds" (the field's path is its title)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]


EXACT = ("stages", "artifacts")
"""Anchors for errors about the list itself; an error inside one stage not shown goes to the summary."""


def _under(error: str, anchor: str) -> bool:
    return error == anchor or (anchor not in EXACT and error.startswith(anchor) and error[len(anchor)] in ".[")


def _show(who: Principal, state: Editing) -> func.HttpResponse:
    """Render twice: the first pass learns which fields the page shows, so that each error is shown
    beside the field it names (or the nearest enclosing part shown), and the rest in the summary."""
    deps = bootstrap.deps()
    shown: list[str] = []
    placed: dict[str, list[str]] = {}

    def first_pass(path: str) -> list[str]:
        shown.append(path)
        return []

    slots = {i: editing.slot_choices(deps, s.get("target")) for i, s in enumerate(state.draft["stages"])
             if i == state.focus}
    context = dict(who=who, e=state, draft=state.draft, stages=state.draft["stages"], focus=state.focus,
                   names=editing.stage_names(state.draft), slots=slots, as_json=_as_json, humanize=_humanize,
                   stage_of=_stage_of,
                   kinds=editing.step_kinds(), specs=editing.specs, models=_models(),
                   manual_takes_stages=editing.manual_takes_stages(),
                   diagram=diagram.layout(_drawable(state.draft)), box=diagram, definition=_drawable(state.draft))
    template = environment().get_template("editor_edit.html")
    template.render(**context, anchor=first_pass, summary=[])
    summary = []
    for error in state.errors:
        home = max((a for a in shown if _under(error.field, a)), key=len, default=None)
        if home is None:
            summary.append(error)
        else:
            placed.setdefault(home, []).append(error.message)
    text = template.render(**context, anchor=lambda path: placed.get(path, []), summary=summary)
    return func.HttpResponse(text, status_code=state.status, mimetype="text/html", charset="utf-8",
                             headers=dict(HEADERS))


def _models() -> dict[str, Any]:
    """The models whose fields the editor's forms show, by the name the templates use."""
    schemas = definition_schemas
    return {"definition": schemas.DefinitionIn, "artifact": schemas.ArtifactIn, "stage": schemas.StageIn,
            "target": schemas.TargetIn, "trigger": schemas.TriggerIn, "schedule": schemas.ScheduleIn,
            "approvals": schemas.ApprovalsIn, "gates": schemas.GatesIn, "queue": schemas.QueueIn}


def _stage_of(field_name: str) -> int | None:
    found = re.match(r"stages\[(\d+)\]", field_name)
    return int(found[1]) if found else None


# -- pages


@page(r"new", PAGES)
def new_pipeline(req: func.HttpRequest, who: Principal, _: dict[str, str]) -> func.HttpResponse:
    require(who, ADMIN, "create pipelines")
    return _show(who, Editing(editing.empty(), None, None))


@page(r"(?P<id>\d+)", PAGES)
def edit_pipeline(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    current = definitions.get(bootstrap.deps(), int(route["id"]))
    saved = req.params.get("saved", "")
    state = Editing(editing.working_copy(current), current["id"], current["revision"],
                    readonly=not who.has(ADMIN),
                    notice=f"Saved as revision {saved}." if saved.isdigit() else "")
    return _show(who, state)


@page(r"(?P<id>\d+)/history", PAGES)
def history(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    definition_id = int(route["id"])
    current = definitions.get(deps, definition_id)
    items = sorted(definitions.revisions(deps, definition_id), key=lambda r: -int(r["revision"]))
    restored = req.params.get("restored", "")
    return _render("editor_history.html", who=who, definition=current, revisions=items,
                   can_edit=who.has(ADMIN), restored=restored if restored.isdigit() else "")


@page(r"(?P<id>\d+)/diff", PAGES)
def compare(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    deps = bootstrap.deps()
    definition_id = int(route["id"])
    current = definitions.get(deps, definition_id)
    high = int(current["revision"])
    b = _digits(req.params.get("b") or str(high), "b", low=1, high=high)
    a = _digits(req.params.get("a") or str(max(1, b - 1)), "a", low=1, high=high)
    old, new = definitions.get(deps, definition_id, a), definitions.get(deps, definition_id, b)
    lines = editing.diff(old, new, f"revision {a}", f"revision {b}")
    return _render("editor_diff.html", who=who, definition=current, a=a, b=b, lines=lines, old=old, new=new,
                   revisions=range(high, 0, -1))


def _render(template: str, **context: Any) -> func.HttpResponse:
    text = environment().get_template(template).render(**context)
    return func.HttpResponse(text, status_code=200, mimetype="text/html", charset="utf-8", headers=dict(HEADERS))


# -- forms


@page(r"(?P<id>\d+)/restore", FORMS)
def restore(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    """"Restore this revision": a new revision with its body, If-Match on the revision the page showed."""
    require(who, ADMIN, "change pipelines")
    form = _form(req)
    revision = _digits(_one(form, "revision"), "revision", low=1)
    base = _digits(_one(form, "base"), "base", low=1)
    definition_id = int(route["id"])
    updated = editing.restore(bootstrap.deps(), definition_id, revision, by=who.name,
                              if_match=definitions.etag_of(base))
    return _see_other(f"/editor/{definition_id}/history?restored={updated['revision']}")


ACTION = re.compile(r"(?P<verb>[a-z-]{1,20})(?::(?P<i>\d{1,3}))?(?::(?P<j>\d{1,3}))?")


@page(r"new", FORMS)
def post_new(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    return _post(req, who, None)


@page(r"(?P<id>\d+)", FORMS)
def post_edit(req: func.HttpRequest, who: Principal, route: dict[str, str]) -> func.HttpResponse:
    definitions.current_head(bootstrap.deps(), int(route["id"]))  # a 404 for a deleted pipeline
    return _post(req, who, int(route["id"]))


def _post(req: func.HttpRequest, who: Principal, definition_id: int | None) -> func.HttpResponse:
    require(who, ADMIN, "change pipelines")
    deps = bootstrap.deps()
    form = _form(req)
    draft = editing.working_copy(editing.loads(_one(form, "draft"), "draft"))
    base = _digits(_one(form, "base"), "base", low=1) if _one(form, "base") and definition_id else None
    focus = _digits(_one(form, "focus") or "0", "focus", high=10**4)
    state = Editing(draft, definition_id, base, focus, errors=editing.overlay(draft, form))
    found = ACTION.fullmatch(_one(form, "action") or "apply")
    if found is None:
        raise Invalid([FieldError("action", "not an action of the editor")])
    verb, i, j = found["verb"], int(found["i"] or 0), int(found["j"] or 0)
    if verb == "save" and not state.errors:
        try:
            saved = editing.save(deps, definition_id, draft, base, by=who.name)
        except Invalid as exc:
            state.errors = list(exc.errors)
        except PreconditionFailed:
            return _show(who, _conflict(state))
        else:
            return _see_other(f"/editor/{saved['id']}?saved={saved['revision']}")
    else:
        _act(state, verb, i, j, _one(form, "newStage"), _one(form, "newStepKind"))
        if definition_id is not None and verb == "keep-mine":
            state.base = definitions.current_head(deps, definition_id).revision
        state.errors += [e for e in editing.problems(deps, draft, definition_id)
                         if state.draft["stages"] or e.field != "stages"]
    if state.errors:
        state.status = 400 if verb == "save" else 200
        in_focus = any(_stage_of(e.field) == state.focus for e in state.errors)
        first = next((s for e in state.errors if (s := _stage_of(e.field)) is not None), None)
        if verb == "save" and not in_focus and first is not None:
            state.focus = first
    state.focus = min(state.focus, max(0, len(draft["stages"]) - 1))
    return _show(who, state)


def _act(state: Editing, verb: str, i: int, j: int, new_stage: str, new_kind: str) -> None:
    """The button's action on the working copy (`apply` only lays the fields over it)."""
    draft = state.draft
    if verb == "select":
        state.focus = i
    elif verb == "add-stage":
        state.focus = editing.add_stage(draft, new_stage)
    elif verb == "clone-stage":
        state.focus = editing.clone_stage(draft, i)
    elif verb == "delete-stage":
        editing.delete_stage(draft, i)
        state.focus = max(0, i - 1)
    elif verb in ("stage-up", "stage-down"):
        offset = -1 if verb == "stage-up" else 1
        editing.move(draft["stages"], i, offset)
        state.focus = max(0, min(i + offset, len(draft["stages"]) - 1))
    elif verb == "add-step":
        editing.add_step(draft, i, new_kind)
    elif verb in ("step-up", "step-down"):
        editing.move(editing.steps_of(draft, i), j, -1 if verb == "step-up" else 1)
    elif verb == "remove-step":
        editing.remove(editing.steps_of(draft, i), j, "action")
    elif verb == "add-artifact":
        draft["artifacts"].append({"alias": "", "source": ""})
    elif verb == "remove-artifact":
        editing.remove(draft["artifacts"], i, "action")
    elif verb not in ("apply", "save", "keep-mine"):
        raise Invalid([FieldError("action", f"not an action of the editor: {verb}")])


def _conflict(state: Editing) -> Editing:
    """Someone saved the pipeline since the editor started from `base`: show what they changed,
    keep the working copy, and let the user decide (nothing is overwritten)."""
    deps = bootstrap.deps()
    assert state.definition_id is not None and state.base is not None
    theirs = definitions.get(deps, state.definition_id)
    started = definitions.get(deps, state.definition_id, state.base)
    state.conflict = {"revision": theirs["revision"], "by": theirs.get("modifiedBy", ""),
                      "lines": editing.diff(started, theirs, f"revision {state.base} (yours started here)",
                                            f"revision {theirs['revision']} (saved meanwhile)")}
    state.status = 409
    return state

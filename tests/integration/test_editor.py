"""The pipeline editor through the host's HTTP function, posting forms as a browser does (every
field the page shows, with the values it shows, plus what the user changed): create a pipeline,
shape its stages, see field errors beside their fields, meet a concurrent change without
overwriting it, and walk the revision history."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions import editor
from shared.services import definitions, editing
from tests.integration.conftest import World, stage
from tests.integration.test_approvals_api import AMITA as RELEASE_MANAGER
from tests.integration.test_approvals_api import TIM
from tests.integration.test_http_api import api, as_  # noqa: F401  (fixture)

ADMIN = as_("ada@contoso.com", roles=["Slipway.Admin"])
AMITA = as_("amita@contoso.com", roles=["Slipway.Admin"])
"""Editing a pipeline is an admin's, as `PUT /api/definitions/{id}` is."""
SUB = "00000000-0000-0000-0000-000000000000"


def visit(path: str, method: str = "GET", form: list[tuple[str, str]] | dict[str, str] | None = None,
          headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> func.HttpResponse:
    data = urlencode(form or {}).encode()
    req = func.HttpRequest(method, f"http://localhost/editor/{path}", body=data, headers=headers or {},
                           params=params or {}, route_params={"path": path})
    resp: func.HttpResponse = editor.pipeline_editor(req)
    return resp


def text(resp: func.HttpResponse) -> str:
    return resp.get_body().decode()


class Form(HTMLParser):
    """The fields of the page's `#editor` form as a browser would submit them (no button yet)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.inside = False
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.option: dict[str, str | None] | None = None
        self.textarea: str | None = None
        self.text = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == "editor"
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit",):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, html.unescape(a.get("value") or "")))
        elif tag == "select" and name:
            self.select, self.options = name, []
        elif tag == "option" and self.select:
            self.option, self.text = a, ""
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_data(self, data: str) -> None:
        if self.option is not None or self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "option" and self.option is not None:
            value = self.option["value"] if self.option.get("value") is not None else self.text.strip()
            self.options.append((str(value), "selected" in self.option))
            self.option = None
        elif tag == "select" and self.select:
            chosen = next((v for v, sel in self.options if sel), self.options[0][0] if self.options else "")
            self.fields.append((self.select, chosen))
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.fields.append((self.textarea, self.text.removeprefix("\n")))
            self.textarea = None


def press(page: func.HttpResponse, action: str, changes: dict[str, str | list[str]] | None = None,
          headers: dict[str, str] = AMITA, path: str | None = None) -> func.HttpResponse:
    """Change fields of the page's form, then press the button whose value is `action`."""
    body = text(page)
    fields = Form(body).fields
    for name, value in (changes or {}).items():
        fields = [(n, v) for n, v in fields if n != name]
        fields += [(name, v) for v in (value if isinstance(value, list) else [value])]
    fields.append(("action", action))
    target = path or html.unescape(body.split('<form method="post" action="/editor/', 1)[1].split('"', 1)[0])
    return visit(target, "POST", fields, headers=headers)


def draft_of(page: func.HttpResponse) -> dict[str, Any]:
    return json.loads(dict(Form(text(page)).fields)["draft"])  # type: ignore[no-any-return]


def error_beside(page: func.HttpResponse, path: str) -> str:
    """The error message shown beside the field named `path`."""
    body = text(page)
    marker = f'id="err-{html.escape(path)}"'
    assert marker in body, f"no error beside {path}"
    return html.unescape(body.split(marker, 1)[1].split(">", 1)[1].split("<", 1)[0])


def target(slot: str | None = None) -> dict[str, str]:
    out = {"s:stages[0].target.subscriptionId": SUB, "s:stages[0].target.resourceGroup": "rg-tailspin",
           "s:stages[0].target.site": "tailspin"}
    return {**out, **({"e:stages[0].target.slot": slot} if slot is not None else {})}


def test_a_release_manager_creates_a_pipeline_stage_by_stage(api: World) -> None:  # noqa: F811
    api.app_service.known_slots = ["production", "qa", "staging"]
    page = visit("new", headers=AMITA)
    assert page.status_code == 200 and 'id="editor"' in text(page) and "No stages yet" in text(page)
    page = press(page, "add-stage", {"s:name": "Tailspin", "s:artifacts[0].alias": "web",
                                     "s:artifacts[0].source": "tailspin-web", "newStage": "Production"})
    assert page.status_code == 200
    assert draft_of(page)["stages"][0]["trigger"] == {"type": "afterRelease"}
    assert 'data-stage="Production"' in text(page)  # the diagram shows the new stage
    page = press(page, "add-step:0", {**target(), "newStepKind": "deploy-package"})
    assert '<select id="f-stages[0].target.slot"' in text(page)  # the app's slots, read from it
    assert ">staging</option>" in text(page)
    page = press(page, "clone-stage:0", {"s:stages[0].steps[0].verifyPath": "/health"})
    assert [s["name"] for s in draft_of(page)["stages"]] == ["Production", "Copy of Production"]
    page = press(page, "apply", {"s:stages[1].name": "QA", "e:stages[1].target.slot": "qa"})
    page = press(page, "select:0")
    page = press(page, "apply", {"e:stages[0].trigger.type": "afterStages", "m:stages[0].trigger.stages": ["", "QA"],
                                 "l:stages[0].preApprovals.approvers": "tim@contoso.com",
                                 "e:stages[0].preApprovals.policy": "anyOne"})
    assert "after QA" in text(page)  # the diagram follows the trigger
    saved = press(page, "save")
    assert saved.status_code == 303, text(saved)
    did = int(saved.headers["Location"].split("/")[2].split("?")[0])
    stored = definitions.get(api.deps, did)
    assert stored["revision"] == 1 and stored["modifiedBy"] == "amita@contoso.com"
    production, qa = stored["stages"]
    assert production["trigger"]["type"] == "afterStages" and production["trigger"]["stages"] == ["QA"]
    assert production["preApprovals"]["approvers"] == ["tim@contoso.com"]
    assert production["preApprovals"]["policy"] == "anyOne"
    assert "slot" not in production["target"] and qa["target"]["slot"] == "qa"
    assert qa["trigger"]["type"] == "afterRelease" and qa["steps"][0]["verifyPath"] == "/health"
    again = visit(saved.headers["Location"].removeprefix("/editor/").split("?")[0], headers=AMITA,
                  params={"saved": "1"})
    assert "Saved as revision 1." in text(again)
    unchanged = press(again, "save")  # nothing changed: no new revision
    assert unchanged.status_code == 303 and definitions.get(api.deps, did)["revision"] == 1


def test_renaming_and_deleting_a_stage_keep_the_triggers_that_name_it(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA"), stage("Production", {"type": "afterStages", "stages": ["QA"]}, slot="")])["id"]
    page = press(visit(str(did), headers=AMITA), "apply", {"s:stages[0].name": "Test"})
    assert draft_of(page)["stages"][1]["trigger"]["stages"] == ["Test"]
    page = press(page, "delete-stage:0")
    assert draft_of(page)["stages"][0]["trigger"] == {"type": "afterRelease"}
    assert definitions.get(api.deps, did)["revision"] == 1  # nothing is stored before Save


def test_a_new_manual_stage_after_others_names_its_previous_stage(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA")])["id"]
    page = press(visit(str(did), headers=AMITA), "add-stage", {"newStage": "Production"})
    trigger = draft_of(page)["stages"][1]["trigger"]
    assert trigger["type"] == "manual"
    assert trigger.get("stages") == (["QA"] if editing.manual_takes_stages() else None)


def test_field_errors_are_shown_beside_the_fields_they_name_and_nothing_is_saved(api: World) -> None:  # noqa: F811
    api.app_service.known_slots = ["production", "qa"]
    did = api.define([stage("QA", slot="qa")])["id"]
    page = visit(str(did), headers=AMITA)
    bad = press(page, "save", {"e:stages[0].trigger.type": "schedule",
                               "s:stages[0].trigger.schedules[0].cron": "every day",
                               "s:stages[0].steps[1].path": "no-slash",
                               "n:stages[0].steps[1].timeoutSeconds": "soon",
                               "l:stages[0].preApprovals.approvers": "tim@contoso.com",
                               "n:stages[0].preApprovals.required": "5",
                               "j:stages[0].windows": json.dumps([{"days": ["Mon"], "start": "17:00",
                                                                    "end": "09:00"}])})
    assert bad.status_code == 400
    assert "5-field cron" in error_beside(bad, "stages[0].trigger.schedules[0].cron")
    assert "should match pattern" in error_beside(bad, "stages[0].steps[1].path").lower() \
        or "pattern" in error_beside(bad, "stages[0].steps[1].path")
    assert "integer" in error_beside(bad, "stages[0].steps[1].timeoutSeconds")
    assert "`end` must be after `start`" in error_beside(bad, "stages[0].windows")
    assert "more than the 1 approvers" in error_beside(bad, "stages[0].preApprovals")
    assert definitions.get(api.deps, did)["revision"] == 1
    slot = press(visit(str(did), headers=AMITA), "save", {"e:stages[0].target.slot": "nowhere"})
    assert slot.status_code == 400 and "has no slot 'nowhere'" in error_beside(slot, "stages[0].target.slot")
    json_typo = press(visit(str(did), headers=AMITA), "save", {"j:stages[0].preGates.signals": "[{oops"})
    assert json_typo.status_code == 400 and "not valid JSON" in error_beside(json_typo, "stages[0].preGates.signals")


def test_a_concurrent_change_is_shown_and_not_overwritten(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA")])["id"]
    page = visit(str(did), headers=AMITA)
    theirs = {k: v for k, v in definitions.get(api.deps, did).items() if k not in ("id", "revision")}
    theirs["description"] = "changed by Ada meanwhile"
    definitions.update(api.deps, did, theirs, by="ada@contoso.com", if_match='"1"')
    clash = press(page, "save", {"s:description": "mine"})
    assert clash.status_code == 409
    body = html.unescape(text(clash))
    assert "Revision 2 was saved meanwhile by ada@contoso.com" in body
    assert '+  "description": "changed by Ada meanwhile"' in body
    assert draft_of(clash)["description"] == "mine"  # my change is kept, unsaved
    assert definitions.get(api.deps, did)["description"] == "changed by Ada meanwhile"
    mine = press(clash, "keep-mine")
    assert 'name="base" value="2"' in text(mine)
    assert press(mine, "save").status_code == 303
    assert definitions.get(api.deps, did)["description"] == "mine"


def test_history_diffs_any_two_revisions_and_restores_one(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA")], description="first")["id"]
    for words in ("second", "third"):
        body = {k: v for k, v in definitions.get(api.deps, did).items() if k not in ("id", "revision")}
        definitions.update(api.deps, did, {**body, "description": words}, by="ada@contoso.com", if_match=None)
    listing = text(visit(f"{did}/history", headers=TIM))
    assert all(f'data-revision="{r}"' in listing for r in (1, 2, 3)) and "Restore this revision" not in listing
    assert listing.count("ada@contoso.com") == 2
    diff = html.unescape(text(visit(f"{did}/diff", headers=TIM, params={"a": "1", "b": "3"})))
    assert '-  "description": "first",' in diff and '+  "description": "third",' in diff
    assert visit(f"{did}/diff", headers=TIM, params={"a": "9"}).status_code == 400
    assert visit(f"{did}/restore", "POST", {"revision": "1", "base": "3"}, headers=TIM).status_code == 403
    stale = visit(f"{did}/restore", "POST", {"revision": "1", "base": "2"}, headers=AMITA)
    assert stale.status_code == 412 and definitions.get(api.deps, did)["revision"] == 3
    done = visit(f"{did}/restore", "POST", {"revision": "1", "base": "3"}, headers=AMITA)
    assert done.status_code == 303 and done.headers["Location"] == f"/editor/{did}/history?restored=4"
    assert definitions.get(api.deps, did)["description"] == "first"
    assert "Restore this revision" in text(visit(f"{did}/history", headers=AMITA))


def test_readers_see_the_pipeline_read_only_and_cannot_change_it(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA")])["id"]
    page = visit(str(did), headers=TIM)
    assert page.status_code == 200 and 'id="read-only"' in text(page)
    assert '<fieldset class="plain" disabled>' in text(page)
    assert visit("new", headers=TIM).status_code == 403
    refused = press(visit(str(did), headers=AMITA), "save", {"s:description": "x"}, headers=TIM)
    assert refused.status_code == 403
    # A release manager releases and approves, but changing a pipeline is an admin's (as over the API).
    assert 'id="read-only"' in text(visit(str(did), headers=RELEASE_MANAGER))
    assert visit("new", headers=RELEASE_MANAGER).status_code == 403
    refused = press(visit(str(did), headers=AMITA), "save", {"s:description": "x"}, headers=RELEASE_MANAGER)
    assert refused.status_code == 403
    for cross in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        fields = [*Form(text(visit(str(did), headers=AMITA))).fields, ("s:description", "x"), ("action", "save")]
        assert visit(str(did), "POST", fields, headers={**AMITA, **cross}).status_code == 400
    assert definitions.get(api.deps, did)["revision"] == 1


@pytest.mark.parametrize("fields", [
    {"draft": "not json"},
    {"draft": "[" * 5000 + "]" * 5000},
    {"draft": json.dumps({"stages": []}), "j:variables": "[" * 40 + "]" * 40, "action": "save"},
    {"draft": json.dumps({"stages": [{"name": "x", "steps": [{"type": ["deploy-package"]}]}]})},
    {"draft": "[]"},
    {"draft": json.dumps({"stages": "abc"})},
    {"draft": json.dumps({"stages": [{"trigger": []}]})},
    {"draft": json.dumps({"stages": []}), "s:stages[0].name": "x"},
    {"draft": json.dumps({"stages": []}), "s:__class__..x": "x"},
    {"draft": json.dumps({"name": "x", "stages": []}), "s:name.inner": "x"},
    {"draft": json.dumps({"stages": []}), "action": "explode"},
    {"draft": json.dumps({"stages": []}), "action": "clone-stage:7"},
    {"draft": json.dumps({"stages": []}), "focus": "-1"},
])
def test_a_hostile_form_is_a_400_naming_the_field(api: World, fields: dict[str, str]) -> None:  # noqa: F811
    resp = visit("new", "POST", fields, headers=AMITA)
    assert resp.status_code == 400, text(resp)
    assert "<code>" in text(resp) or 'class="field-error"' in text(resp)  # the error page, or beside the field


def test_hostile_text_is_escaped_and_an_odd_working_copy_still_renders(api: World) -> None:  # noqa: F811
    evil = "<script>alert(1)</script>"
    draft = {"name": evil, "stages": [{"name": evil, "trigger": {"type": "afterStages", "stages": [[1], evil]},
                                       "target": {"site": evil}, "steps": [{"type": evil}]}]}
    page = visit("new", "POST", {"draft": json.dumps(draft), "action": "apply"}, headers=AMITA)
    assert page.status_code == 200 and evil not in text(page) and "&lt;script&gt;" in text(page)


HOSTILE_VALUES = ["", "x" * 5000, "<script>", "1e999", "[[[[", "{\"a\": 1}", "\u0000", "[" * 3000]


def test_no_field_of_the_page_takes_a_5xx_whatever_it_holds(api: World) -> None:  # noqa: F811
    steps: list[dict[str, Any]] = [{"type": k} for k in ("deploy-package", "http-check", "wait", "set-app-settings",
                                                         "swap")]
    rich = {**stage("QA", {"type": "afterRelease"}, steps=steps, slot="qa"),
            "preApprovals": {"approvers": ["tim@contoso.com"]}, "queue": {"parallel": 1},
            "preGates": {"signals": [{"type": "rest", "name": "up", "url": "https://x.example/health"}]}}
    steps[2]["seconds"] = 1
    did = api.define([rich, stage("Production", {"type": "afterStages", "stages": ["QA"]}, slot="")])["id"]
    fields = Form(text(visit(str(did), headers=AMITA))).fields
    names = sorted({n for n, _ in fields if n not in ("draft", "base")})
    assert len(names) > 60
    for name in names:
        for value in HOSTILE_VALUES:
            changed = [(n, v) for n, v in fields if n != name] + [(name, value), ("action", "save")]
            resp = visit(str(did), "POST", changed, headers=AMITA)
            assert resp.status_code < 500, (name, value[:20], text(resp)[:300])
            assert "<script>" not in text(resp)


def test_secret_setting_values_never_reach_the_page_and_survive_a_save(api: World) -> None:  # noqa: F811
    settings = {"type": "set-app-settings", "settings": {"DB_PASSWORD": "hunter2-secret"}}
    did = api.define([stage("QA", steps=[settings])])["id"]
    page = visit(str(did), headers=AMITA)
    assert "hunter2-secret" not in text(page)
    saved = press(page, "save", {"s:description": "a change elsewhere"})
    assert saved.status_code == 303 and "hunter2-secret" not in text(visit(str(did), headers=AMITA))
    stored = api.deps.store.revision(did, 2)
    assert stored is not None
    assert stored["stages"][0]["steps"][0]["settings"]["DB_PASSWORD"]["value"] == "hunter2-secret"
    history = text(visit(f"{did}/diff", headers=AMITA, params={"a": "1", "b": "2"}))
    assert "hunter2-secret" not in history and "a change elsewhere" in history


def test_an_error_in_another_stage_is_listed_with_a_way_to_it(api: World) -> None:  # noqa: F811
    did = api.define([stage("QA"), stage("Production", {"type": "afterStages", "stages": ["QA"]}, slot="")])["id"]
    page = press(visit(str(did), headers=AMITA), "select:1")
    bad = press(page, "apply", {"s:stages[1].name": "P" * 65})
    assert "at most 64 characters" in error_beside(bad, "stages[1].name")
    other = press(press(bad, "select:0"), "apply")
    assert 'value="select:1"' in text(other) and f"Show stage {'P' * 65}" in text(other)
    assert "<code>stages[1].name</code>" in text(other)

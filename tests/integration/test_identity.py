"""Who is calling, as the host hands requests to the functions: App Service authentication's
principal only when authentication is on, the sign-in name never from the display name or the
`-NAME` header, app tokens as automation, function keys checked against the host keys, groups by
object id, and acting as someone else only in development mode."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from functions import definitions_api as defs
from functions import releases_api as rels
from functions.identity import encode_principal
from shared.adapters.function_keys import FunctionKeys
from shared.domain.target import Target
from shared.ports import TargetError
from tests.integration.conftest import World
from tests.integration.test_approvals_api import AMITA, decide, production, release_in_production
from tests.integration.test_dashboard import visit
from tests.integration.test_http_api import GOOD, api, as_, call  # noqa: F401  (fixture)

MALLORY_AS_ADMIN = {"claims": [{"typ": "name", "val": "mallory@evil.example"},
                               {"typ": "preferred_username", "val": "mallory@evil.example"},
                               {"typ": "roles", "val": "Slipway.Admin"}]}
GROUP_ID = "7d3c6a52-7c1f-4b55-9d07-9a1c0b2e8f10"


def principal(body: Any) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(body).encode()).decode()}


def settings(world: World, **changes: str) -> None:
    world.deps.settings = world.deps.settings.__class__(**{**world.deps.settings.__dict__, **changes})


def test_a_principal_header_is_a_forgery_unless_app_service_authentication_is_on(api: World) -> None:  # noqa: F811
    settings(api, auth_mode="appservice", website_auth_enabled="")
    forged = principal(MALLORY_AS_ADMIN)
    status, problem = call(defs.definitions_collection, "POST", GOOD, headers=forged)
    assert status == 401 and "App Service authentication" in problem["detail"]
    assert visit("", headers=forged).status_code == 401
    assert visit("pipelines/1/releases", "POST", {}, headers=forged).status_code == 401
    settings(api, auth_mode="development")  # not even on the local stack: it acts as the dev identity only
    assert call(defs.definitions_collection, "GET", headers=forged)[0] == 401
    settings(api, auth_mode="appservice", website_auth_enabled="True")
    assert call(defs.definitions_collection, "POST", GOOD, headers=forged)[0] == 201  # the platform vouches


def test_the_name_is_the_sign_in_name_never_the_display_name_nor_the_name_header(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    settings(api, auth_mode="appservice")
    mallory = encode_principal("mallory@evil.example", display_name="tim@contoso.com")
    headers = {"X-MS-CLIENT-PRINCIPAL": mallory, "X-MS-CLIENT-PRINCIPAL-NAME": "tim@contoso.com"}
    status, problem = decide(rid, headers, tag=tag)
    assert status == 403 and "mallory@evil.example is not an approver" in problem["detail"]
    assert production(api, rid).current.approvals["pre"].votes == []


def test_roles_come_only_from_role_claims(api: World) -> None:  # noqa: F811
    settings(api, auth_mode="appservice")
    sneaky = {"auth_typ": "aad", "name_typ": "roles", "role_typ": "name",
              "claims": [{"typ": "name", "val": "Slipway.Admin"}, {"typ": "upn", "val": "eve@contoso.com"}]}
    status, problem = call(defs.definitions_collection, "POST", GOOD, headers=principal(sneaky))
    assert status == 403 and problem["detail"].startswith("eve@contoso.com may not")


@pytest.mark.parametrize("body", [[], "text", 7, None, {"claims": 7}, {"claims": ["x"]},
                                  {"claims": [{"typ": "upn", "val": 7}]}, {"claims": [{"typ": "upn"}]},
                                  {"claims": []}, {"claims": [{"typ": "upn", "val": "a@b"}], "role_typ": 5}],
                         ids=["list", "string", "number", "null", "claims-number", "claim-string", "val-number",
                              "no-val", "nobody", "role_typ-number"])
def test_a_malformed_principal_is_401_never_500(api: World, body: Any) -> None:  # noqa: F811
    settings(api, auth_mode="appservice")
    status, problem = call(defs.definitions_collection, "GET", headers=principal(body))
    assert status == 401, problem
    assert visit("", headers=principal(body)).status_code == 401


@pytest.mark.parametrize("raw", ["%%%", "e30", "x" * 70_000, base64.b64encode(b"\xff\xfe").decode(),
                                 base64.b64encode(b"[" * 100_000).decode()[:60_000]])
def test_an_undecodable_principal_is_401(api: World, raw: str) -> None:  # noqa: F811
    settings(api, auth_mode="appservice")
    assert call(defs.definitions_collection, "GET", headers={"X-MS-CLIENT-PRINCIPAL": raw})[0] == 401


def test_a_pipelines_entra_token_is_automation_with_its_app_roles(api: World) -> None:  # noqa: F811
    did = call(defs.definitions_collection, "POST", GOOD)[1]["id"]
    settings(api, auth_mode="appservice")
    pipeline = {"X-MS-CLIENT-PRINCIPAL": encode_principal("", ["Slipway.ReleaseManager"], app_id="a1b2c3")}
    api.deps.packages.blobs.add("tailspin-web/1.0.zip")  # type: ignore[attr-defined]
    art = {"alias": "web", "version": "1.0", "package": "tailspin-web/1.0.zip"}
    status, created = call(rels.releases_collection, "POST", {"definitionId": did, "artifacts": [art]},
                           headers=pipeline)
    assert status == 201, created
    assert created["createdBy"] == "app:a1b2c3"
    bare = {"X-MS-CLIENT-PRINCIPAL": encode_principal("", [], app_id="d4e5f6")}
    assert call(rels.releases_collection, "POST", {"definitionId": did}, headers=bare)[0] == 403
    assert call(rels.releases_collection, "GET", headers=bare)[0] == 200  # every signed-in caller reads


def test_a_function_key_must_be_a_host_key_and_names_the_automation(api: World) -> None:  # noqa: F811
    settings(api, auth_mode="appservice")
    assert call(rels.releases_collection, "GET", headers={"x-functions-key": "guessed"})[0] == 401
    assert call(rels.releases_collection, "GET", params={"code": "guessed"})[0] == 401
    key = api.deps.function_keys.keys["default"]  # type: ignore[attr-defined]
    assert call(rels.releases_collection, "GET", headers={"x-functions-key": key})[0] == 200
    assert call(rels.releases_collection, "GET", params={"code": key})[0] == 200
    status, problem = call(defs.definitions_collection, "POST", GOOD, headers={"x-functions-key": key})
    assert status == 403 and "automation (function key 'default')" in problem["detail"]
    status, problem = call(defs.definitions_collection, "GET")
    assert status == 401 and problem["title"] == "Unauthenticated"


def test_approvers_and_grants_by_group_object_id_or_a_mapped_name(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["management"], "policy": "anyOne"})
    settings(api, auth_mode="appservice", group_ids=f"management={GROUP_ID}")
    outsider = as_("ola@contoso.com", groups=["5f4dcc3b-0000-4000-8000-000000000000"])
    assert decide(rid, outsider, tag=tag)[0] == 403
    member = as_("maria@contoso.com", groups=[GROUP_ID])
    status, after = decide(rid, member, tag=tag)
    assert status == 200, after
    assert production(api, rid).current.approvals["pre"].status == "approved"
    settings(api, admins="management")
    assert call(defs.definitions_collection, "POST", GOOD, headers=member)[0] == 201


def test_an_approver_named_by_object_id(api: World) -> None:  # noqa: F811
    oid = "0c2f4e1a-1111-4222-8333-944455556666"
    rid, tag = release_in_production(api, {"approvers": [oid]})
    settings(api, auth_mode="appservice")
    impostor = {"X-MS-CLIENT-PRINCIPAL": encode_principal(oid, display_name=oid)}  # a UPN that looks like an oid
    tim = {"X-MS-CLIENT-PRINCIPAL": encode_principal("tim@contoso.com", object_id=oid)}
    assert decide(rid, {"X-MS-CLIENT-PRINCIPAL": encode_principal("eve@contoso.com")}, tag=tag)[0] == 403
    assert impostor  # an oid-looking UPN would be the tenant's own doing; the real one carries the oid claim
    status, after = decide(rid, tim, tag=tag)
    assert status == 200, after


def test_a_user_without_groups_in_the_token_is_told_why(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["management"]})
    settings(api, auth_mode="appservice")
    body = json.loads(base64.b64decode(encode_principal("maria@contoso.com")))
    body["claims"].append({"typ": "_claim_names", "val": '{"groups":"src1"}'})
    status, problem = decide(rid, principal(body), tag=tag)
    assert status == 403 and "groups" in problem["detail"] and "200" in problem["detail"]


def test_acting_as_someone_else_works_only_in_development_mode(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    settings(api, website_auth_enabled="")
    tim = {"X-Slipway-Acting-As": "tim@contoso.com"}
    status, after = decide(rid, tim, tag=tag)
    assert status == 200, after
    assert production(api, rid).current.approvals["pre"].votes[0].by == "tim@contoso.com"
    cookie = {"Cookie": "slipway-acting-as=amita%40contoso.com%3B%20roles%3DSlipway.ReleaseManager"}
    page = visit("", headers=cookie)
    assert page.status_code == 200 and "amita@contoso.com" in page.get_body().decode()
    assert "act as someone else" in page.get_body().decode()
    status, problem = call(defs.definitions_collection, "POST", GOOD, headers=cookie)
    assert status == 403  # acting as a release manager, not an admin
    settings(api, auth_mode="appservice", website_auth_enabled="true")
    assert call(rels.releases_collection, "GET", headers=tim)[0] == 401
    assert visit("", headers=cookie).status_code == 401
    assert visit("dev/acting-as", headers=AMITA).status_code == 404


def test_the_acting_as_switch_sets_a_cookie_from_this_site_only(api: World) -> None:  # noqa: F811
    settings(api, website_auth_enabled="")
    form = {"name": "tim@contoso.com", "role:Slipway.Reader": "on", "back": "/approvals"}
    done = visit("dev/acting-as", "POST", form, headers={"Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303 and done.headers["Location"] == "/approvals"
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith("slipway-acting-as=tim@contoso.com") and "HttpOnly" in cookie
    value = cookie.split(";")[0]
    assert "tim@contoso.com" in visit("approvals", headers={"Cookie": value}).get_body().decode()
    same = {"Sec-Fetch-Site": "same-origin"}
    away = visit("dev/acting-as", "POST", {**form, "back": "//evil.example/"}, headers=same)
    assert away.headers["Location"] == "/"
    assert visit("dev/acting-as", "POST", form, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 400


class Keys:
    """What ARM's listkeys answers, and how often it was asked."""

    def __init__(self) -> None:
        self.keys = {"default": "k1"}
        self.reads = 0
        self.fail = False

    def __call__(self, site: Target) -> dict[str, str]:
        self.reads += 1
        if self.fail:
            raise TargetError("ARM unreachable", retryable=True)
        return dict(self.keys)


def test_host_keys_are_cached_reread_for_a_new_key_and_a_revoked_key_stops() -> None:
    now = [0.0]
    arm = Keys()
    keys = FunctionKeys("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app", arm,
                        clock=lambda: now[0])
    assert keys.verify("k1") == "default" and keys.verify("k1") == "default" and arm.reads == 1
    arm.keys["ci"] = "k2"
    assert keys.verify("k2") is None  # read a moment ago: a guess does not make it read again
    now[0] = 31
    assert keys.verify("k2") == "ci" and arm.reads == 2  # a new key works within 30 seconds
    assert keys.verify("nope") is None and arm.reads == 2
    del arm.keys["default"]
    now[0] = 400
    assert keys.verify("k1") is None  # revoked: gone after the cache time
    arm.fail = True
    now[0] = 800
    assert keys.verify("k2") == "ci"  # ARM down: the keys last read still count
    assert FunctionKeys("", arm).verify("k2") is None  # not configured: no key is valid


def test_every_api_route_answers_401_without_an_identity_in_azure(api: World) -> None:  # noqa: F811
    import re

    import azure.functions as func

    import function_app

    settings(api, auth_mode="appservice")
    function_app.app.functions_bindings = {}
    open_routes = {"api/health", "api/openapi.json", "api/schemas/definition.json", "api/approve/{token}",
                   "api/intervene/{token}",
                   "api/callbacks/{token}", "{*path}", "editor/{*path}"}  # pages: sign-in by redirect
    checked = 0
    for f in function_app.app.get_functions():
        trigger = f.get_trigger()
        if trigger.get_binding_name() != "httpTrigger" or trigger.route in open_routes:
            continue
        params = {name: "1" for name in re.findall(r"\{(\w+)(?::\w+)?\}", trigger.route)}
        for method in [str(getattr(m, "value", m)) for m in trigger.methods]:
            req = func.HttpRequest(method, f"http://localhost/{trigger.route}", body=b"{}", route_params=params,
                                   headers={"X-Slipway-Acting-As": "ada@contoso.com; roles=Slipway.Admin"})
            resp = f.get_user_function()(req)
            assert resp.status_code == 401, (method, trigger.route, resp.get_body())
            checked += 1
    assert checked >= 25

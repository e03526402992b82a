"""Slipway as it runs in Azure, on the local stack: App Service authentication in front
(`make run AUTH=appservice`). Anonymous browsers are sent to sign in, forged principal headers
never count, pipelines sign in with an Entra token or a function key. And with authentication
off, a principal header is refused outright."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator

import httpx
import pytest

from local.azurite import REPO
from local.stack import SAMPLE, LocalStack

pytestmark = pytest.mark.e2e
MALLORY = base64.b64encode(json.dumps({"auth_typ": "aad", "claims": [
    {"typ": "preferred_username", "val": "mallory@evil.example"},
    {"typ": "roles", "val": "Slipway.Admin"}]}).encode()).decode()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1, auth="appservice") as running:
        yield running


def test_an_anonymous_browser_is_sent_to_sign_in_and_comes_back(stack: LocalStack) -> None:
    base = stack.api.removesuffix("/api")
    first = httpx.get(f"{base}/pipelines/{stack.definition_id}")
    assert first.status_code == 302
    assert first.headers["Location"] == f"/.auth/login/aad?post_login_redirect_uri=%2Fpipelines%2F{stack.definition_id}"
    login = httpx.get(base + first.headers["Location"])
    assert login.status_code == 200 and "Sign in" in login.text
    signed = httpx.post(base + first.headers["Location"], data={"name": "rita@contoso.com"})
    assert signed.status_code == 302 and signed.headers["Location"] == f"/pipelines/{stack.definition_id}"
    page = httpx.get(base + signed.headers["Location"], cookies=signed.cookies)
    assert page.status_code == 200 and SAMPLE["name"] in page.text and "rita@contoso.com" in page.text
    assert "act as someone else" not in page.text  # no development switch in Azure's mode
    assert httpx.get(f"{base}/dev/acting-as", cookies=signed.cookies).status_code == 404
    assert httpx.get(f"{stack.api}/definitions").status_code == 401  # the API never redirects


def test_a_forged_principal_header_is_stripped_and_counts_for_nothing(stack: LocalStack) -> None:
    forged = {"X-MS-CLIENT-PRINCIPAL": MALLORY, "X-MS-CLIENT-PRINCIPAL-NAME": "tim@contoso.com"}
    assert httpx.post(f"{stack.api}/definitions", json=SAMPLE, headers=forged).status_code == 401
    base = stack.api.removesuffix("/api")
    form = httpx.post(f"{base}/pipelines/{stack.definition_id}/releases", data={"description": "x"},
                      headers=forged)
    assert form.status_code == 401
    acting = httpx.get(f"{stack.api}/releases", headers={"X-Slipway-Acting-As": "amita@contoso.com"})
    assert acting.status_code == 401 and "development mode" in acting.json()["detail"]


def test_pipelines_sign_in_with_an_entra_token_or_a_function_key(stack: LocalStack) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    token = stack.entra.token(app_id="11111111-2222-3333-4444-555555555555", roles=["Slipway.ReleaseManager"])
    pipeline = {"Authorization": f"Bearer {token}"}
    wrong_key = sample_build.publish(version="5.0.0", storage_connection=stack.azurite.connection_string,
                                     api=stack.api, key="not-a-host-key")
    assert wrong_key.status_code == 401
    hooked = sample_build.publish(version="5.0.0", storage_connection=stack.azurite.connection_string,
                                  api=stack.api, key=stack.function_key)
    assert hooked.status_code == 201, hooked.text
    assert hooked.json()["releases"][0]["createdBy"] == "automation (function key 'default')"
    created = httpx.post(f"{stack.api}/releases", json={"definitionId": stack.definition_id}, headers=pipeline)
    assert created.status_code == 201, created.text
    assert created.json()["createdBy"] == "app:11111111-2222-3333-4444-555555555555"
    reader = {"Authorization": f"Bearer {stack.entra.token(name='rita@contoso.com')}"}
    assert httpx.post(f"{stack.api}/releases", json={"definitionId": stack.definition_id},
                      headers=reader).status_code == 403
    expired = stack.entra.token(name="rita@contoso.com", lifetime=-60)
    assert httpx.get(f"{stack.api}/releases", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    foreign = stack.entra.token(name="rita@contoso.com", audience="api://someone-else")
    assert httpx.get(f"{stack.api}/releases", headers={"Authorization": f"Bearer {foreign}"}).status_code == 401


def test_without_app_service_authentication_a_principal_header_is_refused() -> None:
    with LocalStack(persistent=False, fixed_ports=False, seed=False, auth="appservice",
                    extra_settings={"WEBSITE_AUTH_ENABLED": ""}) as bare:
        forged = {"X-MS-CLIENT-PRINCIPAL": MALLORY}
        answer = httpx.post(f"{bare.api}/definitions", json=SAMPLE, headers=forged)
        assert answer.status_code == 401 and "App Service authentication" in answer.json()["detail"]
        base = bare.api.removesuffix("/api")
        assert httpx.get(f"{base}/", headers=forged).status_code == 401
        assert httpx.get(f"{base}/").status_code == 401  # nowhere to sign in: authentication is off
        key = {"x-functions-key": bare.function_key}
        assert httpx.get(f"{bare.api}/releases", headers=key).status_code == 200

"""`run-pipeline` signed in as a GitHub App: the adapter mints installation tokens with a JWT from the app's private
key (read from Key Vault), against the GitHub emulator, which checks the JWT as GitHub does."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from local.github_emulator import EXP_INVALID, EXP_TOO_FAR, JWT_UNDECODABLE, GitHubEmulator
from shared.adapters.github_actions import GitHubActions
from shared.config import Settings
from shared.ports import TargetError
from shared.schemas.fields import field_errors
from shared.schemas.step_pipeline import RunPipelineStep
from shared.services.steps.pipeline import stop_run_pipeline
from tests.integration.test_github_actions import REPO, RUN_NAME, SMOKE_INPUTS, Harness

APP_ID = 1_234_567
CLIENT_ID = "Iv23liABCDEF01234567"
INSTALLATION = 55_501
KEY_SECRET = "https://kv-slipway.vault.azure.net/secrets/github-app-key"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def keys() -> tuple[str, str, str]:
    """The app's private key, its public key (what GitHub keeps), and another app's private key."""
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = mine.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return _pem(mine), public, _pem(other)


@pytest.fixture
def github(keys: tuple[str, str, str]) -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as gh:
        gh.add_repo(REPO)
        gh.add_app(APP_ID, keys[1], client_id=CLIENT_ID)
        gh.add_installation(INSTALLATION, APP_ID, repos=[REPO])
        gh.add_workflow(REPO, "smoke.yml", name="Smoke", inputs=SMOKE_INPUTS, run_name_template=RUN_NAME,
                        steps=["collecting tests", "42 passed in 3.1s"], seconds=30)
        gh.add_workflow(REPO, "slow.yml", inputs={"slipway_run": {"type": "string"}},
                        run_name_template="Slow ${{ inputs.slipway_run }}", seconds=7200)
        yield gh


def app_config(**extra: Any) -> dict[str, Any]:
    body = {"type": "run-pipeline", "name": "smoke", "repository": REPO, "workflow": "smoke.yml",
            "inputs": {"release": "$(Release.ReleaseName)"},
            "app": {"appId": CLIENT_ID, "installationId": INSTALLATION, "privateKeySecret": KEY_SECRET}, **extra}
    return RunPipelineStep.model_validate(body).model_dump(exclude_none=True)


def app_harness(github: GitHubEmulator, key: str, config: dict[str, Any] | None = None) -> Harness:
    h = Harness(github, config or app_config())
    h.secrets.values = {KEY_SECRET: key}
    adapter = h.deps.pipelines
    assert isinstance(adapter, GitHubActions)
    adapter.now = github.now  # JWTs and token expiry on the emulator's clock, as on the local stack
    return h


def minted(github: GitHubEmulator) -> list[Any]:
    return [r for r in github.requests if r.path.endswith("/access_tokens")]


def secret_parts(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_app_auth_dispatches_and_follows_a_run(github: GitHubEmulator, keys: tuple[str, str, str]) -> None:
    h = app_harness(github, keys[0])
    before = github.now().timestamp()
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    (run,) = github.runs.values()
    assert run.actor == "slipway-releases[bot]" and github.dispatches == 1
    (request,) = minted(github)  # one token for every poll: it is kept until shortly before it expires
    assertion = request.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(assertion, keys[1], algorithms=["RS256"], options={"verify_exp": False})
    assert jwt.get_unverified_header(assertion)["alg"] == "RS256" and claims["iss"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] <= 600 and abs(claims["iat"] - (before - 60)) <= 2
    (token,) = [t for t in github.tokens.values() if t.kind == "app"]
    dispatch = next(r for r in github.requests if r.path.endswith("/dispatches"))
    assert dispatch.headers["Authorization"] == f"Bearer {token.value}"
    assert token.value not in h.everything() and assertion not in h.everything()


def test_the_numeric_app_id_signs_in_too_and_stop_cancels(github: GitHubEmulator, keys: tuple[str, str, str]) -> None:
    config = app_config(workflow="slow.yml", inputs={},
                        app={"appId": str(APP_ID), "installationId": INSTALLATION, "privateKeySecret": KEY_SECRET})
    h = app_harness(github, keys[0], config)
    h.once()
    assert stop_run_pipeline(h.deps, h.context()).startswith("cancel requested for workflow run")
    github.advance(github.cancel_seconds)
    assert [r.conclusion_at(github.now()) for r in github.runs.values()] == ["cancelled"]


def test_a_wrong_key_fails_with_the_reason_and_no_secret(github: GitHubEmulator, keys: tuple[str, str, str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = app_harness(github, keys[2])
    outcome = wrong.drive()
    assert outcome.kind == "failed"
    assert f"401 {JWT_UNDECODABLE}" in outcome.message and "not this app's" in outcome.message
    garbage = app_harness(github, "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbCwgbm90IGF0IGFsbA==\n"
                                  "-----END RSA PRIVATE KEY-----\n")
    assert "not an RSA private key in PEM format" in garbage.drive().message
    lost = app_harness(github, keys[0], app_config(app={"appId": CLIENT_ID, "installationId": 999,
                                                         "privateKeySecret": KEY_SECRET}))
    assert "404 Not Found (no such installation of this app)" in lost.drive().message
    assert github.dispatches == 0
    for h in (wrong, garbage, lost):
        for part in secret_parts(keys[2]) + secret_parts(keys[0]) + ["bm90IGEga2V5IGF0IGFsbCwgbm90IGF0IGFsbA=="]:
            assert part not in h.everything() and part not in caplog.text


def test_an_installation_token_is_renewed_before_and_after_it_expires(github: GitHubEmulator,
                                                                      keys: tuple[str, str, str]) -> None:
    adapter = GitHubActions(Settings(github_api_url=github.url))
    adapter.now = github.now
    first = adapter.installation_token(CLIENT_ID, INSTALLATION, keys[0])
    assert adapter.installation_token(CLIENT_ID, INSTALLATION, keys[0]) == first
    github.advance(3600 - 5 * 60 + 1)  # within five minutes of its expiry: a new one
    second = adapter.installation_token(CLIENT_ID, INSTALLATION, keys[0])
    assert second != first and len(minted(github)) == 2
    github.advance(5 * 60)
    with pytest.raises(TargetError) as refused:  # GitHub no longer takes the first one
        adapter.run(REPO, 1, first)
    assert "Bad credentials" in str(refused.value)

    h = app_harness(github, keys[0])
    assert h.once().kind == "retry" and github.dispatches == 1
    for token in github.tokens.values():
        token.expires = github.now()  # revoked, or expired on GitHub's clock before Slipway thought it would
    outcome = h.drive()
    assert outcome.kind == "succeeded", outcome.message
    assert any("installation token was refused" in o.message for o in h.outcomes)
    assert github.dispatches == 1 and len(minted(github)) == 4


def test_the_private_key_never_shows(github: GitHubEmulator, keys: tuple[str, str, str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = app_harness(github, keys[0])
    assert h.drive().kind == "succeeded"
    github.inject("token", "error", 50)
    failing = app_harness(github, keys[0])
    failing.deps.pipelines._minted.clear()  # type: ignore[attr-defined]
    assert failing.drive().kind == "failed"
    token = next(t.value for t in github.tokens.values() if t.kind == "app")
    for part in secret_parts(keys[0]) + [token]:
        for text in (h.everything(), failing.everything(), caplog.text):
            assert part not in text


# -- the emulator checks the JWT as GitHub does


def _ask(github: GitHubEmulator, assertion: str) -> httpx.Response:
    return httpx.post(f"{github.url}/app/installations/{INSTALLATION}/access_tokens",
                      headers={"Authorization": f"Bearer {assertion}", "User-Agent": "test",
                               "Accept": "application/vnd.github+json"})


def test_the_emulator_refuses_bad_jwts_as_github_does(github: GitHubEmulator, keys: tuple[str, str, str]) -> None:
    now = int(time.time())
    good = {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}
    assert _ask(github, jwt.encode(good, keys[0], algorithm="RS256")).status_code == 201
    cases = [(jwt.encode(good, keys[2], algorithm="RS256"), JWT_UNDECODABLE),
             (jwt.encode(good, "shared-secret-of-32-bytes-or-more!!", algorithm="HS256"), JWT_UNDECODABLE),
             (jwt.encode({**good, "iss": "999"}, keys[0], algorithm="RS256"), JWT_UNDECODABLE),
             (jwt.encode({**good, "exp": now + 3600}, keys[0], algorithm="RS256"), EXP_TOO_FAR),
             (jwt.encode({**good, "iat": now - 900, "exp": now - 300}, keys[0], algorithm="RS256"), EXP_INVALID),
             ("not.a.jwt", JWT_UNDECODABLE)]
    for assertion, message in cases:
        answer = _ask(github, assertion)
        assert answer.status_code == 401, message
        assert answer.json() == {"message": message, "documentation_url": "https://docs.github.com/rest",
                                 "status": "401"}


# -- the step model


def test_app_or_token_one_of_them_and_no_key_in_a_definition(keys: tuple[str, str, str]) -> None:
    step = RunPipelineStep.model_validate(app_config())
    assert step.app is not None and step.tokenSecret is None
    base = app_config()
    secret = "https://kv-slipway.vault.azure.net/secrets/github-token"
    bad = [{**base, "tokenSecret": secret}, {k: v for k, v in base.items() if k != "app"},
           {**base, "app": {**base["app"], "appId": "app-1"}}, {**base, "app": {**base["app"], "installationId": 0}},
           {**base, "app": {**base["app"], "privateKeySecret": "github-app-key"}},
           {**base, "app": {**base["app"], "extra": 1}}]
    for body in bad:
        with pytest.raises(ValidationError):
            RunPipelineStep.model_validate(body)
    for where in ("inputs", "privateKeySecret"):
        body = app_config()
        if where == "inputs":
            body["inputs"] = {"key": keys[0]}
        else:
            body["app"] = {**body["app"], "privateKeySecret": keys[0]}
        with pytest.raises(ValidationError) as caught:
            RunPipelineStep.model_validate(body)
        errors = field_errors(caught.value)
        assert any("looks like a private key" in e.message for e in errors)
        assert not any(part in e.message for e in errors for part in secret_parts(keys[0]))

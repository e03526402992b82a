"""A GitHub webhook on the local stack, as the issue's "done when" walks it: @octokit/webhooks-examples'
`workflow_run` completed-with-success delivery, signed with the stack's webhook secret, makes Slipway
download the run's artifact from GitHub (the local emulator), keep it as the package and release it: the
release deploys to Dev. A redelivery of the same delivery changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import GITHUB_WEBHOOK_SECRET, SAMPLE_TARGET, LocalStack
from tests.integration.test_build_hooks import example

pytestmark = pytest.mark.e2e
ADMIN = {"X-Slipway-Acting-As": "ines@contoso.com; roles=Slipway.Admin"}  # development mode
GITHUB_REPO = "octo-org/octo-repo"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def deliver(stack: LocalStack, payload: dict[str, Any], delivery: str) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(GITHUB_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{stack.api}/hooks/github", content=body, timeout=60,
                      headers={"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": delivery,
                               "X-Hub-Signature-256": signature, "Content-Type": "application/json"})


def test_a_signed_workflow_run_becomes_a_release_that_deploys_to_dev(stack: LocalStack) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    payload = example("workflow_run", "completed")
    run = payload["workflow_run"]
    assert stack.github is not None
    stack.github.add_repo(GITHUB_REPO, branches=[run["head_branch"]])
    stack.github.add_token(stack.github_token, repos=["contoso/sample-webapp", GITHUB_REPO], actions="read")
    stack.github.add_artifact(GITHUB_REPO, run["id"], "web", sample_build.build_package("9.9.9"))
    definition = {"name": "From GitHub", "artifacts": [
        {"alias": "web", "source": f"github:{GITHUB_REPO}",
         "trigger": {"branches": {"include": [run["head_branch"]]}}}],
        "stages": [{"name": "Dev", "target": {**SAMPLE_TARGET, "slot": "dev"}, "trigger": {"type": "afterRelease"},
                    "steps": [{"type": "deploy-package"}]}]}
    created = httpx.post(f"{stack.api}/definitions", json=definition, headers=ADMIN, timeout=60)
    assert created.status_code == 201, created.text
    did = created.json()["id"]

    first = deliver(stack, payload, "5a1b7c3e-0000-4000-8000-000000000001")
    assert first.status_code in (200, 201), first.text
    again = deliver(stack, payload, "5a1b7c3e-0000-4000-8000-000000000001")
    assert again.status_code == first.status_code and again.json() == first.json()

    def dev_finished() -> dict[str, Any] | None:
        listed = httpx.get(f"{stack.api}/releases", params={"definitionId": did}, timeout=30).json()["value"]
        if len(listed) != 1:
            return None
        release = httpx.get(f"{stack.api}/releases/{listed[0]['id']}", timeout=30).json()
        return release if release["stages"][0]["status"] in ("succeeded", "failed") else None

    deadline, release = time.monotonic() + 90, None
    while release is None and time.monotonic() < deadline:
        release = dev_finished()
        time.sleep(0.3)
    assert release is not None, "no release reached Dev"
    assert release["stages"][0]["status"] == "succeeded", release["stages"][0]["deployments"][-1].get("failure")
    assert release["artifacts"][0]["sha256"] == hashlib.sha256(sample_build.build_package("9.9.9")).hexdigest()
    listed = httpx.get(f"{stack.api}/releases", params={"definitionId": did}, timeout=30).json()["value"]
    assert len(listed) == 1  # the redelivery made no second release

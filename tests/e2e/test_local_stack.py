"""The local stack as a user runs it: a new build of the sample app goes Dev -> Test, and the slot
URLs serve the new version; Production deploys by hand."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def build(stack: LocalStack, version: str, branch: str = "main") -> httpx.Response:
    """What `make sample-build` runs: package, upload, call the webhook."""
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    return sample_build.publish(version=version, branch=branch, commit="0a1b2c3d", source="sample-webapp",
                                storage_connection=stack.azurite.connection_string, api=stack.api)


def test_a_build_releases_through_dev_and_test_and_the_slots_serve_it(stack: LocalStack) -> None:
    response = build(stack, "1.0.1")
    assert response.status_code == 201, response.text
    [created] = response.json()["releases"]
    release = stack.wait_for(created["id"], lambda r: r["stages"][1]["status"] not in ("notStarted", "inProgress"))
    assert [(s["name"], s["status"]) for s in release["stages"]] == [
        ("Dev", "succeeded"), ("Test", "succeeded"), ("Production", "notStarted")]
    urls = stack.slot_urls()
    for slot in ("dev", "test"):
        page = httpx.get(urls[slot], timeout=10)
        assert page.status_code == 200 and "1.0.1" in page.text
    assert "1.0.1" not in httpx.get(urls["production"], timeout=10).text

    deployed = httpx.post(f"{stack.api}/releases/{created['id']}/stages/Production/deploy", timeout=30)
    assert deployed.status_code == 202
    waiting = stack.wait_for(created["id"], lambda r: r["stages"][2]["deployments"][0]["phase"] == "preApproval")
    assert "tim@contoso.com" in waiting["stages"][2]["waitingFor"]
    tag = httpx.get(f"{stack.api}/releases/{created['id']}", timeout=30).headers["ETag"]
    tim = {"X-Slipway-Acting-As": "tim@contoso.com", "If-Match": tag}  # development mode: act as Tim
    approved = httpx.post(f"{stack.api}/releases/{created['id']}/stages/Production/approvals/pre",
                          json={"decision": "approve"}, headers=tim, timeout=30)
    assert approved.status_code == 200, approved.text
    stack.wait_for(created["id"], lambda r: r["stages"][2]["status"] == "succeeded")
    assert httpx.get(f"{urls['production']}/health", timeout=10).json()["version"] == "1.0.1"
    log = httpx.get(f"{stack.api}/releases/{created['id']}/stages/Dev/deployments/1/steps/1/log", timeout=10)
    assert "answered 200" in log.text


def test_a_build_on_a_filtered_branch_creates_nothing(stack: LocalStack) -> None:
    response = build(stack, "1.0.2-feature", branch="feature/experiment")
    assert response.status_code == 200 and response.json()["releases"] == []


def test_bad_input_over_http_is_a_problem_not_a_500(stack: LocalStack) -> None:
    response = httpx.post(f"{stack.api}/definitions", content=b"{not json", timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "body"
    assert httpx.get(f"{stack.api}/releases/999999", timeout=10).status_code == 404

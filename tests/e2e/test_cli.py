"""The CLI as a pipeline uses it: create a release, wait for a stage, fail the job when it fails."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        sys.path.insert(0, str(REPO / "examples"))
        import build as sample_build  # type: ignore[import-not-found]

        assert running.azurite is not None
        sample_build.publish(version="3.0.0", storage_connection=running.azurite.connection_string, api=running.api)
        yield running


def slipway(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slipway_cli", "--endpoint", stack.api, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_create_and_wait_for_a_stage_exits_zero_when_it_succeeds(stack: LocalStack) -> None:
    out = slipway(stack, "release", "create", "-d", str(stack.definition_id), "-a", "webapp=3.0.0",
                  "--wait-for", "Test", "--timeout", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Test: succeeded" in out.stdout
    listed = slipway(stack, "--output", "json", "release", "list", "-d", str(stack.definition_id))
    assert listed.returncode == 0 and json.loads(listed.stdout)["count"] >= 1


def failing_definition(stack: LocalStack) -> int:
    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    sample["name"] = "Fails in Test"
    check: dict[str, Any] = {"type": "http-check", "name": "Needs a page that is not there", "path": "/missing",
                             "timeoutSeconds": 1, "intervalSeconds": 1}
    sample["stages"][1]["steps"][1] = check
    return int(httpx.post(f"{stack.api}/definitions", json=sample, timeout=30).json()["id"])


def test_a_failing_stage_fails_the_job_with_the_reason(stack: LocalStack) -> None:
    out = slipway(stack, "release", "create", "-d", str(failing_definition(stack)), "--wait-for", "Test",
                  "--timeout", "60")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "stage Test failed" in out.stderr and "/missing" in out.stderr


def test_logs_and_rollback(stack: LocalStack) -> None:
    created = slipway(stack, "-o", "json", "release", "create", "-d", str(stack.definition_id), "--wait-for", "Dev")
    release_id = json.loads(created.stdout.split("\n{", 1)[0] if created.stdout.startswith("{") else created.stdout)
    assert created.returncode == 0
    rid = str(release_id["id"])
    logs = slipway(stack, "logs", rid, "Dev")
    assert logs.returncode == 0 and "=== step 0: Deploy to dev (succeeded) ===" in logs.stdout
    rolled = slipway(stack, "stage", "rollback", rid, "Dev", "--wait", "--timeout", "60")
    assert rolled.returncode == 0, rolled.stderr
    release = json.loads(slipway(stack, "-o", "json", "release", "show", rid).stdout)
    assert [d["reason"] for d in release["stages"][0]["deployments"]] == ["automated", "rollback"]


def test_bad_input_is_reported_with_the_field_and_exit_code_two(stack: LocalStack) -> None:
    out = slipway(stack, "release", "create", "-d", str(stack.definition_id), "-a", "webapp=no/such")
    assert out.returncode == 2 and "artifacts[0].version" in out.stderr


def test_approve_from_the_cli_then_follow_and_download_the_logs(stack: LocalStack, tmp_path: Any) -> None:
    import zipfile

    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    sample["name"] = "Approved from the CLI"
    sample["stages"][2]["preApprovals"] = {"approvers": ["tim@contoso.com"]}
    did = httpx.post(f"{stack.api}/definitions", json=sample, timeout=30).json()["id"]
    created = slipway(stack, "-o", "json", "release", "create", "-d", str(did), "--wait-for", "Test")
    assert created.returncode == 0, created.stderr
    rid = str(json.loads(created.stdout.split("\n{", 1)[0])["id"])
    assert slipway(stack, "stage", "deploy", rid, "Production").returncode == 0
    mine = slipway(stack, "approval", "list")  # the development identity is no approver here
    assert mine.returncode == 0 and f"{rid}" not in mine.stdout
    listed = slipway(stack, "--as", "tim@contoso.com", "approval", "list")  # development mode: act as Tim
    assert listed.returncode == 0 and f"{rid}" in listed.stdout and "Production" in listed.stdout
    wrong = slipway(stack, "--as", "tim@contoso.com", "approval", "approve", rid, "Dev")
    assert wrong.returncode == 2 and "no pending approval" in wrong.stderr
    approved = slipway(stack, "--as", "tim@contoso.com", "approval", "approve", rid, "Production",
                       "--comment", "ship it")
    assert approved.returncode == 0, approved.stderr
    followed = slipway(stack, "logs", rid, "Production", "--follow")
    assert followed.returncode == 0 and "=== step 1: Health" in followed.stdout and "answered 200" in followed.stdout
    archive = tmp_path / "logs.zip"
    assert slipway(stack, "logs", rid, "--zip", str(archive)).returncode == 0
    names = zipfile.ZipFile(archive).namelist()
    assert {n.split("/")[0] for n in names} == {"Dev", "Test", "Production"}
    release = json.loads(slipway(stack, "-o", "json", "release", "show", rid).stdout)
    votes = release["stages"][2]["deployments"][0]["approvals"]["pre"]["votes"]
    assert [(v["by"], v["comment"]) for v in votes] == [("tim@contoso.com", "ship it")]

"""The six-kind sample pipeline on the local stack, as `make run` seeds it: Tim sees in Chromium what the
infrastructure deployment will change and approves; the infrastructure deploys, the migration's output
streams into its log, the app deploys, the smoke-test workflow runs and is awaited, Tim resumes the
check by hand from its mail link, and the change board's callback completes the stage. A second
release, whose migration exits non-zero, stops the stage with the script's last lines."""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack
from tests.e2e.test_browser import (
    SHOTS,
    browser,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.e2e
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.ReleaseManager"}  # development mode
TIM = {"X-Slipway-Acting-As": "tim@contoso.com"}
STEPS = ["Infrastructure", "Database migration", "Deploy the app", "Smoke tests", "Check the invoices by hand",
         "Record the change"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def eventually(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def release_of(stack: LocalStack, version: str) -> int:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None and stack.full_stage_id is not None
    sample_build.publish(version=version, storage_connection=stack.azurite.connection_string, api=stack.api)
    created = httpx.post(f"{stack.api}/releases", json={"definitionId": stack.full_stage_id,
                                                         "artifacts": [{"alias": "webapp", "version": version}]},
                         headers=AMITA, timeout=30)
    assert created.status_code == 201, created.text
    rid = int(created.json()["id"])
    assert httpx.post(f"{stack.api}/releases/{rid}/stages/UAT/deploy", headers=AMITA, timeout=30).status_code == 202
    return rid


def mail_to(stack: LocalStack, to: str, subject: str) -> dict[str, Any]:
    assert stack.mail is not None
    found = eventually(lambda: next((m for m in reversed(stack.mail.messages)
                                     if m["to"] == [to] and subject in m["subject"]), None))
    assert found, f"no mail '{subject}' to {to}"
    return found  # type: ignore[no-any-return]


def step_log(stack: LocalStack, rid: int, step: int) -> str:
    return httpx.get(f"{stack.api}/releases/{rid}/stages/UAT/deployments/1/steps/{step}/log", timeout=30).text


def uat(release: dict[str, Any]) -> dict[str, Any]:
    return release["stages"][0]["deployments"][-1]  # type: ignore[no-any-return]


def test_one_release_through_all_six_kinds_of_task(stack: LocalStack, browser: Any) -> None:  # noqa: F811
    rid = release_of(stack, "5.0.0")
    mail = mail_to(stack, "tim@contoso.com", "Approval needed")
    assert "+ create" in mail["text"] and "storageAccounts/sampledata" in mail["text"]  # the what-if, in the mail
    link = re.search(r"(http://\S+/api/approve/\S+)", mail["text"])[1]  # type: ignore[index]

    tim = browser.new_context(extra_http_headers=TIM).new_page()
    tim.goto(link)
    what_if = tim.locator("pre.what-if")
    assert "+ create" in what_if.inner_text() and "storageAccounts/sampledata" in what_if.inner_text()
    tim.screenshot(path=str(SHOTS / "full-stage-approval-what-if.png"), full_page=True)
    tim.fill("textarea[name='comment']", "infrastructure looks right")
    with tim.expect_navigation():  # the form's answer is a new page: read it once it is there
        tim.click("button[value='approve']")
    assert "Approved as tim@contoso.com" in tim.content()

    check = mail_to(stack, "tim@contoso.com", "Manual intervention needed")
    release = stack.wait_for(rid, lambda r: uat(r)["phase"] == "manualIntervention", timeout=120)
    steps = uat(release)["steps"]
    assert [s["status"] for s in steps] == ["succeeded"] * 4 + ["inProgress", "pending"], steps
    assert steps[0]["outputs"]["dataAccount"] == "sampledata"
    migration = step_log(stack, rid, 1)
    assert "migrate: connecting to sampledata.database.local" in migration
    assert "migrate: done, 4 migrations applied" in migration and "DB_PASSWORD received" in migration
    smoke = step_log(stack, rid, 3)
    assert "2 passed in 1.12s" in smoke and steps[3]["outputs"]["conclusion"] == "success"
    assert httpx.get(stack.slot_urls()["uat"] + "/health", timeout=10).status_code == 200

    intervene = re.search(r"(http://\S+/api/intervene/\S+)", check["text"])[1]  # type: ignore[index]
    tim.goto(intervene)
    assert "Check the invoices by hand" in tim.content() and "<strong>uat</strong>" in tim.content()
    tim.screenshot(path=str(SHOTS / "full-stage-intervention.png"), full_page=True)
    with tim.expect_navigation():  # the form's answer is a new page: read it once it is there
        tim.click("button[value='resume']")
    assert "Resumed as tim@contoso.com" in tim.content()

    done = stack.wait_for(rid, lambda r: r["stages"][0]["status"] in ("succeeded", "failed", "rejected"), timeout=60)
    steps = uat(done)["steps"]
    assert uat(done)["status"] == "succeeded", uat(done)["failure"]
    assert steps[5]["message"].startswith("callback: succeeded: change CHG-") and steps[5]["outputs"]["change"]
    assert stack.change_board is not None and len(stack.change_board.changes) == 1
    assert stack.github is not None and stack.github.dispatches == 1
    assert len([d for d in stack.deployments.deployments.values()]) == 1  # type: ignore[union-attr]
    page = browser.new_context(extra_http_headers=TIM).new_page()
    page.goto(f"{stack.host.base_url}/releases/{rid}")  # type: ignore[union-attr]
    page.screenshot(path=str(SHOTS / "full-stage-release.png"), full_page=True)
    assert "storageAccounts/sampledata" in page.locator(".what-if").inner_text()
    assert "resumed by tim@contoso.com" in page.locator(".intervention").inner_text()


def test_a_migration_that_exits_non_zero_stops_the_stage_with_its_last_lines(stack: LocalStack) -> None:
    rid = release_of(stack, "5.0.1-broken")
    name = httpx.get(f"{stack.api}/releases/{rid}", timeout=30).json()["name"]
    mail = mail_to(stack, "tim@contoso.com", f"Approval needed: Sample web app, full stage / {name} ")
    link = re.search(r"(http://\S+/api/approve/\S+)", mail["text"])[1]  # type: ignore[index]
    page = httpx.get(link, headers=TIM, timeout=30).text
    etag = html.unescape(re.search(r"name='etag' value='([^']+)'", page)[1])  # type: ignore[index]
    assert httpx.post(link, data={"decision": "approve", "etag": etag}, headers=TIM, timeout=30).status_code == 200
    done = stack.wait_for(rid, lambda r: r["stages"][0]["status"] in ("succeeded", "failed"), timeout=120)
    dep = uat(done)
    assert dep["status"] == "failed" and [s["status"] for s in dep["steps"]][:3] == ["succeeded", "failed", "skipped"]
    assert "exit code 3" in dep["failure"]
    assert 'migration 0004_add_index failed: relation "orders" does not exist' in dep["failure"]
    assert "migrate: applied 0003_step_3" in dep["failure"]  # the script's last lines are the reason


def test_the_check_by_hand_rejected_from_the_cli_rejects_the_stage(stack: LocalStack) -> None:
    from slipway_cli.main import main as slipway

    rid = release_of(stack, "5.0.2")
    name = httpx.get(f"{stack.api}/releases/{rid}", timeout=30).json()["name"]
    mail = mail_to(stack, "tim@contoso.com", f"Approval needed: Sample web app, full stage / {name} ")
    cli = ["--endpoint", stack.api, "--as", "tim@contoso.com"]
    assert slipway([*cli, "approval", "approve", str(rid), "UAT"]) == 0
    mail_to(stack, "tim@contoso.com", f"Manual intervention needed: Sample web app, full stage / {name} ")
    assert mail
    assert slipway([*cli, "intervention", "reject", str(rid), "UAT", "--comment", "invoice is blank"]) == 0
    done = stack.wait_for(rid, lambda r: r["stages"][0]["status"] != "inProgress", timeout=30)
    dep = uat(done)
    assert dep["status"] == "rejected" and "rejected by tim@contoso.com: invoice is blank" in dep["failure"]
    assert [s["status"] for s in dep["steps"]][4:] == ["failed", "skipped"]
    assert slipway([*cli, "intervention", "resume", str(rid), "UAT"]) == 2  # nothing waits any more

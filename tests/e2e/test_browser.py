"""The dashboard in headless Chromium on the local stack: Amita creates a release from the page and
watches it move without reloading, Tim approves Production from his inbox, the logs download;
hostile text renders as text. Screenshots go to test-results/screenshots/."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "test-results" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.ReleaseManager"}  # development mode
TIM = {"X-Slipway-Acting-As": "tim@contoso.com"}
HOSTILE = "<script>window.pwned = 1</script>"


def chromium(extra_flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """Headless Debian Chromium for a module's tests (required in CI, skipped elsewhere when absent)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is required in CI (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *extra_flags], headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def test_a_release_moves_tim_approves_from_the_page_and_the_logs_download(stack: LocalStack, browser: Any) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None and stack.host is not None
    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    sample["name"] = "Browser pipeline"
    sample["artifacts"][0]["trigger"] = {"enabled": False}
    sample["stages"][2]["preApprovals"] = {"approvers": ["tim@contoso.com"], "policy": "anyOne"}
    did = httpx.post(f"{stack.api}/definitions", json=sample, timeout=30).json()["id"]
    sample_build.publish(version="7.0.0", storage_connection=stack.azurite.connection_string, api=stack.api)
    base = stack.host.base_url

    amita = browser.new_context(extra_http_headers=AMITA, accept_downloads=True).new_page()
    amita.goto(f"{base}/")
    amita.click("text=Browser pipeline")
    assert amita.locator("svg g.stage[data-stage='Production']").count() == 1
    amita.fill("#create-release input[name='description']", "from the browser")
    amita.click("#create-release button[type=submit]")
    amita.wait_for_url(f"{base}/releases/*")
    release_id = int(amita.url.rsplit("/", 1)[1])
    # No reload from here: the page's script refreshes the stages while something runs.
    amita.locator("tr[data-stage='Test'] .stage-status", has_text="succeeded").wait_for(timeout=60_000)
    amita.screenshot(path=str(SHOTS / "release-after-test.png"), full_page=True)
    amita.click("tr[data-stage='Production'] button")
    amita.locator(".approval[data-kind='pre']", has_text="waiting for tim@contoso.com").wait_for(timeout=30_000)

    tim = browser.new_context(extra_http_headers=TIM).new_page()
    tim.goto(f"{base}/approvals")
    row = tim.locator("#inbox tr", has_text="Production")
    row.locator("input[name='comment']").fill("looks good")
    row.locator("button[value='approve']").click()
    tim.locator("#inbox-empty").wait_for(timeout=30_000)
    tim.screenshot(path=str(SHOTS / "inbox-after-approval.png"), full_page=True)

    amita.locator("tr[data-stage='Production'] .stage-status", has_text="succeeded").wait_for(timeout=60_000)
    assert "tim@contoso.com approve" in amita.inner_text(".approval[data-kind='pre']")
    amita.screenshot(path=str(SHOTS / "release-done.png"), full_page=True)

    with amita.expect_download() as got:
        amita.locator(".deployment[data-stage='Production'] a.download").first.click()
    log = Path(got.value.path()).read_text()
    assert "7.0.0" in log and got.value.suggested_filename.endswith(".log")
    with amita.expect_download() as got:
        amita.click("#logs-zip")
    names = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes())).namelist()
    assert {n.split("/")[0] for n in names} == {"Dev", "Test", "Production"}

    amita.goto(f"{base}/pipelines/{did}/environments?a={release_id}&b={release_id}")
    assert "same build" in amita.inner_text("#compare")
    assert amita.locator("#where tr", has_text="Production").inner_text().count("7.0.0") == 1
    amita.screenshot(path=str(SHOTS / "environments.png"), full_page=True)


def test_hostile_text_renders_as_text(stack: LocalStack, browser: Any) -> None:
    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    sample.update(name=HOSTILE, description=HOSTILE)
    sample["stages"][1]["name"] = HOSTILE
    sample["stages"][2]["trigger"] = {"type": "afterStages", "stages": [HOSTILE]}
    created = httpx.post(f"{stack.api}/definitions", json=sample, timeout=30)
    assert created.status_code == 201, created.text
    page = browser.new_context().new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{stack.host.base_url}/pipelines/{created.json()['id']}")  # type: ignore[union-attr]
    assert page.locator("h1").inner_text() == HOSTILE
    assert page.locator(f"svg g.stage[data-stage='{HOSTILE}']").count() == 1
    assert page.evaluate("window.pwned") is None and not dialogs
    page.screenshot(path=str(SHOTS / "hostile-pipeline.png"), full_page=True)


def test_a_running_step_log_is_tailed_without_reloading(stack: LocalStack, browser: Any) -> None:
    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    dev = {**sample["stages"][0], "steps": [{"type": "wait", "name": "Soak", "seconds": 3}]}
    created = httpx.post(f"{stack.api}/definitions", json={"name": "Tailed", "stages": [dev]}, timeout=30)
    assert created.status_code == 201, created.text
    release = httpx.post(f"{stack.api}/releases", json={"definitionId": created.json()["id"]}, timeout=30).json()
    page = browser.new_context().new_page()
    page.goto(f"{stack.host.base_url}/releases/{release['id']}/stages/Dev/deployments/1/steps/0/log")  # type: ignore
    assert page.inner_text("[data-step-status]") in ("pending", "inProgress")
    assert "=> succeeded" not in page.inner_text("pre.log")
    page.locator("pre.log", has_text="=> succeeded: waited").wait_for(timeout=30_000)  # appended by the tail
    page.locator("[data-step-status]", has_text="succeeded").wait_for(timeout=10_000)
    assert page.inner_text("pre.log").count("--- run 1 started") == 1  # nothing printed twice
    page.screenshot(path=str(SHOTS / "log-tailed.png"), full_page=True)


def test_a_newcomer_approves_from_the_mail_link_as_tim(stack: LocalStack, browser: Any) -> None:
    """The README's walk: a build, Production deployed by hand, Tim's mail; the link's page lets the
    newcomer act as Tim (development mode only, and it says so), then approve once."""
    import re
    import time

    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None and stack.host is not None and stack.mail is not None
    out = sample_build.publish(version="8.0.0", storage_connection=stack.azurite.connection_string, api=stack.api,
                               key=stack.function_key).json()
    mine = next(r for r in out["releases"] if r["definitionId"] == stack.definition_id)
    rid, wanted = mine["id"], f"Sample web app / {mine['name']} → Production"
    stack.wait_for(rid, lambda r: r["stages"][1]["status"] == "succeeded")
    seen = len(stack.mail.messages)
    assert httpx.post(f"{stack.api}/releases/{rid}/stages/Production/deploy", timeout=30).status_code == 202
    deadline = time.monotonic() + 30
    while not (mail := next((m for m in stack.mail.messages[seen:] if m["to"] == ["tim@contoso.com"]
                             and wanted in m["subject"]), None)):
        assert time.monotonic() < deadline, "no mail for Tim"
        time.sleep(0.1)
    link = re.search(r"(http://\S+/api/approve/\S+)", mail["text"])[1]  # type: ignore[index]

    page = browser.new_context().new_page()
    page.goto(link)
    assert "you act as developer@localhost" in page.inner_text("body")
    page.click("text=Act as tim@contoso.com")
    page.wait_for_url(link)
    assert "you act as tim@contoso.com" in page.inner_text("body")
    page.fill("textarea[name='comment']", "looks right")
    page.screenshot(path=str(SHOTS / "mail-link-acting-as-tim.png"), full_page=True)
    page.click("button[value='approve']")
    page.locator("h1", has_text="Approved").wait_for(timeout=30_000)
    assert "Approved as tim@contoso.com" in page.inner_text("body")
    done = stack.wait_for(rid, lambda r: r["stages"][2]["status"] == "succeeded")
    assert done["stages"][2]["deployments"][0]["approvals"]["pre"]["votes"][0]["by"] == "tim@contoso.com"
    page.goto(f"{stack.host.base_url}/")
    assert "tim@contoso.com" in page.inner_text("header") and "act as someone else" in page.inner_text("header")

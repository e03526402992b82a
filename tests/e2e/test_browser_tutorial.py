"""The seed tutorial ("Define your multi-stage continuous deployment process") in headless Chromium on
the local stack, entirely in the dashboard, from no pipeline at all: create the Production stage,
clone it into "Copy of Production", rename the copy QA, run QA after the release and Production after
QA, point QA at another slot, ask for Tim's approval before Production, save; then create a release,
watch QA succeed and Production wait for Tim, approve as Tim, read the logs, download them, and see
the same build in both environments. A screenshot of each step goes to test-results/screenshots/."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.azurite import REPO
from local.stack import SAMPLE_TARGET, LocalStack
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
WAIT = 60_000
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.Admin"}  # development mode


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, seed=False, max_polling_interval=0.1) as running:
        yield running


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"tutorial-{name}.png"), full_page=True)


def act_as(page: Any, base: str, name: str, back: str, role: str | None = None) -> None:
    """The local stack's "act as someone else" page (development mode), as a newcomer uses it."""
    page.goto(f"{base}/dev/acting-as?back={back}")
    page.fill("#acting-as input[name='name']", name)
    if role:
        page.check(f"#acting-as input[name='role:{role}']")
    page.click("#acting-as button")
    page.wait_for_url(f"{base}{back}")


def accessible(browser: Any, url: str, name: str) -> None:  # noqa: F811
    """No serious or critical axe-core violations, on a laptop and on a phone (without sideways
    scrolling); axe is injected, so this context bypasses the page's script policy."""
    if not AXE.exists():
        pytest.fail("axe-core is a devDependency: run `npm ci` in the repository")
    page = browser.new_context(extra_http_headers=AMITA, bypass_csp=True).new_page()
    for width, height in ((1366, 860), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(url)
        page.add_script_tag(path=str(AXE))
        found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
        serious = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], (name, width)
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate("() => [...document.querySelectorAll('main *')].filter(e => "
                             "e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.diagram'))"
                             ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)")
        assert wider <= 1, f"{name} scrolls sideways by {wider}px at {width}px: {wide}"
        page.screenshot(path=str(SHOTS / f"tutorial-12-{name}-{width}px.png"), full_page=True)
    page.context.close()


def field(page: Any, name: str) -> Any:
    return page.locator(f"#editor [name='{name}']")


def test_the_seed_tutorial_entirely_in_the_dashboard(stack: LocalStack, browser: Any) -> None:  # noqa: F811
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None and stack.host is not None
    base = stack.host.base_url
    page = browser.new_context(accept_downloads=True).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Amita, an admin (who may change pipelines, as over the API), starts from no pipeline at all.
    act_as(page, base, "amita@contoso.com", "/", role="Slipway.Admin")
    page.click("#new-pipeline")
    page.wait_for_url(f"{base}/editor/new")
    field(page, "s:name").fill("Tutorial")
    field(page, "s:artifacts[0].alias").fill("webapp")
    field(page, "s:artifacts[0].source").fill("sample-webapp")
    page.fill("#new-stage", "Production")
    page.click("#add-stage")
    page.locator("svg g.stage[data-stage='Production']").wait_for()
    field(page, "s:stages[0].target.subscriptionId").fill(SAMPLE_TARGET["subscriptionId"])
    field(page, "s:stages[0].target.resourceGroup").fill(SAMPLE_TARGET["resourceGroup"])
    field(page, "s:stages[0].target.site").fill(SAMPLE_TARGET["site"])
    page.select_option("#new-step-kind", "deploy-package")
    page.click("#add-step")
    field(page, "s:stages[0].steps[0].name").fill("Deploy the web app")
    field(page, "s:stages[0].steps[0].verifyPath").fill("/health")
    page.click("#apply")
    assert field(page, "e:stages[0].target.slot").evaluate("e => e.tagName") == "SELECT"  # the app's own slots
    shot(page, "01-production-stage")

    # Clone Production: Azure DevOps names the copy "Copy of Production"; rename it QA on another slot.
    page.click("#clone-stage")
    assert page.locator("[data-stage-tab='Copy of Production']").count() == 1
    assert field(page, "s:stages[1].name").input_value() == "Copy of Production"
    shot(page, "02-cloned")
    field(page, "s:stages[1].name").fill("QA")
    page.select_option("#editor [name='e:stages[1].trigger.type']", "afterRelease")
    page.select_option("#editor [name='e:stages[1].target.slot']", "test")
    page.click("#apply")
    page.locator("svg g.stage[data-stage='QA']").wait_for()
    shot(page, "03-qa-renamed-on-test-slot")

    # Production after QA, and Tim approves before it deploys.
    page.click("[data-stage-tab='Production']")
    page.select_option("#editor [name='e:stages[0].trigger.type']", "afterStages")
    page.check("#editor input[name='m:stages[0].trigger.stages'][value='QA']")  # shown by the script
    field(page, "l:stages[0].preApprovals.approvers").fill("tim@contoso.com")
    page.select_option("#editor [name='e:stages[0].preApprovals.policy']", "anyOne")
    page.click("#apply")
    assert "after QA" in page.inner_text("#diagram")
    shot(page, "04-production-after-qa-with-approval")
    page.click("#save")
    page.wait_for_url(f"{base}/editor/*?saved=1")
    assert "Saved as revision 1." in page.inner_text("#notice")
    shot(page, "05-saved")
    page.click("#history-link")
    assert page.locator("#revisions tr[data-revision='1']").inner_text().count("amita@contoso.com") == 1
    page.go_back()

    # A build arrives (CI's part, outside the dashboard); Amita creates a release from the pipeline page.
    sample_build.publish(version="7.0.0", storage_connection=stack.azurite.connection_string, api=stack.api)
    page.click("text=Pipeline page")
    page.fill("#create-release input[name='description']", "the tutorial's first release")
    page.click("#create-release button[type=submit]")
    page.wait_for_url(f"{base}/releases/*")
    release_url = page.url
    release_id = int(release_url.rsplit("/", 1)[1])
    page.locator("tr[data-stage='QA'] .stage-status", has_text="succeeded").wait_for(timeout=WAIT)
    page.locator(".approval[data-kind='pre']", has_text="waiting for tim@contoso.com").wait_for(timeout=WAIT)
    assert page.inner_text("tr[data-stage='Production'] .stage-status") != "succeeded"
    shot(page, "06-qa-succeeded-production-waits")
    page.click("text=Tutorial")  # the pipeline page: the release list says why Production waits
    assert "tim@contoso.com" in page.inner_text(f"#releases tr[data-release='{release_id}']")
    shot(page, "07-release-list-shows-the-wait")

    # Tim approves from his inbox.
    act_as(page, base, "tim@contoso.com", "/approvals")
    row = page.locator("#inbox tr", has_text="Production")
    row.locator("input[name='comment']").fill("QA looks good")
    shot(page, "08-tim-inbox")
    row.locator("button[value='approve']").click()
    page.locator("#inbox-empty").wait_for(timeout=WAIT)
    page.goto(release_url)
    page.locator("tr[data-stage='Production'] .stage-status", has_text="succeeded").wait_for(timeout=WAIT)
    assert "tim@contoso.com" in page.inner_text(".approval[data-kind='pre']")
    shot(page, "09-production-succeeded")

    # The logs: read one, download one, download all.
    page.locator(".deployment[data-stage='Production'] a", has_text="view").first.click()
    page.locator("pre.log", has_text="7.0.0").wait_for(timeout=WAIT)
    shot(page, "10-log")
    with page.expect_download() as got:
        page.locator("a", has_text="download").first.click()
    assert "7.0.0" in Path(got.value.path()).read_text()
    page.goto(release_url)
    with page.expect_download() as got:
        page.click("#logs-zip")
    names = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes())).namelist()
    assert {n.split("/")[0] for n in names} == {"QA", "Production"}

    # The same build in both environments.
    page.click("text=Tutorial")
    page.click("text=What runs where")
    where = {stage: page.inner_text(f"#where tr[data-stage='{stage}']") for stage in ("QA", "Production")}
    assert all(f"release {release_id}" in row and "7.0.0" in row for row in where.values()), where
    shot(page, "11-same-build-in-both")
    definition = page.url.split("/pipelines/", 1)[1].split("/", 1)[0]
    for path, name in (("", "editor"), ("/history", "history"), ("/diff?a=1&b=1", "diff")):
        accessible(browser, f"{base}/editor/{definition}{path}", name)
    assert not errors, errors

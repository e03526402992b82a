"""The dashboard defects a newcomer met (issue 20), each reproduced in headless Chromium on the local
stack and shown fixed, and every main page checked with axe-core (no serious or critical
violations). Screenshots go to test-results/screenshots/defects-*.png."""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack
from tests.e2e.test_browser import SHOTS, chromium

pytestmark = pytest.mark.e2e
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PROXIED = "slipway.test"
"""A plain-http host name that is not localhost: Chromium sends no Sec-Fetch-* headers to it (Fetch
Metadata goes to potentially trustworthy URLs only), so only the Origin check vouches for its forms."""
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.ReleaseManager,Slipway.Admin"}
EMOJI = re.compile("[\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]")
"""Symbols a machine without an emoji (or symbol) font draws as empty boxes: ✋ ◐ ⏸ ✔ ✖ ⛔ ⊘ …"""
TAILSPIN = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium((f"--host-resolver-rules=MAP {PROXIED} 127.0.0.1",))


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def define(stack: LocalStack, body: dict[str, Any]) -> int:
    created = httpx.post(f"{stack.api}/definitions", json=body, timeout=30)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def publish(stack: LocalStack, version: str, source: str = "sample-webapp") -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None
    answer = sample_build.publish(version=version, source=source, api=stack.api, key=stack.function_key,
                                  storage_connection=stack.azurite.connection_string)
    assert answer.status_code in (200, 201), answer.text
    return list(answer.json()["releases"])


def settled(release: dict[str, Any]) -> bool:
    return all(s["status"] not in ("notStarted", "queued", "inProgress") for s in release["stages"])


class RewritingProxy:
    """A reverse proxy that does what many do by default (nginx's `proxy_set_header Host $proxy_host`,
    Application Gateway without a host override): the app sees the proxy's upstream address as Host,
    and the browser's host only in X-Forwarded-Host. It notes whether browsers sent Sec-Fetch-Site."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.fetch_metadata: list[str | None] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _go(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["X-Forwarded-Host"] = self.headers.get("Host", "")
                headers["X-Forwarded-Proto"] = "http"
                if self.command == "POST":
                    proxy.fetch_metadata.append(self.headers.get("Sec-Fetch-Site"))
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
                conn.request(self.command, self.path, body=body or None,
                             headers={**headers, "Host": f"127.0.0.1:{proxy.upstream}"})
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _go

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_forms_work_at_whatever_host_serves_the_dashboard(stack: LocalStack, browser: Any) -> None:
    """Issue 20: at `http://localhost:7071/` every form answered 400 "forms are accepted from this site
    only". Behind a proxy that rewrites Host (and for a browser that sends no Sec-Fetch-Site) the
    request's own URL names 127.0.0.1 while the browser's Origin names the host it asked for."""
    assert stack.host is not None
    did = define(stack, {"name": "Any host", "stages": [{**TAILSPIN["stages"][0], "steps": [
        {"type": "wait", "name": "Pause", "seconds": 1}]}]})
    proxy = RewritingProxy(stack.host.http_port)
    try:
        for base in (f"http://{PROXIED}:{proxy.port}", f"http://localhost:{stack.host.http_port}"):
            page = browser.new_context(extra_http_headers=AMITA).new_page()
            page.goto(f"{base}/pipelines/{did}")
            page.fill("#create-release input[name='description']", f"from {base}")
            page.click("#create-release button[type=submit]")
            page.wait_for_load_state()
            assert "forms are accepted from this site only" not in page.inner_text("body"), base
            assert re.fullmatch(re.escape(base) + r"/releases/\d+", page.url), page.url
            page.screenshot(path=str(SHOTS / f"defects-form-at-{base.split('//')[1].split(':')[0]}.png"),
                            full_page=True)
            page.context.close()
        assert proxy.fetch_metadata == [None], "the proxied host must be one browsers send no Sec-Fetch-Site to"
        # a cross-site form through the same proxy is still refused
        forged = httpx.post(f"http://127.0.0.1:{proxy.port}/pipelines/{did}/releases", headers={
            **AMITA, "Origin": "http://evil.example", "Host": f"{PROXIED}:{proxy.port}"}, data={"description": "x"})
        assert forged.status_code == 400 and "forms are accepted from this site only" in forged.text
    finally:
        proxy.close()


CLONED = {"name": "Cloned QA", "stages": [
    {**TAILSPIN["stages"][3], "name": "Production", "trigger": {"type": "afterStages", "stages": ["QA"]},
     "preApprovals": {"approvers": ["tim@contoso.com"], "policy": "anyOne"},
     "steps": [{"type": "wait", "name": "Soak", "seconds": 1}]},
    {**TAILSPIN["stages"][0], "name": "QA", "trigger": {"type": "afterRelease"},
     "steps": [{"type": "wait", "name": "Soak", "seconds": 1}]}]}
"""What cloning Production into "Copy of Production" and renaming it QA gives: QA listed after Production."""


def boxes(page: Any, selector: str) -> dict[str, dict[str, float]]:
    return dict(page.evaluate("""s => Object.fromEntries([...document.querySelectorAll(s)].map(
        g => [g.dataset.stage, (g.querySelector('rect') || g).getBBox()]).map(([n, b]) =>
        [n, {x: b.x, y: b.y, w: b.width, h: b.height}]))""", selector))


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and \
        b["y"] < a["y"] + a["h"]


def test_the_diagram_and_the_stage_columns_follow_the_pipeline_not_the_definition_order(
        stack: LocalStack, browser: Any) -> None:
    did = define(stack, CLONED)
    release = httpx.post(f"{stack.api}/releases", json={"definitionId": did}, timeout=30).json()
    stack.wait_for(release["id"], lambda r: {s["name"]: s["status"] for s in r["stages"]}["QA"] == "succeeded")
    page = browser.new_context(extra_http_headers=AMITA, viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{stack.host.base_url}/pipelines/{did}")  # type: ignore[union-attr]
    drawn = boxes(page, "svg g.stage")
    assert drawn["QA"]["x"] + drawn["QA"]["w"] < drawn["Production"]["x"], "QA is drawn left of Production"
    assert page.locator("svg path.edge[data-from='QA'][data-to='Production']").count() == 1
    assert page.locator("svg path.edge[data-from='Release'][data-to='QA']").count() == 1
    label = page.evaluate("""() => { const b = document.querySelector("g.approval-mark[data-stage='Production']")
        .getBBox(); return {x: b.x, y: b.y, w: b.width, h: b.height}; }""")
    assert not any(overlaps(label, box) for box in drawn.values()), "the approval label is not under a box"
    headers = page.locator("#releases tr").first.locator("th").all_inner_texts()
    assert headers[3:] == ["QA", "Production"]
    row = page.locator(f"#releases tr[data-release='{release['id']}']")
    assert "succeeded" in row.locator("td[data-stage='QA']").inner_text()
    assert "approval by tim@contoso.com" in row.locator("td[data-stage='Production']").inner_text()
    page.screenshot(path=str(SHOTS / "defects-diagram-cloned-stage.png"), full_page=True)
    page.goto(f"{stack.host.base_url}/releases/{release['id']}")  # type: ignore[union-attr]
    assert page.locator("#stages tr[data-stage]").evaluate_all("rows => rows.map(r => r.dataset.stage)") == \
        ["QA", "Production"]
    api = httpx.get(f"{stack.api}/releases/{release['id']}", timeout=30).json()
    assert [s["name"] for s in api["stages"]] == ["QA", "Production"]


def test_icons_need_no_emoji_font_and_only_running_releases_have_a_running_mark(
        stack: LocalStack, browser: Any) -> None:
    stage = {**TAILSPIN["stages"][0], "name": "Soak", "steps": [{"type": "wait", "name": "Soak", "seconds": 4}]}
    did = define(stack, {"name": "Marks", "stages": [stage, {**stage, "name": "Gate", "trigger": {
        "type": "afterStages", "stages": ["Soak"]}, "preApprovals": {"approvers": ["tim@contoso.com"]}}]})
    release = httpx.post(f"{stack.api}/releases", json={"definitionId": did}, timeout=30).json()
    page = browser.new_context(extra_http_headers=AMITA).new_page()
    page.goto(f"{stack.host.base_url}/releases/{release['id']}")  # type: ignore[union-attr]
    assert page.locator("#running-mark").is_visible(), "a running release shows its running mark"
    page.screenshot(path=str(SHOTS / "defects-release-running.png"), full_page=True)
    page.locator("tr[data-stage='Soak'] .stage-status", has_text="succeeded").wait_for(timeout=60_000)
    page.locator("#running-mark").wait_for(state="hidden", timeout=10_000)  # the live refresh takes it off
    page.reload()
    assert not page.locator("#running-mark").is_visible(), "a release that waits or is done has no running mark"
    for path in ("/", f"/pipelines/{did}", f"/releases/{release['id']}", "/approvals?all=1", "/metrics"):
        page.goto(f"{stack.host.base_url}{path}")  # type: ignore[union-attr]
        text = page.inner_text("body")
        assert not EMOJI.findall(text), (path, EMOJI.findall(text))
        assert page.locator("svg.icon").count() > 0, path
    page.goto(f"{stack.host.base_url}/pipelines/{did}")  # type: ignore[union-attr]
    row = page.locator(f"#releases tr[data-release='{release['id']}']")
    assert "running" not in row.locator("td").first.inner_text()
    assert "approval by tim@contoso.com" in row.inner_text()
    page.screenshot(path=str(SHOTS / "defects-icons-pipeline.png"), full_page=True)


def test_runs_there_now_after_a_swap_names_releases_and_deploy_answers_what_get_shows(
        stack: LocalStack, browser: Any) -> None:
    staging = {**TAILSPIN["stages"][3], "name": "Staging smoke", "trigger": {"type": "manual"},
               "steps": [{"type": "wait", "name": "Look", "seconds": 1}]}
    """A stage whose slot is the one Production swaps from: after the first swap it holds no release."""
    did = define(stack, {**TAILSPIN, "name": "Swapped", "stages": [*TAILSPIN["stages"], staging]})
    rid = next(r["id"] for r in publish(stack, "3.0.0", source="tailspin-web") if r["definitionId"] == did)
    got = stack.wait_for(rid, lambda r: settled({**r, "stages": r["stages"][:4]}), 120)
    assert [s["status"] for s in got["stages"]] == ["succeeded"] * 4 + ["notStarted"], got
    where = httpx.get(f"{stack.api}/definitions/{did}/environments", timeout=30).json()
    assert any(r["releaseId"] is None for r in where["slots"]), "the first swap left a slot with no release in it"
    for s in got["stages"]:
        assert s["nowRunning"] is None or s["nowRunning"]["releaseId"] == rid, s
        assert s["nowRunning"] is None or s["nowRunning"]["at"], "when the slot was seen"
    shown = {s["name"]: s["nowRunning"] for s in got["stages"]}
    assert shown["Production"] and shown["Production"]["releaseId"] == rid
    deployed = httpx.post(f"{stack.api}/releases/{rid}/stages/Dev/deploy", timeout=30)
    assert deployed.status_code == 202, deployed.text
    answered = {s["name"]: s["nowRunning"] for s in deployed.json()["stages"]}
    assert answered == shown, "POST …/deploy answers what runs where as GET does"
    stack.wait_for(rid, lambda r: settled({**r, "stages": r["stages"][:4]}), 120)

    page = browser.new_context(extra_http_headers=AMITA).new_page()
    page.goto(f"{stack.host.base_url}/releases/{rid}")  # type: ignore[union-attr]
    cells = page.locator("#stages td.now-running").all_inner_texts()
    assert cells and not any("None" in c for c in cells), cells
    assert "nothing from Slipway" in page.locator("tr[data-stage='Staging smoke'] td.now-running").inner_text()
    assert page.locator("a[href='/releases/None']").count() == 0
    assert f"release {rid}" in page.locator("tr[data-stage='Production'] td.now-running").inner_text()
    page.screenshot(path=str(SHOTS / "defects-runs-there-now.png"), full_page=True)
    page.goto(f"{stack.host.base_url}/pipelines/{did}/environments?verify=true")  # type: ignore[union-attr]
    assert "None" not in page.inner_text("#where") and page.locator("a[href='/releases/None']").count() == 0
    assert "nothing from Slipway" in page.locator("#where tr[data-stage='Staging smoke']").inner_text()
    assert "3.0.0" in page.locator("#where tr[data-stage='Production']").inner_text()
    page.screenshot(path=str(SHOTS / "defects-environments-after-swap.png"), full_page=True)


def approval_mail(stack: LocalStack, seen: int, name: str) -> str:
    assert stack.mail is not None
    deadline = time.monotonic() + 60
    while True:
        for mail in stack.mail.messages[seen:]:
            if mail["to"] == ["tim@contoso.com"] and name in mail["text"] + mail["subject"]:
                found = re.search(r"(http://\S+/api/approve/\S+)", mail["text"])
                if found:
                    return found[1]
        assert time.monotonic() < deadline, "no approval mail for Tim"
        time.sleep(0.1)


def test_the_approved_page_leads_back_to_the_release(stack: LocalStack, browser: Any) -> None:
    did = define(stack, {"name": "Link back", "stages": [{**TAILSPIN["stages"][0], "name": "Gatekept",
                         "steps": [{"type": "wait", "name": "Soak", "seconds": 1}],
                         "preApprovals": {"approvers": ["tim@contoso.com"]}}]})
    assert stack.mail is not None
    seen = len(stack.mail.messages)
    release = httpx.post(f"{stack.api}/releases", json={"definitionId": did}, timeout=30).json()
    link = approval_mail(stack, seen, "Link back")
    page = browser.new_context().new_page()
    page.goto(link)
    page.click("text=Act as tim@contoso.com")
    page.wait_for_url(link)
    page.click("button[value='approve']")
    page.locator("h1", has_text="Approved").wait_for(timeout=30_000)
    back = page.locator("#back-to-release")
    assert back.get_attribute("href") == f"/releases/{release['id']}"
    page.screenshot(path=str(SHOTS / "defects-approved-page.png"), full_page=True)
    back.click()
    page.wait_for_url(f"**/releases/{release['id']}")
    assert page.locator("h1").inner_text().startswith(release["name"])


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in found if v["impact"] in ("serious", "critical")]


def test_every_main_page_passes_axe_on_a_laptop_and_a_phone(stack: LocalStack, browser: Any) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is a devDependency: run `npm ci` in the repository")
    base = stack.host.base_url  # type: ignore[union-attr]
    did = define(stack, {**CLONED, "name": "Accessible"})
    assert stack.mail is not None
    seen = len(stack.mail.messages)
    release = httpx.post(f"{stack.api}/releases", json={"definitionId": did}, timeout=30).json()
    link = approval_mail(stack, seen, "Accessible")
    stack.wait_for(release["id"], lambda r: r["stages"][0]["status"] == "succeeded")
    pages = {"pipelines": "/", "pipeline": f"/pipelines/{did}", "release": f"/releases/{release['id']}",
             "approvals": "/approvals?all=1", "environments": f"/pipelines/{did}/environments",
             "log": f"/releases/{release['id']}/stages/QA/deployments/1/steps/0/log", "metrics": "/metrics",
             "deliveries": "/builds/deliveries", "approval-link": link.removeprefix(base)}
    for width, height, device in ((1366, 860, "laptop"), (390, 844, "phone")):
        context = browser.new_context(extra_http_headers=AMITA, bypass_csp=True,
                                      viewport={"width": width, "height": height})
        page = context.new_page()
        for name, path in pages.items():
            page.goto(f"{base}{path}")
            assert page.title(), name
            assert axe_violations(page) == [], (device, name)
            wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wider <= 1, f"{name} scrolls sideways on a {device} by {wider}px"
            page.screenshot(path=str(SHOTS / f"defects-{device}-{name}.png"), full_page=True)
        page.goto(f"{base}/pipelines/{did}")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        for _ in range(30):  # the keyboard reaches the release form, and shows where it is
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.name") == "description":
                break
        else:
            pytest.fail("the keyboard never reaches the description field")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), "a focused field shows a focus ring"
        context.close()

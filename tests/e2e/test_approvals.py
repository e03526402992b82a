"""Tim and Amita on the local stack: Production waits for Tim's approval; the mail's link page shows
the release to scanners and people alike, and only Tim's signed-in POST deploys it."""

from __future__ import annotations

import html
import json
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack

pytestmark = pytest.mark.e2e
AMITA = {"X-Slipway-Acting-As": "amita@contoso.com; roles=Slipway.ReleaseManager"}  # development mode
TIM = {"X-Slipway-Acting-As": "tim@contoso.com"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def definition(stack: LocalStack) -> int:
    sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
    sample["name"] = "Sample with approval"
    sample["stages"][2]["preApprovals"] = {"approvers": ["tim@contoso.com", "management"], "policy": "anyOne"}
    return int(httpx.post(f"{stack.api}/definitions", json=sample, timeout=30).json()["id"])


def eventually(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_tim_approves_production_from_the_mail(stack: LocalStack) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    assert stack.azurite is not None and stack.mail is not None
    did = definition(stack)
    sample_build.publish(version="4.0.0", storage_connection=stack.azurite.connection_string, api=stack.api)
    created = httpx.post(f"{stack.api}/releases", json={"definitionId": did}, headers=AMITA, timeout=30).json()
    rid = created["id"]
    assert created["createdBy"] == "amita@contoso.com"
    stack.wait_for(rid, lambda r: r["stages"][1]["status"] == "succeeded")
    deployed = httpx.post(f"{stack.api}/releases/{rid}/stages/Production/deploy", headers=AMITA, timeout=30)
    assert deployed.status_code == 202
    mail = eventually(lambda: next((m for m in stack.mail.messages if m["to"] == ["tim@contoso.com"]), None))
    assert mail and "Approval needed" in mail["subject"]
    link = re.search(r"(http://\S+/api/approve/\S+)", mail["text"])[1]  # type: ignore[index]
    assert "Approval needed" in httpx.get(stack.mail.page_url, timeout=10).text

    for agent in ["Mozilla/5.0 (compatible; SafeLinks)", "Barracuda", "Proofpoint URL Defense"] * 34:
        assert httpx.get(link, headers={"User-Agent": agent}, timeout=10).status_code == 200
        httpx.head(link, headers={"User-Agent": agent}, timeout=10)
    release = httpx.get(f"{stack.api}/releases/{rid}", timeout=30)
    assert release.json()["stages"][2]["deployments"][0]["approvals"]["pre"]["status"] == "pending"
    listed = httpx.get(f"{stack.api}/releases", params={"definitionId": did}, timeout=30).json()["value"]
    mine = next(r for r in listed if r["id"] == rid)
    assert mine["pendingApprovals"][0]["waitingFor"] == ["tim@contoso.com", "management"]

    page = httpx.get(link, timeout=10).text
    etag = re.search(r"name='etag' value='([^']+)'", page)[1]  # type: ignore[index]
    form = {"decision": "approve", "comment": "ship it", "etag": html.unescape(etag)}  # as a browser sends it
    assert httpx.post(link, data=form, headers=AMITA, timeout=30).status_code == 403
    answered = httpx.post(link, data=form, headers=TIM, timeout=30)
    assert answered.status_code == 200 and "Approved as tim@contoso.com" in answered.text
    done = stack.wait_for(rid, lambda r: r["stages"][2]["status"] == "succeeded")
    votes = done["stages"][2]["deployments"][0]["approvals"]["pre"]["votes"]
    assert [(v["by"], v["comment"]) for v in votes] == [("tim@contoso.com", "ship it")]
    assert httpx.post(link, data=form, headers=TIM, timeout=30).status_code == 410


def test_a_deferral_survives_a_restart_of_the_local_stack(tmp_path: Any) -> None:
    from datetime import UTC, datetime, timedelta

    def start() -> LocalStack:
        return LocalStack(persistent=True, fixed_ports=False, seed=False, max_polling_interval=0.1,
                          workdir=tmp_path).start()

    first = start()
    try:
        sample = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
        production = {**sample["stages"][2], "trigger": {"type": "manual"}, "steps": [{"type": "wait", "seconds": 0}],
                      "preApprovals": {"approvers": ["tim@contoso.com"]}}
        body = {"name": "Deferred", "stages": [production]}
        did = httpx.post(f"{first.api}/definitions", json=body, timeout=30).json()["id"]
        rid = httpx.post(f"{first.api}/releases", json={"definitionId": did}, headers=AMITA, timeout=30).json()["id"]
        httpx.post(f"{first.api}/releases/{rid}/stages/Production/deploy", headers=AMITA, timeout=30)
        until = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()  # long enough on a busy machine
        tag = httpx.get(f"{first.api}/releases/{rid}", timeout=30).headers["ETag"]
        deferred = httpx.post(f"{first.api}/releases/{rid}/stages/Production/defer", json={"until": until},
                              headers={**TIM, "If-Match": tag}, timeout=30)
        assert deferred.status_code == 200, deferred.text
        tag = httpx.get(f"{first.api}/releases/{rid}", timeout=30).headers["ETag"]
        approved = httpx.post(f"{first.api}/releases/{rid}/stages/Production/approvals/pre",
                              json={"decision": "approve"}, headers={**TIM, "If-Match": tag}, timeout=30)
        assert approved.json()["stages"][0]["waitingFor"].startswith("deferred until")
    finally:
        first.stop()
    second = start()  # the timer is a delayed message in Azurite's queue: it survived
    try:
        done = second.wait_for(rid, lambda r: r["stages"][0]["status"] == "succeeded", timeout=120)
        started = datetime.fromisoformat(done["stages"][0]["deployments"][0]["steps"][0]["startedOn"])
        assert started >= datetime.fromisoformat(until)
    finally:
        second.stop()

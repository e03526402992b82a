"""Retention on the local stack, as the issue's "done when" walks it: releases made on day 0, one of them deployed
to Production; the stack started again with its accelerated clock 40 days on; the retention timer removes the old
releases with their logs and packages, while the release in Production (and the newest, in Dev) stay."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from local.azurite import REPO
from local.stack import SAMPLE_TARGET, LocalStack
from shared import bootstrap
from shared.services import releases, step_logs
from shared.services.retention import REFERENCES_SINCE

pytestmark = pytest.mark.e2e
ADMIN = {"X-Slipway-Acting-As": "ines@contoso.com; roles=Slipway.Admin"}  # development mode
DAY0 = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)
T = TypeVar("T")


def settings(start: datetime) -> dict[str, str]:
    return {"SLIPWAY_CLOCK_START": start.isoformat(), "SLIPWAY_CLOCK_SPEED": "1",
            "SLIPWAY_RETENTION_SCHEDULE": "*/2 * * * * *"}


def until(what: str, probe: Callable[[], T | None], seconds: float = 90) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def release_of(stack: LocalStack, release_id: int) -> dict[str, Any]:
    return httpx.get(f"{stack.api}/releases/{release_id}", headers=ADMIN, timeout=30).json()  # type: ignore[no-any-return]


def settled(stack: LocalStack, release_id: int, stage: str) -> dict[str, Any] | None:
    release = release_of(stack, release_id)
    found = next(s for s in release["stages"] if s["name"] == stage)
    return release if found["status"] in ("succeeded", "failed") else None


def test_thirty_days_on_the_old_releases_go_and_production_stays(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import build as sample_build  # type: ignore[import-not-found]

    definition = {"name": "Kept thirty days", "retention": {"days": 30, "minimumReleases": 1},
                  "artifacts": [{"alias": "web", "source": "retained-webapp"}],
                  "stages": [{"name": "Dev", "target": {**SAMPLE_TARGET, "slot": "dev"},
                              "trigger": {"type": "afterRelease"}, "steps": [{"type": "deploy-package"}]},
                             {"name": "Production", "target": {**SAMPLE_TARGET, "slot": "uat"},
                              "trigger": {"type": "manual"}, "steps": [{"type": "deploy-package"}]}]}
    made: list[dict[str, Any]] = []
    with LocalStack(persistent=True, workdir=tmp_path, fixed_ports=False, seed=False, max_polling_interval=0.1,
                    extra_settings=settings(DAY0)) as stack:
        assert stack.azurite is not None
        # Retention's first tick comes before these builds: their releases record the packages they use.
        until("retention's first tick", lambda: bootstrap.deps().store.document(*REFERENCES_SINCE))
        created = httpx.post(f"{stack.api}/definitions", json=definition, headers=ADMIN, timeout=60)
        assert created.status_code == 201, created.text
        did = created.json()["id"]
        for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
            answer = sample_build.publish(version=version, source="retained-webapp",
                                          storage_connection=stack.azurite.connection_string, api=stack.api)
            assert answer.status_code in (200, 201), answer.text
            body = httpx.post(f"{stack.api}/releases", json={"definitionId": did, "artifacts": [
                {"alias": "web", "version": version}]}, headers=ADMIN, timeout=60)
            assert body.status_code == 201, body.text
            made_id = body.json()["id"]
            release = until(f"{version} in Dev", lambda rid=made_id: settled(stack, rid, "Dev"))
            made.append(release)
            if version == "1.0.0":
                deployed = httpx.post(f"{stack.api}/releases/{release['id']}/stages/Production/deploy", json={},
                                      headers=ADMIN, timeout=60)
                assert deployed.status_code == 202, deployed.text
                until("1.0.0 in Production", lambda rid=made_id: settled(stack, rid, "Production"))
        kept = release_of(stack, made[0]["id"])["retention"]
        assert "runs in Production now" in kept["keptBecause"]
        deps = bootstrap.deps()
        did_of = {r["id"]: int(releases.get(deps, r["id"]).definition_id) for r in made}
        assert all(step_logs.read(deps, releases.get(deps, r["id"]), "Dev", 1, 0) for r in made)
        stored = {r["id"]: releases.get(deps, r["id"]).artifacts[0]["stored"] for r in made}
        store = deps.packages.store_container  # type: ignore[attr-defined]
        assert all(store.get_blob_client(name).exists() for name in stored.values())

    forty_days_on = DAY0 + timedelta(days=40)
    with LocalStack(persistent=True, workdir=tmp_path, fixed_ports=False, seed=False, max_polling_interval=0.1,
                    extra_settings=settings(forty_days_on)) as stack:
        listed = until("the old releases to go", lambda: (lambda ids: ids if len(ids) == 2 else None)(
            [r["id"] for r in httpx.get(f"{stack.api}/releases", params={"definitionId": did}, headers=ADMIN,
                                        timeout=30).json()["value"]]))
        first, old1, old2, newest = (r["id"] for r in made)
        assert sorted(listed) == sorted([first, newest])  # Production's, and Dev's newest (minimumReleases 1)
        for gone in (old1, old2):
            assert httpx.get(f"{stack.api}/releases/{gone}", headers=ADMIN, timeout=30).status_code == 404
        deps = bootstrap.deps()
        assert not deps.store.log_parts(did_of[old1], old1) and not deps.store.log_parts(did_of[old2], old2)
        assert step_logs.read(deps, releases.get(deps, first), "Dev", 1, 0)
        store = deps.packages.store_container  # type: ignore[attr-defined]
        assert not store.get_blob_client(stored[old1]).exists() and not store.get_blob_client(stored[old2]).exists()
        assert store.get_blob_client(stored[first]).exists() and store.get_blob_client(stored[newest]).exists()
        assert "runs in Production now" in release_of(stack, first)["retention"]["keptBecause"]

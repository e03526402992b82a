"""`slipway definition apply|export` on the local stack: the Tailspin pipeline kept as YAML is created, applied
again without a new revision, diffed after one value is edited, and applied as one new revision; its export
applies as a no-op."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.azurite import REPO
from local.stack import LocalStack
from slipway_cli.definitions import read_file

pytestmark = pytest.mark.e2e

PIPELINE = REPO / "examples" / "tailspin-pipeline.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


def slipway(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slipway_cli", "--endpoint", stack.api, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def revisions(stack: LocalStack, definition_id: int) -> list[int]:
    listed = httpx.get(f"{stack.api}/definitions/{definition_id}/revisions", timeout=30).json()
    return [r["revision"] for r in listed["value"]]


def test_the_yaml_pipeline_applies_once_per_change_with_a_diff_first(stack: LocalStack, tmp_path: Path) -> None:
    created = slipway(stack, "definition", "apply", "-f", str(PIPELINE), "--yes")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "created definition" in created.stdout
    found = httpx.get(f"{stack.api}/definitions", params={"name": "tailspin"}, timeout=30).json()["value"]
    assert [d["name"] for d in found] == ["Tailspin"]
    did = int(found[0]["id"])

    again = slipway(stack, "definition", "apply", "-f", str(PIPELINE), "--yes")
    assert again.returncode == 0 and again.stdout.startswith("no changes"), again.stdout + again.stderr
    assert revisions(stack, did) == [1]

    edited = tmp_path / "pipeline.yaml"
    edited.write_text(PIPELINE.read_text().replace("timeoutSeconds: 20", "timeoutSeconds: 45", 1))
    diff = slipway(stack, "definition", "apply", "-f", str(edited), "--diff")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    changed = [line for line in diff.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ['-          "timeoutSeconds": 20,', '+          "timeoutSeconds": 45,']
    assert slipway(stack, "definition", "apply", "-f", str(edited), "--diff", "--exit-code").returncode == 1
    unasked = slipway(stack, "definition", "apply", "-f", str(edited))  # not a terminal, no --yes
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert revisions(stack, did) == [1]

    applied = slipway(stack, "definition", "apply", "-f", str(edited), "--yes")
    assert applied.returncode == 0 and "to revision 2" in applied.stdout, applied.stdout + applied.stderr
    assert slipway(stack, "definition", "apply", "-f", str(edited), "--yes").stdout.startswith("no changes")
    assert revisions(stack, did) == [1, 2]

    for fmt in ("yaml", "json"):
        out = tmp_path / f"exported.{fmt}"
        exported = slipway(stack, "definition", "export", "Tailspin", "-f", str(out))
        assert exported.returncode == 0, exported.stdout + exported.stderr
        assert not set(read_file(str(out))) & {"id", "revision", "modifiedBy", "modifiedOn"}
        reapplied = slipway(stack, "definition", "apply", "-f", str(out), "--yes")
        assert reapplied.stdout.startswith("no changes"), reapplied.stdout + reapplied.stderr
    assert revisions(stack, did) == [1, 2]

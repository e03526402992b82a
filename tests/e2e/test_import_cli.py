"""`slipway import ado` on the local stack: a classic release definition read from an Azure DevOps organisation (the
stack's Azure DevOps emulator) with a PAT, or from a file, becomes a Slipway definition and a migration report."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.azurite import REPO
from local.stack import SAMPLE_TARGET, LocalStack

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "ado-samples"
DEMOGEN_1 = SAMPLES / "definitions" / "demogen-1.json"
ORG, PROJECT = "contoso", "Health Clinic"
PAT_VARIABLE = "AZURE_DEVOPS_EXT_PAT"
TARGET = ["--subscription", SAMPLE_TARGET["subscriptionId"], "--resource-group", SAMPLE_TARGET["resourceGroup"],
          "--site", SAMPLE_TARGET["site"]]


def exported() -> dict[str, Any]:
    """demogen-1 as the team running the local stack's sample app would have it: its `ResourceGroupName` variable
    names the app's resource group (the sample's own `dotnetcore` does not exist here). Its app name is a `$UUID$`
    token, so the default target (`--resource-group --site`) gives the app, whole."""
    document = dict(json.loads(DEMOGEN_1.read_text(encoding="utf-8-sig")))
    document["variables"]["ResourceGroupName"]["value"] = SAMPLE_TARGET["resourceGroup"]
    return document


@dataclass
class Organisation:
    url: str
    """What `--from-org` is given: the emulator's address and the organisation."""
    definition_id: int
    pat: str
    """A PAT with Release (read)."""
    build_pat: str
    """A PAT with Build (read) only."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        assert running.emulator is not None  # the sample app gets the slot the definition's QA stage deploys to
        running.emulator.add_site(SAMPLE_TARGET["subscriptionId"], SAMPLE_TARGET["resourceGroup"],
                                  SAMPLE_TARGET["site"], slots=["staging"])
        yield running


@pytest.fixture(scope="module")
def org(stack: LocalStack) -> Organisation:
    azdo = stack.azure_devops
    assert azdo is not None
    definition_id = azdo.add_release_definition(ORG, PROJECT, exported())
    pat, build_pat = secrets.token_urlsafe(39), secrets.token_urlsafe(39)
    azdo.add_pat(pat, name="amita@contoso.com", orgs=[ORG], scopes=["vso.release"])
    azdo.add_pat(build_pat, name="amita@contoso.com", orgs=[ORG], scopes=["vso.build"])
    return Organisation(f"{azdo.url}/{ORG}", definition_id, pat, build_pat)


def slipway(stack: LocalStack, *args: str, pat: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != PAT_VARIABLE}
    if pat is not None:
        env[PAT_VARIABLE] = pat
    return subprocess.run([sys.executable, "-m", "slipway_cli", "--endpoint", stack.api, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def from_org(org: Organisation, *args: str) -> list[str]:
    return ["import", "ado", "--from-org", org.url, "--project", PROJECT, "--definition-id", str(org.definition_id),
            *args]


def definitions(stack: LocalStack) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    params: dict[str, str] = {"top": "200"}
    while True:
        page = httpx.get(f"{stack.api}/definitions", params=params, timeout=30)
        page.raise_for_status()
        body = page.json()
        listed += body["value"]
        if not body.get("continuationToken"):
            return listed
        params = {"top": "200", "continuationToken": body["continuationToken"]}


def test_a_dry_run_from_the_organisation_prints_the_report_and_saves_nothing(stack: LocalStack,
                                                                            org: Organisation) -> None:
    assert stack.azure_devops is not None
    before = definitions(stack)
    out = slipway(stack, *from_org(org, "--dry-run", *TARGET), pat=org.pat)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dry run: nothing saved" in out.stdout and "elements:" in out.stdout
    assert "would be refused" not in out.stdout
    for stage in ("Dev", "QA", "Production"):
        assert f"stage         {stage} -> " in out.stdout
    assert definitions(stack) == before
    untargeted = slipway(stack, *from_org(org, "--dry-run"), pat=org.pat)  # no app to deploy to: placeholders
    assert untargeted.returncode == 2 and "would be refused: stages[0].target" in untargeted.stdout
    assert definitions(stack) == before
    asked = [r for r in stack.azure_devops.requests if r.path.endswith(f"/release/definitions/{org.definition_id}")]
    assert asked and asked[-1].query == {"api-version": "7.1"} and asked[-1].path.startswith(f"/{ORG}/{PROJECT}/")
    assert org.pat not in out.stdout + out.stderr


def test_an_import_from_the_organisation_creates_the_definition(stack: LocalStack, org: Organisation) -> None:
    before = {d["id"] for d in definitions(stack)}
    out = slipway(stack, "-o", "json", *from_org(org, "--name", "Health Clinic (from the organisation)", *TARGET),
                  pat=org.pat)
    assert out.returncode == 0, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert answer["saved"] is True and answer["report"] and answer["summary"]
    created = answer["definition"]
    assert created["id"] not in before and created["name"] == "Health Clinic (from the organisation)"
    assert created["id"] in {d["id"] for d in definitions(stack)}
    stored = httpx.get(f"{stack.api}/definitions/{created['id']}", timeout=30)
    assert stored.status_code == 200 and [s["name"] for s in stored.json()["stages"]] == ["Dev", "QA", "Production"]
    assert org.pat not in out.stdout + out.stderr


def test_an_import_from_a_file(stack: LocalStack, tmp_path: Path) -> None:
    export = tmp_path / "MyHealthClinicE2E.json"
    export.write_text(json.dumps(exported()), encoding="utf-8-sig")  # read with its byte order mark too
    out = slipway(stack, "import", "ado", str(export), "--name", "Health Clinic (from a file)", *TARGET)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "created definition" in out.stdout and "'Health Clinic (from a file)'" in out.stdout
    assert "Health Clinic (from a file)" in {d["name"] for d in definitions(stack)}


@pytest.mark.parametrize("case", ["wrong PAT", "PAT without Release (read)"])
def test_a_refused_pat_exits_two_and_is_never_printed(stack: LocalStack, org: Organisation, case: str) -> None:
    pat = secrets.token_urlsafe(39) if case == "wrong PAT" else org.build_pat
    before = definitions(stack)
    out = slipway(stack, *from_org(org, "--dry-run"), pat=pat)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "PAT" in out.stderr and "refused" in out.stderr and PAT_VARIABLE in out.stderr
    assert pat not in out.stdout + out.stderr and org.pat not in out.stdout + out.stderr
    assert definitions(stack) == before


@pytest.mark.parametrize(("extra", "message"), [
    (["--project", PROJECT, "--definition-id", "1", str(DEMOGEN_1)], "not both"),
    (["--definition-id", "1"], "--project"),
    (["--project", PROJECT], "--definition-id"),
])
def test_arguments_that_do_not_go_together(stack: LocalStack, org: Organisation, extra: list[str],
                                           message: str) -> None:
    out = slipway(stack, "import", "ado", "--from-org", org.url, *extra, pat=org.pat)
    assert out.returncode == 2 and message in out.stderr, out.stdout + out.stderr


def test_what_the_organisation_cannot_give(stack: LocalStack, org: Organisation) -> None:
    unset = slipway(stack, *from_org(org, "--dry-run"))
    assert unset.returncode == 2 and PAT_VARIABLE in unset.stderr
    missing = slipway(stack, "import", "ado", "--from-org", org.url, "--project", PROJECT, "--definition-id", "999",
                      "--dry-run", pat=org.pat)
    assert missing.returncode == 2 and "404" in missing.stderr and "VS402936" in missing.stderr
    nowhere = slipway(stack, "import", "ado", "--from-org", "dev.azure.com/contoso", "--project", PROJECT,
                      "--definition-id", "1", pat=org.pat)
    assert nowhere.returncode == 2 and "not an organisation URL" in nowhere.stderr


def test_an_admin_issues_lists_and_revokes_a_token_for_the_compatible_api(stack: LocalStack) -> None:
    issued = slipway(stack, "-o", "json", "token", "create", "--name", "release scripts", "--identity",
                     "amita@contoso.com", "--role", "releaseManager", "--expires-in-days", "30")
    assert issued.returncode == 0, issued.stderr
    record = json.loads(issued.stdout)
    token, token_id = record["token"], record["id"]
    listing = slipway(stack, "token", "list")
    assert listing.returncode == 0 and token_id in listing.stdout and "active" in listing.stdout
    assert token not in listing.stdout
    url = f"{stack.api.removesuffix('/api')}/ado/contoso/Web/_apis/Release/definitions"
    assert httpx.get(url, auth=("", token), timeout=30).status_code == 200
    revoked = slipway(stack, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(url, auth=("", token), timeout=30).status_code == 401
    assert "revoked" in slipway(stack, "token", "list").stdout

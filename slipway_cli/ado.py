"""`slipway import ado`: read a classic release definition (a file, or an Azure DevOps organisation
through its Release REST API) and send it to Slipway's importer; print the migration report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from slipway_cli.api import ApiError, Client

PAT_VARIABLE = "AZURE_DEVOPS_EXT_PAT"
"""Where the PAT comes from: the variable the Azure CLI's devops extension reads too, so it never
appears on a command line (or in a process list)."""
MARKS = {"mapped": "=", "changed": "~", "replaced": "!", "dropped": "x"}


def add_parser(groups: Any) -> None:
    imports = groups.add_parser("import", help="import pipelines from other tools").add_subparsers(
        dest="command", required=True)
    ado = imports.add_parser(
        "ado", help="import an Azure DevOps classic release definition and print the migration report",
        description="Import an Azure DevOps classic release definition (the portal's Export, the JSON that "
                    "GET _apis/release/definitions/{id} returns, or --from-org) as a Slipway definition, and print "
                    "what each stage, trigger, approval, gate, variable and task became. Report marks: = mapped, "
                    "~ changed, ! replaced by a manual intervention, x dropped.")
    ado.add_argument("file", nargs="?", help="the definition's JSON file ('-' for standard input); "
                                             "not with --from-org")
    ado.add_argument("--from-org", metavar="URL",
                     help="read it from this organisation (https://dev.azure.com/ORG) with the PAT in "
                          f"${PAT_VARIABLE}; needs --project and --definition-id")
    ado.add_argument("--project", help="the Azure DevOps project (with --from-org)")
    ado.add_argument("--definition-id", type=int, help="the release definition's id (with --from-org)")
    ado.add_argument("--dry-run", action="store_true", help="print the report and the definition; save nothing")
    ado.add_argument("--strict", action="store_true",
                     help="refuse the import when a task has no Slipway equivalent (default: replace each such "
                          "task by a manual intervention that says what it did)")
    ado.add_argument("--name", help="the Slipway definition's name (default: the imported one's)")
    ado.add_argument("--subscription", metavar="ID", help="default target: subscription id (ADO names "
                                                          "subscriptions by service connection)")
    ado.add_argument("--resource-group", help="default target: resource group")
    ado.add_argument("--site", help="default target: App Service app")


def add_token_parser(groups: Any) -> None:
    tokens = groups.add_parser("token", help="admins: personal access tokens for the Azure DevOps-compatible API "
                                             "(/ado/{organization})").add_subparsers(dest="command", required=True)
    create = tokens.add_parser("create", help="issue a token; it is printed once, never again")
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument("--identity", required=True, help="the sign-in name it acts as (its approvals are theirs)")
    create.add_argument("--role", action="append", required=True, choices=["admin", "releaseManager", "reader"],
                        help="a role it holds (repeat for several); it never holds more")
    create.add_argument("--group", dest="member_of", action="append", default=[],
                        help="a group it counts as a member of (repeat for several)")
    create.add_argument("--expires-in-days", type=int, default=90, help="1 to 365 (default 90)")
    tokens.add_parser("list", help="the tokens issued (never the tokens themselves)")
    revoke = tokens.add_parser("revoke", help="revoke a token: its next call is refused")
    revoke.add_argument("id", help="the token's id (from token list)")


def token_create(client: Client, args: argparse.Namespace) -> int:
    body = {"name": args.name, "identity": args.identity, "roles": args.role, "groups": args.member_of,
            "expiresInDays": args.expires_in_days}
    issued = client.call("POST", "/tokens", json=body)
    if args.output == "json":
        print(json.dumps(issued, indent=2))
    else:
        print(f"token {issued['id']} for {issued['identity']} ({', '.join(issued['roles'])}), expires "
              f"{issued['expiresOn']}:\n{issued['token']}\nIt is shown this once: keep it in your secret store.")
    return 0


def token_list(client: Client, args: argparse.Namespace) -> int:
    page = client.call("GET", "/tokens")
    rows = [f"{t['id']:<10} {t['name']:<30} {t['identity']:<30} {','.join(t['roles']):<28} "
            f"{t['status']:<8} expires {t['expiresOn'][:10]}" for t in page["value"]]
    print(json.dumps(page, indent=2) if args.output == "json" else "\n".join(rows) or "no tokens")
    return 0


def token_revoke(client: Client, args: argparse.Namespace) -> int:
    client.send("DELETE", f"/tokens/{quote(args.id, safe='')}")
    print(f"token {args.id} revoked")
    return 0


def import_ado(client: Client, args: argparse.Namespace) -> int:
    try:
        document = _document(args)
    except (OSError, ValueError, ApiError) as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 2
    params = {"dryRun": "true" if args.dry_run else None, "strict": "true" if args.strict else None,
              "name": args.name, "subscriptionId": args.subscription, "resourceGroup": args.resource_group,
              "site": args.site}
    answer = client.call("POST", "/definitions/import", json=document,
                         params={k: v for k, v in params.items() if v is not None})
    if args.output == "json":
        print(json.dumps(answer, indent=2))
    else:
        print(report_table(answer))
    return 0 if answer["saved"] or not answer.get("problems") else 2


def report_table(answer: dict[str, Any]) -> str:
    """The migration report as a person reads it: one line per element, then what was saved."""
    lines = []
    for entry in answer["report"]:
        became = f" -> {entry['became']}" if entry["became"] else ""
        lines.append(f"{MARKS.get(entry['outcome'], '?')} {entry['kind']:<13} {entry['name']}{became}")
        if entry["note"]:
            lines.append(f"    {entry['note']}")
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(answer["summary"].items()))
    lines.append(f"\n{len(answer['report'])} elements: {summary}")
    definition = answer["definition"]
    if answer["saved"]:
        lines.append(f"created definition {definition['id']} '{definition['name']}' (revision "
                     f"{definition['revision']})")
    else:
        lines += ["dry run: nothing saved. The definition it would create:", json.dumps(definition, indent=2)]
        for problem in answer.get("problems") or []:
            lines.append(f"would be refused: {problem['field']}: {problem['message']}")
    return "\n".join(lines)


def _document(args: argparse.Namespace) -> Any:
    if args.from_org:
        if args.file:
            raise ValueError("give a file or --from-org, not both")
        if not args.project or args.definition_id is None:
            raise ValueError("--from-org needs --project and --definition-id")
        pat = os.environ.get(PAT_VARIABLE)
        if not pat:
            raise ValueError(f"--from-org reads the PAT from ${PAT_VARIABLE}: set it")
        return read_from_org(args.from_org, args.project, args.definition_id, pat)
    if args.project or args.definition_id is not None:
        raise ValueError("--project and --definition-id go with --from-org")
    if not args.file:
        raise ValueError("give the definition's JSON file, or --from-org")
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{args.file} is not JSON: {exc}") from None


def release_base(org_url: str) -> str:
    """Where an organisation's Release REST API lives: dev.azure.com/ORG -> vsrm.dev.azure.com/ORG and
    ORG.visualstudio.com -> ORG.vsrm.visualstudio.com (learn.microsoft.com, Azure DevOps REST API
    reference, Release: the `vsrm` host); any other host (Azure DevOps Server) as given."""
    parts = urlsplit(org_url.rstrip("/"))
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"--from-org: '{org_url}' is not an organisation URL such as https://dev.azure.com/ORG")
    host = parts.hostname or ""
    if parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        raise ValueError(f"--from-org: '{org_url}' is plain http: the PAT would cross the network unencrypted "
                         "(use https)")
    if host == "dev.azure.com":
        parts = parts._replace(netloc="vsrm.dev.azure.com")
    elif host.endswith(".visualstudio.com") and not host.endswith(".vsrm.visualstudio.com"):
        parts = parts._replace(netloc=host.removesuffix(".visualstudio.com") + ".vsrm.visualstudio.com")
    return urlunsplit(parts)


def read_from_org(org_url: str, project: str, definition_id: int, pat: str) -> Any:
    url = f"{release_base(org_url)}/{quote(project, safe='')}/_apis/release/definitions/{definition_id}"
    try:
        response = httpx.get(url, params={"api-version": "7.1"}, auth=("", pat), timeout=60,
                             headers={"Accept": "application/json", "X-TFS-FedAuthRedirect": "Suppress"})
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach {url}: {exc}") from None
    if response.status_code in (401, 203):  # 203 with a sign-in page: the PAT was not accepted
        raise ApiError(f"{url}: the PAT in ${PAT_VARIABLE} was refused (it needs Release: Read)")
    if response.status_code >= 400:
        raise ApiError(f"{url}: HTTP {response.status_code}: {_message(response)}")
    try:
        return response.json()
    except ValueError:
        raise ApiError(f"{url} did not answer JSON (is it an organisation URL?)") from None


def _message(response: httpx.Response) -> str:
    """The error's message: Azure DevOps' `{"message": …}`, else the start of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", "") if isinstance(body, dict) else body)[:300]

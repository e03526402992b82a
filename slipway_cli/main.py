"""slipway: create releases, wait for stages, deploy, read logs.

The endpoint comes from --endpoint or SLIPWAY_ENDPOINT. Sign in with a Microsoft Entra access token
(--token or SLIPWAY_TOKEN: a pipeline's workload identity, or `az account get-access-token
--resource <Slipway's app id URI> --query accessToken -o tsv`), or a function key (--key or
SLIPWAY_KEY). On the local stack, --as NAME acts as someone else (development mode only). Exit codes:
0 done (the awaited stage succeeded), 1 the awaited stage failed, was rejected or canceled,
2 bad usage or an API error, 3 timed out waiting, 130 interrupted (Ctrl-C), 141 the reader of the
output went away (`slipway release list | head -1`). SLIPWAY_DEBUG=1 shows a traceback when an answer
has a shape this client does not know.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any
from urllib.parse import quote

from slipway_cli import ado, definitions
from slipway_cli.api import ApiError, Client

FINISHED = {"succeeded", "partiallySucceeded", "failed", "rejected", "canceled"}
GOOD = {"succeeded", "partiallySucceeded"}
EXIT_OK, EXIT_STAGE_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
"""128 + SIGINT and 128 + SIGPIPE, what a shell reports for a program those signals stopped."""


RELEASE_HELP = "the release's id (as release list shows it)"
STAGE_HELP = "the stage's name, e.g. Production"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("SLIPWAY_ENDPOINT", "http://localhost:7071/api"),
                        help="Slipway's API address, ending in /api (default: $SLIPWAY_ENDPOINT, else "
                             "http://localhost:7071/api; in Azure: https://APP.azurewebsites.net/api)")
    parser.add_argument("--key", default=os.environ.get("SLIPWAY_KEY"), help="function key (x-functions-key)")
    parser.add_argument("--token", default=os.environ.get("SLIPWAY_TOKEN"),
                        help="Microsoft Entra access token for Slipway's app (sent as a bearer token)")
    parser.add_argument("--as", dest="acting_as", default=os.environ.get("SLIPWAY_AS"), metavar="NAME",
                        help="local stack, development mode only: act as NAME "
                             "(e.g. 'amita@contoso.com; roles=Slipway.ReleaseManager')")
    parser.add_argument("--output", "-o", choices=["table", "json"], default="table",
                        help="table for people (default), json for scripts: the API's answer as it is")
    groups = parser.add_subparsers(dest="group", required=True)

    release = groups.add_parser("release", help="create, list and show releases").add_subparsers(
        dest="command", required=True)
    create = release.add_parser("create", help="create a release (and optionally wait for a stage)")
    create.add_argument("--definition", "-d", type=int, required=True, help="definition id")
    create.add_argument("--artifact", "-a", action="append", default=[], metavar="ALIAS=VERSION",
                        help="artifact version; the newest registered version when omitted")
    create.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a value for a variable the definition lets a release set (allowOverride)")
    create.add_argument("--description", default="", help="the release's description")
    create.add_argument("--debug", action="store_true", help="verbose step logs for this release")
    create.add_argument("--idempotency-key", default=None,
                        help="retrying with the same key returns the first release (default: a new key)")
    create.add_argument("--wait-for", metavar="STAGE", help="wait until this stage finishes; fail if it fails")
    create.add_argument("--timeout", type=float, default=3600, help="seconds to wait (default 3600)")
    listing = release.add_parser("list", help="list releases, newest first")
    listing.add_argument("--definition", "-d", type=int, help="only this definition's releases (its id)")
    listing.add_argument("--status", choices=["active", "abandoned"], help="only releases with this status")
    listing.add_argument("--top", type=int, default=25, help="at most this many (default 25)")
    show = release.add_parser("show", help="one release with its stages")
    show.add_argument("release", type=int, help=RELEASE_HELP)
    wait = release.add_parser("wait", help="wait for a stage of a release")
    wait.add_argument("release", type=int, help=RELEASE_HELP)
    wait.add_argument("stage", help=STAGE_HELP)
    wait.add_argument("--timeout", type=float, default=3600, help="seconds to wait (default 3600)")
    abandon = release.add_parser("abandon", help="abandon a release; its running deployments are canceled")
    abandon.add_argument("release", type=int, help=RELEASE_HELP)
    abandon.add_argument("--comment", default="", help="why (kept in the release's history)")

    stage = groups.add_parser("stage", help="deploy a stage of a release").add_subparsers(
        dest="command", required=True)
    for name, reason in (("deploy", None), ("redeploy", "redeploy"), ("rollback", "rollback")):
        cmd = stage.add_parser(name, help=f"{name} a stage now" + (" (an earlier release)" if reason == "rollback"
                                                                    else ""))
        cmd.add_argument("release", type=int, help="the earlier release to put back on the stage (its id)"
                         if reason == "rollback" else RELEASE_HELP)
        cmd.add_argument("stage", help=STAGE_HELP)
        cmd.add_argument("--wait", action="store_true", help="wait until the stage finishes")
        cmd.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (default 3600)")
        cmd.add_argument("--break-glass", metavar="REASON",
                         help="admins: deploy outside the stage's windows and freezes (audited)")
        cmd.add_argument("--not-before", metavar="TIME", help="run the steps no earlier than this ISO-8601 time")
        cmd.add_argument("--override-reason", metavar="REASON",
                         help="admins: deploy a manual stage before the release passed the stages it requires "
                              "(audited)")
        cmd.set_defaults(reason=reason)
    ignore = stage.add_parser("ignore-gate", help="admins: let the deployment past a running gate (audited)")
    ignore.add_argument("release", type=int, help=RELEASE_HELP)
    ignore.add_argument("stage", help=STAGE_HELP)
    ignore.add_argument("--kind", choices=["pre", "post"], required=True,
                        help="the pre-deployment or the post-deployment gate")
    ignore.add_argument("--comment", required=True, help="why (audited)")

    approval = groups.add_parser("approval", help="list, approve, reject and defer approvals").add_subparsers(
        dest="command", required=True)
    pending = approval.add_parser("list", help="pending approvals you can decide (--all: everyone's)")
    pending.add_argument("--all", action="store_true", help="everyone's pending approvals, not only yours")
    pending.add_argument("--definition", "-d", type=int, help="only this definition's approvals (its id)")
    for name in ("approve", "reject", "defer"):
        cmd = approval.add_parser(name, help=f"{name} the pending approval of a stage")
        cmd.add_argument("release", type=int, help=RELEASE_HELP)
        cmd.add_argument("stage", help="the stage whose approval waits (its name)")
        cmd.add_argument("--comment", default="", help="why (kept in the release's history)")
        if name == "defer":
            cmd.add_argument("--until", required=True, help="ISO-8601 time with a zone, e.g. 2026-12-01T03:00Z")
        else:
            cmd.add_argument("--kind", choices=["pre", "post"], help="default: the one pending")

    intervention = groups.add_parser("intervention", help="resume or reject a manual intervention").add_subparsers(
        dest="command", required=True)
    for name in ("resume", "reject"):
        cmd = intervention.add_parser(name, help=f"{name} the stage's manual intervention that waits")
        cmd.add_argument("release", type=int, help=RELEASE_HELP)
        cmd.add_argument("stage", help=STAGE_HELP)
        cmd.add_argument("--comment", default="", help="why (kept in the release's history)")

    logs = groups.add_parser("logs", help="print (or follow) the logs of a stage's deployment, or download all")
    logs.add_argument("release", type=int, help=RELEASE_HELP)
    logs.add_argument("stage", nargs="?", help="required unless --zip")
    logs.add_argument("--attempt", type=int, help="deployment attempt (default: the latest)")
    logs.add_argument("--step", type=int, help="one step only (default: every step)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing while the deployment runs")
    logs.add_argument("--zip", metavar="FILE", help="download every log of the release into FILE")
    ado.add_parser(groups)
    ado.add_token_parser(groups)
    definitions.add_parser(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command's exit code; expected failures are one line on standard error, never a traceback."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("slipway: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    client = Client(args.endpoint, args.key, token=args.token, acting_as=args.acting_as)
    try:
        return COMMANDS[(args.group, getattr(args, "command", None))](client, args)
    except ApiError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file that cannot be written or read
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        if os.environ.get("SLIPWAY_DEBUG"):
            raise
        print(f"slipway: {client.endpoint} answered in a shape this client does not know ({type(exc).__name__}: "
              f"{exc}): is it Slipway's API, of the same version as this client? (SLIPWAY_DEBUG=1 shows where)",
              file=sys.stderr)
        return EXIT_ERROR


def _quiet_stdout() -> None:
    """After the reader went away: point standard output at /dev/null, so that Python's flush at exit
    does not fail again (docs.python.org, signal module, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def emit(args: argparse.Namespace, data: Any, table: str) -> None:
    print(json.dumps(data, indent=2) if args.output == "json" else table)


def stage_table(release: dict[str, Any]) -> str:
    lines = [f"{release['name']} (id {release['id']}, {release['status']}) of definition {release['definitionId']}",
             "  artifacts: " + ", ".join(f"{a['alias']} {a['version']}" for a in release["artifacts"])]
    for stage in release["stages"]:
        why = f"  - {stage['waitingFor']}" if stage.get("waitingFor") else ""
        lines.append(f"  {stage['name']:<20} {stage['status']:<20}{why}")
    return "\n".join(lines)


def release_create(client: Client, args: argparse.Namespace) -> int:
    try:
        body = release_body(args)
    except ValueError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    key = args.idempotency_key or str(uuid.uuid4())
    release = client.call("POST", "/releases", json=body, headers={"Idempotency-Key": key})
    emit(args, release, stage_table(release))
    if args.wait_for:
        return wait_for(client, args, release["id"], args.wait_for, args.timeout)
    return EXIT_OK


def wait_for(client: Client, args: argparse.Namespace, release_id: int, stage: str, timeout: float) -> int:
    deadline, last = time.monotonic() + timeout, None
    while True:
        release = client.call("GET", f"/releases/{release_id}")
        found = next((s for s in release["stages"] if s["name"].casefold() == stage.casefold()), None)
        if found is None:
            print(f"slipway: release {release_id} has no stage '{stage}'", file=sys.stderr)
            return EXIT_ERROR
        state = (found["status"], found.get("waitingFor"))
        if state != last and args.output == "table":
            print(f"{found['name']}: {found['status']}" + (f" - {found['waitingFor']}" if found.get("waitingFor")
                                                           else ""), flush=True)
            last = state
        if found["status"] in FINISHED:
            if args.output == "json":
                print(json.dumps(found, indent=2))
            if found["status"] in GOOD:
                return EXIT_OK
            failure = (found["deployments"][-1].get("failure") if found["deployments"] else None) or found["status"]
            print(f"slipway: stage {found['name']} {found['status']}: {failure}", file=sys.stderr)
            return EXIT_STAGE_FAILED
        if time.monotonic() > deadline:
            print(f"slipway: gave up waiting for stage {found['name']} after {timeout:g}s "
                  f"(it is {found['status']})", file=sys.stderr)
            return EXIT_TIMEOUT
        time.sleep(2 if timeout > 60 else 0.5)


def release_list(client: Client, args: argparse.Namespace) -> int:
    params = {"top": args.top, "definitionId": args.definition, "status": args.status}
    page = client.call("GET", "/releases", params={k: v for k, v in params.items() if v is not None})
    rows = [f"{r['id']:>6}  {r['name']:<20} {r['status']:<10} {r['createdOn'][:19]}  " +
            " ".join(f"{k}:{v}" for k, v in r["stages"].items()) for r in page["value"]]
    emit(args, page, "\n".join(rows) or "no releases")
    return EXIT_OK


def release_show(client: Client, args: argparse.Namespace) -> int:
    release = client.call("GET", f"/releases/{args.release}")
    emit(args, release, stage_table(release))
    return EXIT_OK


def release_wait(client: Client, args: argparse.Namespace) -> int:
    return wait_for(client, args, args.release, args.stage, args.timeout)


def release_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API's release body (`ReleaseIn`) from `--artifact ALIAS=VERSION` and `--var NAME=VALUE`."""
    artifacts = [{"alias": alias, "version": version} for alias, version in _pairs(args.artifact, "--artifact",
                                                                                   "ALIAS=VERSION").items()]
    variables = _pairs(args.var, "--var", "NAME=VALUE", empty_values=True)
    return {"definitionId": args.definition, "description": args.description, "artifacts": artifacts,
            "debug": args.debug, **({"variables": variables} if variables else {})}


def _pairs(items: list[str], flag: str, shape: str, *, empty_values: bool = False) -> dict[str, str]:
    found = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or (not value and not empty_values):
            raise ValueError(f"{flag} takes {shape}, not '{item}'")
        found[name] = value
    return found


def deploy_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API's deploy body (`DeployIn`): the server holds the rules, the same for the dashboard."""
    given = {"reason": args.reason, "breakGlass": args.break_glass, "notBefore": args.not_before,
             "override": {"reason": args.override_reason} if args.override_reason is not None else None}
    return {k: v for k, v in given.items() if v is not None}


def stage_deploy(client: Client, args: argparse.Namespace) -> int:
    release = client.call("POST", f"/releases/{args.release}/stages/{quote(args.stage, safe='')}/deploy",
                          json=deploy_body(args) or None)
    emit(args, release, stage_table(release))
    if args.wait:
        return wait_for(client, args, args.release, args.stage, args.timeout)
    return EXIT_OK


def approvals_list(client: Client, args: argparse.Namespace) -> int:
    params = {"mine": "false" if args.all else "true", "definitionId": args.definition}
    page = client.call("GET", "/approvals", params={k: v for k, v in params.items() if v is not None})
    rows = [f"{a['releaseId']:>6}  {a['releaseName'] or '':<20} {a['stage']:<16} {a['kind']:<5} "
            f"{', '.join(a['approvers'])}  (since {a['requestedAt'][:19]}, times out {a['deadline'][:19]})"
            for a in page["value"]]
    emit(args, page, "\n".join(rows) or "nothing waits for you")
    return EXIT_OK


def approvals_decide(client: Client, args: argparse.Namespace) -> int:
    response = client.send("GET", f"/releases/{args.release}")
    release, etag = client.json_of(response), response.headers.get("ETag", "")
    stage = next((s for s in release["stages"] if s["name"].casefold() == args.stage.casefold()), None)
    dep = stage["deployments"][-1] if stage and stage["deployments"] else None
    open_kinds = [k for k, a in (dep or {}).get("approvals", {}).items() if a["status"] == "pending"]
    if dep is None or not open_kinds:
        print(f"slipway: stage '{args.stage}' of release {args.release} has no pending approval", file=sys.stderr)
        return EXIT_ERROR
    base = f"/releases/{args.release}/stages/{quote(stage['name'], safe='')}"  # type: ignore[index]
    headers = {"If-Match": etag}
    if args.command == "defer":
        body = {"until": args.until, "comment": args.comment, "attempt": dep["attempt"]}
        result = client.call("POST", f"{base}/defer", json=body, headers=headers)
    else:
        kind = args.kind or open_kinds[0]
        body = {"decision": args.command, "comment": args.comment, "attempt": dep["attempt"]}
        result = client.call("POST", f"{base}/approvals/{kind}", json=body, headers=headers)
    emit(args, result, stage_table(result))
    return EXIT_OK


def intervene(client: Client, args: argparse.Namespace) -> int:
    response = client.send("GET", f"/releases/{args.release}")
    release, etag = client.json_of(response), response.headers.get("ETag", "")
    stage = next((s for s in release["stages"] if s["name"].casefold() == args.stage.casefold()), None)
    dep = stage["deployments"][-1] if stage and stage["deployments"] else None
    step = next((st for st in (dep or {}).get("steps", [])
                 if (st.get("intervention") or {}).get("status") == "pending"), None)
    if dep is None or step is None:
        print(f"slipway: stage '{args.stage}' of release {args.release} has no manual intervention waiting",
              file=sys.stderr)
        return EXIT_ERROR
    body = {"decision": args.command, "comment": args.comment, "attempt": dep["attempt"]}
    where = (f"/releases/{args.release}/stages/{quote(stage['name'], safe='')}/interventions/"  # type: ignore[index]
             f"{step['index']}")
    result = client.call("POST", where, json=body, headers={"If-Match": etag})
    emit(args, result, stage_table(result))
    return EXIT_OK


def logs(client: Client, args: argparse.Namespace) -> int:
    if args.zip:
        data = client.send("GET", f"/releases/{args.release}/logs").content
        with open(args.zip, "wb") as out:
            out.write(data)
        print(f"wrote {len(data)} bytes to {args.zip}")
        return EXIT_OK
    if not args.stage:
        print("slipway: logs needs a STAGE (or --zip FILE)", file=sys.stderr)
        return EXIT_ERROR
    printed: dict[int, int] = {}
    while True:
        done = _print_logs(client, args, printed)
        if done is not None:
            return done
        time.sleep(1)


def _print_logs(client: Client, args: argparse.Namespace, printed: dict[int, int]) -> int | None:
    """Print what is new in each step's log; None while --follow should keep going."""
    release = client.call("GET", f"/releases/{args.release}")
    stage = next((s for s in release["stages"] if s["name"].casefold() == args.stage.casefold()), None)
    if stage is None or not stage["deployments"]:
        print(f"slipway: release {args.release} has no deployment of stage '{args.stage}'", file=sys.stderr)
        return EXIT_ERROR
    attempt = args.attempt or stage["deployments"][-1]["attempt"]
    if not 1 <= attempt <= len(stage["deployments"]):
        print(f"slipway: stage '{args.stage}' has no attempt {attempt}", file=sys.stderr)
        return EXIT_ERROR
    deployment = stage["deployments"][attempt - 1]
    for step in deployment["steps"]:
        if args.step is not None and step["index"] != args.step:
            continue
        text = client.call("GET", f"/releases/{args.release}/stages/{quote(stage['name'], safe='')}/deployments/"
                                  f"{attempt}/steps/{step['index']}/log", text=True)
        seen = printed.get(step["index"])
        if seen is None:
            print(f"=== step {step['index']}: {step['name']} ({step['status']}) ===")
            if not args.follow:
                print(text.rstrip() or "(no log yet)")
                continue
            seen = 0
        if text[seen:]:
            print(text[seen:].rstrip("\n"), flush=True)
        printed[step["index"]] = len(text)
    if not args.follow or deployment["status"] in FINISHED:
        return EXIT_OK
    return None


def comment_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API's abandon and ignore-gate body (`AbandonIn`, `IgnoreGateIn`)."""
    return {"comment": args.comment}


def release_abandon(client: Client, args: argparse.Namespace) -> int:
    release = client.call("POST", f"/releases/{args.release}/abandon", json=comment_body(args))
    emit(args, release, stage_table(release))
    return EXIT_OK


def stage_ignore_gate(client: Client, args: argparse.Namespace) -> int:
    path = f"/releases/{args.release}/stages/{quote(args.stage, safe='')}/gates/{args.kind}/ignore"
    release = client.call("POST", path, json=comment_body(args))
    emit(args, release, stage_table(release))
    return EXIT_OK


COMMANDS = {
    ("import", "ado"): ado.import_ado,
    ("token", "create"): ado.token_create,
    ("token", "list"): ado.token_list,
    ("token", "revoke"): ado.token_revoke,
    ("definition", "apply"): definitions.apply,
    ("definition", "export"): definitions.export,
    ("definition", "validate"): definitions.validate,
    ("release", "create"): release_create,
    ("release", "list"): release_list,
    ("release", "show"): release_show,
    ("release", "wait"): release_wait,
    ("release", "abandon"): release_abandon,
    ("stage", "ignore-gate"): stage_ignore_gate,
    ("stage", "deploy"): stage_deploy,
    ("stage", "redeploy"): stage_deploy,
    ("stage", "rollback"): stage_deploy,
    ("approval", "list"): approvals_list,
    ("approval", "approve"): approvals_decide,
    ("approval", "reject"): approvals_decide,
    ("approval", "defer"): approvals_decide,
    ("intervention", "resume"): intervene,
    ("intervention", "reject"): intervene,
    ("logs", None): logs,
}

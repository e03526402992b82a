"""The `arm-deployment` step: an ARM template deployment, started once and followed to its end.

The deployment has a deterministic name (one per step of one attempt of a stage), recorded in the step's
intent before the PUT: a run that died between starting it and recording that finds it again by name
instead of starting another, and a deployment of that name that already succeeded is not made again.
The step never waits inside an invocation: it looks at the deployment, logs the operations that appeared
since the last look, and asks to be run again (2 s, then up to 10 s apart). `preview` is the same
deployment as a what-if, for the approval page.
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime, timedelta
from typing import Any

from shared.domain.keys import key_hash
from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StepRun
from shared.domain.variables import UnknownVariable
from shared.ports import ArmDeployment, ArmTemplate, TargetError, WhatIfChange
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext

MAX_TEMPLATE_BYTES = 4 * 1024 * 1024
"""ARM refuses templates over 4 MB (learn.microsoft.com, templates/best-practices, "Template limits")."""
MAX_SEEN = 400
"""Operation states remembered (8-character digests in one string, kept small in the release's row) to log
each once; past that, a deployment's further operations are not logged one by one."""
SYMBOLS = {"Create": "+ create", "Delete": "- delete", "Modify": "~ modify", "Deploy": "! deploy",
           "NoChange": "= no change", "Ignore": "* ignore", "Unsupported": "x unsupported"}
"""What-if change types as `az deployment … what-if` marks them."""


class _Refused(Exception):
    """The step's configuration cannot be deployed as it is: the step fails with this reason."""


def arm_deployment(deps: Deps, ctx: StepContext) -> Outcome:
    """Start the deployment once (reconciling from the intent first), then follow it to its end."""
    state = dict(ctx.run.state)
    intent = state.get("intent") or {}
    name, scope = state.get("deployment"), state.get("scope")
    if name is None and intent.get("deployment"):
        name, scope = str(intent["deployment"]), str(intent["scope"])
        found = deps.arm_deployments.get(scope, name)
        if found is not None and _ours(found, intent):
            ctx.log(f"ARM deployment {name} that an earlier run started is {found.state}")
            state.update(deployment=name, scope=scope, deadline=intent.get("deadline"))
            return _follow(deps, ctx, state, found)
        ctx.log(f"ARM has no deployment {name} from an earlier run of this step: starting it")
        return _start(deps, ctx, state)
    if name is None:
        return _start(deps, ctx, state)
    assert scope is not None
    found = deps.arm_deployments.get(scope, name)
    if found is None:
        return Outcome.fail(f"ARM has no deployment {name} at {scope} any more (deleted from the deployment "
                            f"history while it ran?)")
    return _follow(deps, ctx, state, found)


def _start(deps: Deps, ctx: StepContext, state: dict[str, Any]) -> Outcome:
    cfg = ctx.step.config
    scope, name = _scope(ctx), _name(ctx)
    deadline = state.get("deadline") or (ctx.now + timedelta(minutes=int(cfg.get("timeoutMinutes", 60)))).isoformat()
    state["deadline"] = deadline
    existing = deps.arm_deployments.get(scope, name)
    if existing is not None and not existing.finished:
        # Not this step's (it has no intent for it): a deployment of that name runs, and ARM would refuse
        # to replace it (409 DeploymentActiveAndUneditable). Wait for it, within the step's time.
        if ctx.now >= datetime.fromisoformat(deadline):
            return Outcome.fail(f"a deployment named {name} kept running at {scope} until the step's timeout")
        if not state.get("waiting"):
            ctx.log(f"a deployment named {name} is {existing.state} at {scope}: waiting for it to end first")
        state["waiting"] = True
        return Outcome.retry(f"waiting for the running deployment {name} to end", 10.0, state)
    try:
        what = _resolve(deps, ctx)
    except _Refused as exc:
        return Outcome.fail(str(exc))
    intent = {"deployment": name, "scope": scope, "deadline": deadline,
              "before": _identity(existing) if existing is not None else None}
    ctx.intend(intent)
    ctx.log(f"deploying {_source(cfg)} to {scope} as {name} ({what.mode}); parameters: "
            f"{', '.join(sorted(what.parameters or {})) or 'none'}")
    deps.arm_deployments.deploy(scope, name, what)
    state = {"intent": intent, "deployment": name, "scope": scope, "deadline": deadline, "looks": 0}
    return Outcome.retry(f"ARM deployment {name} started", 2.0, state)


def _follow(deps: Deps, ctx: StepContext, state: dict[str, Any], dep: ArmDeployment) -> Outcome:
    name, scope = str(state["deployment"]), str(state["scope"])
    _log_operations(deps, ctx, state, scope, name)
    state.pop("targetErrors", None)  # ARM answered this look: the errors of earlier looks were passing
    if dep.state == "Succeeded":
        outputs = _outputs(ctx, dep)
        ctx.log(f"ARM deployment {name} succeeded")
        return Outcome.ok(f"ARM deployment {name} succeeded", state={**_kept(state), "outputs": outputs})
    if dep.state == "Failed":
        return Outcome.fail(f"ARM deployment {name} failed: {dep.error or 'ARM gave no reason'}")
    if dep.state == "Canceled":
        return Outcome.fail(f"ARM deployment {name} was canceled" + (f": {dep.error}" if dep.error else ""))
    deadline = state.get("deadline")
    if deadline and ctx.now >= datetime.fromisoformat(deadline):
        deps.arm_deployments.cancel(scope, name)
        minutes = ctx.step.config.get("timeoutMinutes", 60)
        ctx.log(f"ARM deployment {name} still {dep.state} after {minutes} minutes: canceled it")
        return Outcome.fail(f"ARM deployment {name} did not finish within {minutes} minutes ({dep.state}); "
                            f"Slipway canceled it, leaving what it deployed so far")
    looks = int(state.get("looks", 0)) + 1
    state["looks"] = looks
    return Outcome.retry(f"ARM deployment {name} is {dep.state}", min(10.0, 2.0 * looks), state)


def stop_arm_deployment(deps: Deps, ctx: StepContext) -> str:
    """Cancel the deployment this step started (found by the name in its state or intent), if it runs."""
    state = ctx.run.state
    intent = state.get("intent") or {}
    name = state.get("deployment") or intent.get("deployment")
    scope = state.get("scope") or intent.get("scope")
    if not name or not scope:
        return "no ARM deployment was started: nothing to stop"
    found = deps.arm_deployments.get(scope, name)
    if found is None or not _ours(found, intent):
        return f"ARM has no deployment {name} of this step at {scope}: nothing to stop"
    if found.finished:
        return f"ARM deployment {name} had already ended ({found.state})"
    deps.arm_deployments.cancel(scope, name)
    return f"canceled ARM deployment {name} at {scope} (it was {found.state})"


def preview(deps: Deps, release: Release, stage_plan: StagePlan, step_plan: StepPlan) -> list[WhatIfChange]:
    """What-if of one arm-deployment step as it would run for this release. Raises TargetError (not
    retryable) when the step's configuration cannot be deployed, with the reason."""
    run = StepRun(step_plan.index, step_plan.type, step_plan.name)
    ctx = StepContext(release, stage_plan, step_plan, run, deps.clock.now())
    try:
        what = _resolve(deps, ctx)
        scope = _scope(ctx)
    except _Refused as exc:
        raise TargetError(str(exc), retryable=False) from exc
    except UnknownVariable as exc:
        raise TargetError(f"cannot show what the step would change: {exc} (an output of an earlier step is known "
                          f"only once the stage runs)", retryable=False) from exc
    return deps.arm_deployments.what_if(scope, what)


def describe(changes: list[WhatIfChange]) -> list[str]:
    """One line per resource: `+ create <id>`, `~ modify <id>: properties.a, tags.b`, `- delete <id>`, …"""
    lines = []
    for change in changes:
        line = f"{SYMBOLS.get(change.change, change.change)} {change.resource_id}"
        if change.change == "Modify" and change.properties:
            line += ": " + ", ".join(change.properties)
        lines.append(line)
    return lines


# -- where and what


def _scope(ctx: StepContext) -> str:
    cfg, target = ctx.step.config, ctx.stage.target
    sub = target["subscriptionId"]
    if cfg.get("scope") == "subscription":
        return f"/subscriptions/{sub}"
    group = ctx.expand(cfg["resourceGroup"]) if cfg.get("resourceGroup") else target["resourceGroup"]
    return f"/subscriptions/{sub}/resourceGroups/{group}"


def _name(ctx: StepContext) -> str:
    """The deployment's name: the one given, or the same one for every run of this step of this attempt."""
    given = ctx.step.config.get("deploymentName")
    if given:
        return ctx.expand(str(given))
    current = ctx.release.stages[ctx.stage.name].current
    attempt = current.attempt if current is not None else 0
    return f"slipway-{ctx.release.id}-{key_hash(ctx.stage.name)[:10]}-{attempt}-{ctx.step.index}"[:64]


def _source(cfg: dict[str, Any]) -> str:
    if cfg.get("template"):
        return f"template {cfg['template']} of artifact {cfg.get('artifact') or '(primary)'}"
    if cfg.get("templateSpecId"):
        return f"template spec {cfg['templateSpecId']}"
    return f"template {cfg.get('templateUrl')}"


def _resolve(deps: Deps, ctx: StepContext) -> ArmTemplate:
    """The step's deployment as ARM takes it: the template (read from the artifact's verified zip, or a
    template spec version id / https URL for ARM to read) and its parameters. Raises _Refused."""
    cfg = ctx.step.config
    paths = {key: ctx.expand(str(cfg[key])) for key in ("template", "parametersFile") if cfg.get(key)}
    files = _read_artifact(deps, ctx, list(paths.values())) if paths else {}
    template = spec_id = uri = None
    if "template" in paths:
        template = _json_object(files[paths["template"]], paths["template"])
    elif cfg.get("templateSpecId"):
        spec_id = ctx.expand(str(cfg["templateSpecId"]))
    else:
        uri = ctx.expand(str(cfg.get("templateUrl") or ""))
        if not uri.startswith("https://"):
            raise _Refused(f"templateUrl must be an https URL, not {uri!r}")
    parameters: dict[str, Any] = {}
    if "parametersFile" in paths:
        parameters.update(_parameters_file(files[paths["parametersFile"]], paths["parametersFile"]))
    parameters.update(ctx.expand_all(dict(cfg.get("parameters") or {})))
    return ArmTemplate(template=template, spec_id=spec_id, uri=uri, parameters=parameters,
                       mode=str(cfg.get("mode", "Incremental")), location=cfg.get("location"))


def _read_artifact(deps: Deps, ctx: StepContext, paths: list[str]) -> dict[str, bytes]:
    """Files of the artifact's zip, from the very snapshot that was registered (its sha256 checked)."""
    artifact = ctx.artifact()
    alias = ctx.step.config.get("artifact") or "primary"
    if artifact is None:
        raise _Refused(f"release has no artifact '{alias}' to read {', '.join(paths)} from")
    if not artifact.get("stored"):
        raise _Refused(f"{artifact['alias']} {artifact['version']} has no package Slipway keeps a copy of: register "
                       f"the build as a new version")
    for path in paths:
        if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in path.split("/")):
            raise _Refused(f"'{path}' is not a relative path inside the artifact")
    local, found = deps.packages.download(artifact["stored"], artifact["snapshot"])
    try:
        if found != artifact.get("sha256"):
            ctx.log(f"package digest mismatch: expected sha256 {artifact.get('sha256')}, found {found}")
            raise _Refused(f"the package of {artifact['alias']} {artifact['version']} is not what was registered: "
                           f"expected sha256 {artifact.get('sha256')}, found {found}; nothing was deployed")
        out: dict[str, bytes] = {}
        try:
            with zipfile.ZipFile(local) as archive:
                for path in paths:
                    try:
                        info = archive.getinfo(path)
                    except KeyError:
                        raise _Refused(f"{artifact['alias']} {artifact['version']} has no file {path}") from None
                    if info.file_size > MAX_TEMPLATE_BYTES:
                        raise _Refused(f"{path} is {info.file_size} bytes: ARM takes at most 4 MB")
                    out[path] = archive.read(info)
        except zipfile.BadZipFile:
            raise _Refused(f"the package of {artifact['alias']} {artifact['version']} is not a zip") from None
        ctx.debug(f"read {', '.join(paths)} from {artifact['alias']} {artifact['version']} (sha256 {found})")
        return out
    finally:
        os.remove(local)


def _json_object(data: bytes, path: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(f"{path} is not JSON ({exc}); Bicep files are compiled by the build (`az bicep build`), "
                       f"Slipway deploys the JSON") from None
    if not isinstance(value, dict):
        raise _Refused(f"{path} is not a JSON object")
    return value


def _parameters_file(data: bytes, path: str) -> dict[str, Any]:
    """An ARM parameters file: `{"parameters": {"name": {"value": …}}}`."""
    body = _json_object(data, path)
    entries = body.get("parameters")
    if not isinstance(entries, dict):
        raise _Refused(f"{path} is not an ARM parameters file: it has no `parameters` object")
    out: dict[str, Any] = {}
    for key, entry in entries.items():
        if isinstance(entry, dict) and "reference" in entry:
            raise _Refused(f"{path}: parameter '{key}' is a Key Vault reference, which Slipway does not pass; give "
                           f"it in the step's `parameters` with a $(secret) variable")
        if not isinstance(entry, dict) or "value" not in entry:
            raise _Refused(f"{path}: parameter '{key}' has no `value`")
        out[key] = entry["value"]
    return out


# -- following


def _identity(dep: ArmDeployment) -> dict[str, Any]:
    """How an existing deployment of the name looked before this step's PUT (the adapter's correlation id
    when it has one): a later run tells the deployment it started from that one."""
    return {"state": dep.state, "correlation": getattr(dep, "correlation_id", None)}


def _ours(found: ArmDeployment, intent: dict[str, Any]) -> bool:
    """Is the deployment of the intent's name the one this step started? With the default name, nothing
    else has that name. With a name used before, only a different correlation id (or a deployment that
    runs where one that had ended was) tells; when nothing tells, the answer is no: the step deploys
    again (ARM deployments are declarative, so a second one is harmless, a skipped one is not)."""
    before = intent.get("before")
    if not before:
        return True
    correlation = getattr(found, "correlation_id", None)
    if correlation and before.get("correlation"):
        return bool(correlation != before["correlation"])
    return not found.finished


def _log_operations(deps: Deps, ctx: StepContext, state: dict[str, Any], scope: str, name: str) -> None:
    """Log each operation state once, as it appears (resource, operation, state, and ARM's message)."""
    seen = str(state.get("seen") or "")
    known = {seen[i:i + 8] for i in range(0, len(seen), 8)}
    for op in deps.arm_deployments.operations(scope, name):
        digest = key_hash(f"{op.get('resource')}|{op.get('operation')}|{op.get('state')}")[:8]
        if digest in known:
            continue
        known.add(digest)
        if len(seen) >= 8 * MAX_SEEN:
            if not state.get("overflow"):
                ctx.log(f"more than {MAX_SEEN} operation changes: the rest are not logged one by one")
                state["overflow"] = True
            continue
        seen += digest
        message = f": {op['message']}" if op.get("message") else ""
        ctx.log(f"{op.get('operation') or 'operation'} {op.get('resource') or op.get('type') or '?'}: "
                f"{op.get('state')}{message}")
    state["seen"] = seen


def _outputs(ctx: StepContext, dep: ArmDeployment) -> dict[str, str]:
    """Outputs as the step keeps them: strings as they are, other values as JSON. Secure outputs are
    neither logged nor kept (ARM keeps no value for them either)."""
    out: dict[str, str] = {}
    for secure in getattr(dep, "secure_outputs", ()):
        ctx.log(f"output {secure} = (secure)")
    for key, value in dep.outputs.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        out[key] = text
        ctx.log(f"output {key} = {text if len(text) <= 500 else text[:500] + '…'}")
    return out


def _kept(state: dict[str, Any]) -> dict[str, Any]:
    """What the finished step keeps: where its deployment is, not the bookkeeping of following it."""
    return {k: state[k] for k in ("intent", "deployment", "scope") if k in state}

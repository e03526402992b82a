"""Agentless (server) tasks: Delay V1 → `wait`, Invoke REST API V1 and Invoke Azure Function V1 →
`http-request`, Manual Intervention V8 → `manual-intervention`.

Ids and inputs: microsoft/azure-pipelines-tasks @ 299572e2, Tasks/DelayV1, Tasks/InvokeRestApiV1,
Tasks/AzureFunctionV1 and Tasks/ManualInterventionV8 task.json.
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.ado_import import http
from shared.domain.ado_import.model import CHANGED, MAPPED
from shared.domain.ado_import.reading import number
from shared.domain.ado_import.task_model import Mapped, StageTasks, Task
from shared.domain.ado_import.task_unmapped import replaced

DELAY = "28782b92-5e8e-4458-9751-a71cd1492bae"
INVOKE_REST_API = "9c3e8943-130d-4c78-ac63-8af81df62dfb"
AZURE_FUNCTION = "537fdb7a-a601-4537-aa70-92645a2b5ce4"
MANUAL_INTERVENTION = "bcb64569-d51a-4af0-9c01-ea5d05b3b622"
MAX_WAIT_SECONDS = 30 * 86400
MAX_INTERVENTION_MINUTES = 60 * 24 * 60
"""Azure DevOps resolves a pending intervention after its timeout or 60 days, whichever comes first."""
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_MAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def delay(task: Task, stage: StageTasks) -> Mapped:
    raw = task.inputs.get("delayForMinutes") or "0"
    minutes = number(stage.scope.literal(raw) or "")
    if minutes is None or minutes < 0:
        return replaced(task, stage, f"its delay ({raw}) is not a number of minutes Slipway can read.",
                        "Use a wait step with `seconds`.")
    seconds = int(minutes * 60)
    step = {"type": "wait", "seconds": min(seconds, MAX_WAIT_SECONDS)}
    if seconds > MAX_WAIT_SECONDS:
        return Mapped(step, CHANGED, "waits 30 days, the longest a wait step takes.")
    return Mapped(step, MAPPED, f"waits {minutes:g} minute(s).")


def invoke_rest_api(task: Task, stage: StageTasks) -> Mapped:
    inputs = task.inputs
    selector = inputs.get("connectedServiceNameSelector", "connectionType") or "connectedServiceName"
    address, notes = http.url(selector, inputs.raw("urlSuffix"), stage.scope)
    return _request(task, stage, address, notes, {})


def azure_function(task: Task, stage: StageTasks) -> Mapped:
    inputs = task.inputs
    rewritten = stage.scope.rewrite(inputs.get("function"))
    query = inputs.get("queryParameters")
    address = rewritten.text + (("&" if "?" in rewritten.text else "?") + query if query else "")
    notes = list(rewritten.notes)
    secrets = {}
    if inputs.get("key"):
        secrets["x-functions-key"] = "@Microsoft.KeyVault(VaultName=REPLACE-ME;SecretName=function-key)"
        notes.append("the function key is read from Key Vault: store it as secret function-key and name the vault")
    valid = len(address) <= 2048 and re.fullmatch(r"https?://\S+", address) is not None
    return _request(task, stage, address if valid else None, notes, secrets)


def _request(task: Task, stage: StageTasks, address: str | None, notes: list[str],
             secrets: dict[str, str]) -> Mapped:
    inputs = task.inputs
    method = (inputs.get("method") or "POST").upper()
    if address is None:
        return replaced(task, stage, "its URL is not one Slipway can call.", "Use an http-request step with `url`.")
    if method not in _METHODS:
        return replaced(task, stage, f"Slipway's http-request does not send {method}.",
                        "Use GET, POST, PUT, PATCH or DELETE in an http-request step.")
    headers = http.headers(inputs.raw("headers"), stage.scope, for_signal=False)
    notes += headers.notes
    step: dict[str, Any] = {"type": "http-request", "method": method, "url": address}
    if headers.plain:
        step["headers"] = headers.plain
    both = {**headers.secret, **{k: v for k, v in secrets.items() if k.casefold() not in
                                 {h.casefold() for h in (*headers.secret, *headers.plain)}}}
    if both:
        step["headersFromSecrets"] = dict(list(both.items())[:10])
    body = inputs.raw("body")
    if body.strip() and method not in ("GET", "DELETE"):
        rewritten = stage.scope.rewrite(body)
        notes += rewritten.notes
        step["body"] = rewritten.text
    if inputs.get("waitForCompletion").casefold() == "true":
        step["completion"] = "callback"
        notes.append("it waited for a callback with Azure DevOps' job token; Slipway's callback is a URL: the "
                     "service must POST its result to $(Slipway.CallbackUrl) (also sent as header X-Slipway-Callback)")
    else:
        expression = inputs.get("successCriteria")
        if expression:
            found = http.criterion(expression)
            if found is None:
                notes.append(f"its success criteria ({expression[:200]}) were not carried over: write them as "
                             f"`criteria`")
            else:
                step["criteria"] = [{"jsonPath": found.json_path, "operator": found.operator, "value": found.value}]
    if task.timeout_minutes:
        step["timeoutMinutes"] = min(task.timeout_minutes, 2880)
    return Mapped(step, CHANGED if notes else MAPPED,
                  "; ".join([f"calls {method} {address}", *dict.fromkeys(notes)]) + ".")


def manual_intervention(task: Task, stage: StageTasks) -> Mapped:
    inputs = task.inputs
    raw = inputs.raw("instructions")
    instructions = stage.scope.shown(raw)[:10000]
    notes = []
    if instructions != stage.scope.mask(raw):
        notes.append("variables Slipway does not define are shown as `$ (Name)` in its instructions")
    assignees: list[str] = []
    others: list[str] = []
    for who in re.split(r"[,;\n]+", inputs.raw("emailRecipients")):
        who = who.strip()
        if not who:
            continue
        (assignees if _MAIL.match(who) and len(who) <= 256 else others).append(who)
    if others:
        notes.append(f"{len(others)} recipient(s) are Azure DevOps identities ({', '.join(o[:80] for o in others[:5])}"
                     f"): add them to `assignees` by sign-in name or Entra group id")
    step: dict[str, Any] = {"type": "manual-intervention", "instructions": instructions,
                            "assignees": list(dict.fromkeys(assignees))[:50]}
    if inputs.get("onTimeout").casefold() == "resume":
        step["onTimeout"] = "resume"
    minutes = task.timeout_minutes or MAX_INTERVENTION_MINUTES
    step["timeoutMinutes"] = min(minutes, MAX_INTERVENTION_MINUTES)
    if minutes > MAX_INTERVENTION_MINUTES:
        notes.append("its timeout is 60 days, the longest Azure DevOps (and Slipway) waits")
    return Mapped(step, CHANGED if notes else MAPPED,
                  "; ".join(["pauses for a person to resume or reject", *notes]) + ".")

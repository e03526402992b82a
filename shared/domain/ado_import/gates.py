"""Pre- and post-deployment gates → `preGates` / `postGates`.

Azure DevOps semantics (prior-art.md §2.4; `ReleaseDefinitionGatesOptions` in vsts-rest-api-specs @ adb28786):
all gates sampled together every `samplingInterval` minutes after a `stabilizationTime` delay, green for
`minimumSuccessDuration`, within `timeout`. Gate tasks: Invoke REST API → a `rest` signal, Query Azure
Monitor alerts (AzureMonitor V0/V1, microsoft/azure-pipelines-tasks @ 299572e2) → an `alerts` signal; the
others (Invoke Azure Function, Query work items, Azure Policy, Marketplace gates) have no signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.ado_import import http
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED
from shared.domain.ado_import.names import printable, unique
from shared.domain.ado_import.reading import Path, flag, get, mapping, number, render, sequence
from shared.domain.ado_import.refs import Scope
from shared.domain.ado_import.report import Report
from shared.domain.ado_import.task_model import Task, read_task
from shared.domain.errors import FieldError

INVOKE_REST_API = "9c3e8943-130d-4c78-ac63-8af81df62dfb"
AZURE_MONITOR = "99a72e7f-25e4-4576-bf38-22a42b995ed8"
NO_SIGNAL = {
    "537fdb7a-a601-4537-aa70-92645a2b5ce4": "Invoke Azure Function: call the function from a `rest` signal "
                                            "(its key from an app setting on the gates' allowlist)",
    "f1e4b0e6-017e-4819-8a48-ef19ae96e289": "Query work items: Slipway does not read Azure Boards; expose the "
                                            "count at a URL and check it with a `rest` signal",
    "8ba74703-e94f-4a35-814e-fc21f44578a2": "Azure Policy compliance: check it with a `logQuery` signal on the "
                                            "Azure Policy tables, or a `rest` signal",
}
MAX_SIGNALS = 10
DEFAULTS = {"timeout": 1440.0, "samplingInterval": 15.0, "stabilizationTime": 5.0, "minimumSuccessDuration": 0.0}
"""What the portal fills in when gates are turned on (ENUMS.md: 1440/15/5/0 observed)."""
LIMITS = {"delayMinutes": (0.0, 2880.0), "intervalMinutes": (1.0, 1440.0), "timeoutMinutes": (1.0, 43200.0),
          "minimumSuccessMinutes": (0.0, 43200.0)}
"""Slipway's ranges (GatesIn in shared/schemas/definition.py)."""


@dataclass
class GateSide:
    path: Path
    pre: bool
    stage: str
    became: str
    scope: Scope
    report: Report
    refusals: list[FieldError]
    strict: bool


def gates(block: Any, side: GateSide) -> dict[str, Any] | None:
    """The Slipway gates of one side of a stage, with every gate task reported; None when there are none."""
    data = mapping(block, side.path)
    options = mapping(get(data, "gatesOptions"), (*side.path, "gatesOptions"))
    tasks: list[Task] = []
    for g, gate in enumerate(sequence(get(data, "gates"), (*side.path, "gates"))):
        gate_path = (*side.path, "gates", g)
        for t, item in enumerate(sequence(get(mapping(gate, gate_path, required=True), "tasks"),
                                          (*gate_path, "tasks"))):
            tasks.append(read_task(item, (*gate_path, "tasks", t)))
    label = f"{'pre' if side.pre else 'post'}-deployment gates of {side.stage}"
    if not options and not tasks:
        return None
    if not flag(get(options, "isEnabled"), bool(tasks) and not options):
        side.report.add(side.path, "gate", label, DROPPED, "", "gates are off in Azure DevOps: none in Slipway.")
        for task in tasks:
            side.report.add(task.path, "gate", task.label, DROPPED, "", "the gates are off in Azure DevOps.")
        return None
    signals: list[dict[str, Any]] = []
    names: set[str] = set()
    for task in tasks:
        signal, outcome, note = _signal(task, side)
        if signal is not None and len(signals) >= MAX_SIGNALS:
            signal, outcome, note = None, DROPPED, f"Slipway evaluates at most {MAX_SIGNALS} signals per gate."
        if signal is not None:
            signal["name"] = unique(printable(task.label) or signal["type"], names)
            side.report.add(task.path, "gate", task.label, outcome, f"{side.became}.signals[{len(signals)}]", note)
            signals.append(signal)
        else:
            side.report.add(task.path, "gate", task.label, DROPPED, "", note)
    if not signals:
        side.report.add(side.path, "gate", label, DROPPED, "",
                        "gates are on in Azure DevOps but hold no gate Slipway can evaluate"
                        + (" (none at all)" if not tasks else "") + ": add signals to `"
                        + side.became.rsplit(".", 1)[1] + "` if the stage needs a health check.")
        return None
    timing, notes = _timing(options)
    side.report.add(side.path, "gate", label, CHANGED if notes else MAPPED, side.became,
                    "; ".join([f"{len(signals)} signal(s), sampled every {timing['intervalMinutes']:g} min after "
                               f"{timing['delayMinutes']:g} min, {timing['timeoutMinutes']:g} min timeout", *notes])
                    + ".")
    return {"signals": signals, **{k: _tidy(v) for k, v in timing.items()}}


def _timing(options: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    notes: list[str] = []
    read = {}
    for key, default in DEFAULTS.items():
        value = number(get(options, key))
        read[key] = default if value is None else value
    timing = {"delayMinutes": read["stabilizationTime"], "intervalMinutes": read["samplingInterval"],
              "timeoutMinutes": read["timeout"], "minimumSuccessMinutes": read["minimumSuccessDuration"]}
    for key, (low, high) in LIMITS.items():
        if not low <= timing[key] <= high:
            timing[key] = min(max(timing[key], low), high)
            notes.append(f"{key} is {timing[key]:g}, within Slipway's range")
    if timing["timeoutMinutes"] < timing["intervalMinutes"]:
        timing["timeoutMinutes"] = timing["intervalMinutes"]
        notes.append("the timeout was shorter than the sampling interval: it is one interval")
    if timing["minimumSuccessMinutes"] >= timing["timeoutMinutes"]:
        timing["minimumSuccessMinutes"] = max(0.0, timing["timeoutMinutes"] - timing["intervalMinutes"])
        notes.append("the minimum success duration must be shorter than the timeout: it is "
                     f"{timing['minimumSuccessMinutes']:g} min")
    return timing, notes


def _tidy(value: float) -> float | int:
    return int(value) if value == int(value) else value


def _signal(task: Task, side: GateSide) -> tuple[dict[str, Any] | None, str, str]:
    if not task.enabled:
        return None, DROPPED, "the gate is disabled in Azure DevOps."
    if task.task_id == INVOKE_REST_API:
        return _rest(task, side)
    if task.task_id == AZURE_MONITOR:
        return _alerts(task)
    why = NO_SIGNAL.get(task.task_id, "no Slipway signal does what this gate does: use a `rest`, `metric`, "
                                      "`logQuery` or `alerts` signal")
    if side.strict:
        side.refusals.append(FieldError(render(task.path), f"gate '{task.label}' has no Slipway equivalent: {why}"))
    return None, DROPPED, why + "."


def _rest(task: Task, side: GateSide) -> tuple[dict[str, Any] | None, str, str]:
    inputs = task.inputs
    selector = inputs.get("connectedServiceNameSelector", "connectionType") or "connectedServiceName"
    address, notes = http.url(selector, inputs.raw("urlSuffix"), side.scope)
    method = (inputs.get("method") or "POST").upper()
    if address is None:
        return None, DROPPED, "its URL is not one Slipway can call: add a `rest` signal with `url`."
    signal: dict[str, Any] = {"type": "rest", "url": address}
    if method in ("GET", "POST", "HEAD"):
        signal["method"] = method
    else:
        signal["method"] = "GET"
        notes.append(f"a REST signal sends GET, POST or HEAD: it sends GET instead of {method}")
    if inputs.raw("body").strip() and method != "GET":
        notes.append("its body was left out: a REST signal sends none")
    headers = http.headers(inputs.raw("headers"), side.scope, for_signal=True)
    notes += headers.notes
    if headers.secret:
        signal["headersFromSettings"] = headers.secret
    expression = inputs.get("successCriteria")
    found = http.criterion(expression) if expression else None
    if found is not None:
        signal.update(jsonPath=found.json_path, operator=found.operator, threshold=found.value)
    elif expression:
        notes.append(f"its success criteria ({expression[:200]}) were not carried over: the signal passes on the "
                     f"status alone; give `jsonPath`, `operator` and `threshold`")
    notes.append("it passes on status 200 (Azure DevOps took any 2xx): set `expectStatus` if the service answers "
                 "another")
    if inputs.get("waitForCompletion").casefold() == "true":
        notes.append("Azure DevOps waited for a callback; a REST signal reads the answer of each call")
    return signal, CHANGED, "; ".join([f"calls {signal['method']} {address}", *dict.fromkeys(notes)]) + "."


def _alerts(task: Task) -> tuple[dict[str, Any] | None, str, str]:
    inputs = task.inputs
    notes = ["it watches the alerts fired for the stage's app (Azure DevOps named a resource group"
             + (f" {inputs.get('ResourceGroupName')}" if inputs.get("ResourceGroupName") else "")
             + "): set `scope` to another resource id if needed"]
    signal: dict[str, Any] = {"type": "alerts"}
    severities = [s.strip() for s in inputs.get("severity").split(",") if s.strip()]
    wanted = [s for s in ("Sev0", "Sev1", "Sev2", "Sev3", "Sev4") if s.casefold() in {x.casefold() for x in severities}]
    if wanted and len(wanted) < 5:
        signal["severities"] = wanted
    if task.major == 0:
        notes.append("classic alerts are retired: it reads Azure Monitor alerts")
    for name in ("alertState", "monitorCondition", "timeRange", "alertRule", "alertRules"):
        if inputs.get(name):
            notes.append(f"its {name} filter ({inputs.get(name)[:100]}) was not carried over")
    return signal, CHANGED, "; ".join(["passes while no alert fires", *notes]) + "."

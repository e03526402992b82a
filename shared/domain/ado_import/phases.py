"""A stage's deploy phases and their workflow tasks → the stage's steps, in order.

Slipway has no agents: an agent job's, an agentless job's and a deployment group job's tasks all become
steps of the stage (each task's mapping in tasks.py); what the job itself did (run on a pool or on the
machines of a deployment group, in parallel, under a condition) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.ado_import.context import Context
from shared.domain.ado_import.enums import DEPLOY_PHASE_TYPES, PARALLEL_EXECUTION
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED, REPLACED
from shared.domain.ado_import.names import printable, unique
from shared.domain.ado_import.reading import Path, get, mapping, refuse, render, sequence, text, whole
from shared.domain.ado_import.task_model import StageTasks, Task, read_task
from shared.domain.ado_import.tasks import map_task
from shared.domain.errors import FieldError

MAX_STEPS = 50
_DEFAULT_CONDITIONS = ("", "succeeded()")
_AFTER_FAILURE = ("always()", "succeededorfailed()", "failed()", "canceled()")


@dataclass(frozen=True)
class Phase:
    path: Path
    name: str
    kind: str | None
    condition: str
    parallel: str
    tasks: tuple[Task, ...]


def read_phases(env: dict[str, Any], path: Path) -> list[Phase]:
    """The stage's phases in rank order, with their tasks."""
    found = []
    for p, item in enumerate(sequence(get(env, "deployPhases"), (*path, "deployPhases"))):
        where = (*path, "deployPhases", p)
        data = mapping(item, where, required=True)
        deployment = mapping(get(data, "deploymentInput"), (*where, "deploymentInput"))
        parallel = get(deployment, "parallelExecution")
        tasks = tuple(read_task(t, (*where, "workflowTasks", k))
                      for k, t in enumerate(sequence(get(data, "workflowTasks"), (*where, "workflowTasks"))))
        found.append((whole(get(data, "rank")) or 0, p, Phase(
            where, text(get(data, "name")).strip() or f"job {p + 1}", DEPLOY_PHASE_TYPES.parse(get(data, "phaseType")),
            text(get(deployment, "condition")).strip(),
            _parallel(parallel), tasks)))
    return [phase for _, _, phase in sorted(found, key=lambda f: (f[0], f[1]))]


def _parallel(value: Any) -> str:
    """How the job fanned out: empty for none (the enum's name or number)."""
    raw = get(value, "parallelExecutionType") if isinstance(value, dict) else None
    kind = PARALLEL_EXECUTION.parse(raw)
    return "" if kind == "none" or (kind is None and not text(raw).strip()) else (kind or text(raw).strip())


def steps(phases: list[Phase], stage: StageTasks, became: str, ctx: Context) -> list[dict[str, Any]]:
    """Every enabled task as a step (or the manual intervention that stands for it), every task and
    phase reported."""
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for phase in phases:
        first = len(out)
        for task in phase.tasks:
            step = _task(task, stage, f"{became}.steps[{len(out)}]", names, ctx)
            if step is not None:
                if len(out) >= MAX_STEPS:
                    refuse(phase.path, f"Slipway takes at most {MAX_STEPS} steps per stage")
                out.append(step)
        _report_phase(phase, became, first, len(out), ctx)
    return out


def _task(task: Task, stage: StageTasks, became: str, names: set[str], ctx: Context) -> dict[str, Any] | None:
    if not task.enabled:
        ctx.report.add(task.path, "task", task.label, DROPPED, "",
                       "disabled in Azure DevOps: not carried over (add it as a step if it should run).")
        return None
    mapped = map_task(task, stage)
    notes = [mapped.note]
    outcome = mapped.outcome
    if mapped.step is None:
        ctx.report.add(task.path, "task", task.label, outcome, "", mapped.note)
        return None
    label = printable(task.label) or mapped.step["type"]
    base = printable("Imported: " + label) if outcome == REPLACED else label
    step = {"type": mapped.step["type"], "name": unique(base, names),
            **{k: v for k, v in mapped.step.items() if k != "type"}}
    if task.continue_on_error:
        step["continueOnError"] = True
        notes.append("its failure does not stop the stage (continueOnError)")
    condition = task.condition.casefold().replace(" ", "")
    if task.always_run or condition in _AFTER_FAILURE:
        notes.append("Azure DevOps ran it after a failure too; Slipway stops a stage at the first failed step")
        outcome = CHANGED if outcome == MAPPED else outcome
    elif condition not in _DEFAULT_CONDITIONS:
        notes.append(f"its condition ({task.condition[:200]}) was dropped: Slipway runs every step in order")
        outcome = CHANGED if outcome == MAPPED else outcome
    if outcome == REPLACED and ctx.options.strict:
        ctx.refusals.append(FieldError(render(task.path),
                                       f"task '{task.label}' has no Slipway equivalent: {mapped.note}"))
    ctx.report.add(task.path, "task", task.label, outcome, became,
                   " ".join(n if n.endswith(".") else n + "." for n in notes))
    return step


def _report_phase(phase: Phase, became: str, first: int, end: int, ctx: Context) -> None:
    where = f"{became}.steps[{first}]" + (f"..steps[{end - 1}]" if end - first > 1 else "") if end > first else ""
    kinds = {"agentBasedDeployment": "an agent job", "runOnServer": "an agentless job",
             "machineGroupBasedDeployment": "a deployment group job", "deploymentGates": "a gates job"}
    what = kinds.get(phase.kind or "", "a job")
    notes = [f"{what}: its tasks became steps of the stage, in order" if phase.tasks else f"{what} with no task"]
    outcome = MAPPED
    if phase.kind == "machineGroupBasedDeployment":
        notes.append("Slipway deploys to App Service, not to the machines of a deployment group")
        outcome = CHANGED
    elif phase.kind not in ("agentBasedDeployment", "runOnServer"):
        outcome = CHANGED
    if phase.condition.casefold().replace(" ", "") not in _DEFAULT_CONDITIONS:
        notes.append(f"its condition ({phase.condition[:200]}) was dropped: Slipway runs every step in order")
        outcome = CHANGED
    if phase.parallel:
        notes.append(f"its parallel execution ({phase.parallel}) was dropped: each step runs once")
        outcome = CHANGED
    ctx.report.add(phase.path, "option", phase.name, outcome, where, "; ".join(notes) + ".")

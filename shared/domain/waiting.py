"""Why a stage of a release is where it is, in words a person can act on."""

from __future__ import annotations

from datetime import datetime

from shared.domain import gates
from shared.domain.plan import AFTER_RELEASE, AFTER_STAGES, MANUAL, SCHEDULE
from shared.domain.release import (
    ABANDONED,
    IN_PROGRESS,
    NOT_STARTED,
    PARTIALLY_SUCCEEDED,
    QUEUED,
    SUCCEEDED,
    Release,
    deferred_until,
)
from shared.domain.schedules import next_occurrence, upstream_done


def why(release: Release, stage_name: str) -> str | None:
    """None when nothing is waiting (the stage finished); otherwise the reason."""
    run = release.stages[stage_name]
    stage = release.plan.stage(stage_name)
    if stage is None:
        return None
    if run.status == IN_PROGRESS and run.current is not None:
        dep = run.current
        if dep.phase in ("preApproval", "postApproval"):
            approval = dep.approvals[dep.phase.removesuffix("Approval")]
            return (f"waiting for {approval.kind}-deployment approval by {', '.join(approval.waiting_for())} "
                    f"since {approval.requested_at} (times out {approval.deadline})")
        if dep.phase in ("preGate", "postGate"):
            return gates.waiting_on(dep.gates[dep.phase.removesuffix("Gate")])
        if dep.phase == "window":
            return f"{dep.waits_for}: next opening {dep.opens_at}"
        if dep.phase == "deferred":
            return f"deferred until {deferred_until(dep)}"
        step = next((s for s in dep.steps if s.status == IN_PROGRESS), None)
        if step is None:
            return "finishing"
        text = f"running step {step.index + 1} of {len(dep.steps)}: '{step.name}'"
        return f"{text} ({step.message})" if step.message else text
    if run.status == QUEUED:
        limit = (stage.queue or {}).get("parallel")
        return f"queued: the stage deploys at most {limit} release(s) at a time"
    if run.status != NOT_STARTED:
        return None
    if release.status == ABANDONED:
        return "release abandoned: this stage will not start"
    if stage.trigger == MANUAL:
        return "manual trigger: waiting for someone to deploy it"
    if stage.trigger == AFTER_RELEASE:
        return "starting"
    if stage.trigger == SCHEDULE:
        when = "; ".join(f"{s['cron']} {s.get('timeZone', 'UTC')}" for s in stage.schedules)
        if not upstream_done(release, stage):
            pending = ", ".join(f"{up} ({release.stages[up].status})" for up in stage.after)
            return f"schedule ({when}) once upstream {pending} succeeded"
        return f"waiting for its schedule ({when}); it deploys the newest release that is eligible then"
    if stage.trigger == AFTER_STAGES:
        blocked, pending = [], []
        for up in stage.after:
            status = release.stages[up].status
            if status == SUCCEEDED or (status == PARTIALLY_SUCCEEDED and stage.allow_partial):
                continue
            (blocked if status not in (NOT_STARTED, IN_PROGRESS) else pending).append(f"{up} ({status})")
        if blocked:
            return "will not start automatically: upstream " + ", ".join(blocked) + " did not succeed"
        if pending:
            return "waiting for upstream " + ", ".join(pending)
    return None



def preview(release: Release, stage_name: str, now: datetime | None = None) -> dict[str, object]:
    """What a stage waits for (trigger, schedule, queue, approval, deferral, window, running) and
    when it may deploy next, as far as Slipway can know it."""
    run = release.stages[stage_name]
    dep = run.current
    out: dict[str, object] = {"stage": stage_name, "status": run.status, "waitingFor": why(release, stage_name),
                              "waitsOn": None, "nextDeployAt": None}
    if dep is None or run.status not in (IN_PROGRESS, QUEUED):
        out["waitsOn"] = "trigger" if out["waitingFor"] else None
        stage = release.plan.stage(stage_name)
        if stage is not None and stage.trigger == SCHEDULE and run.status == NOT_STARTED and out["waitingFor"]:
            out["waitsOn"] = "schedule"
            if now is not None and stage.schedules:
                out["nextDeployAt"] = min(next_occurrence(s["cron"], s.get("timeZone", "UTC"), now)
                                          for s in stage.schedules).isoformat()
        return out
    if dep.phase == "queued":
        out["waitsOn"] = "queue"
    elif dep.phase in ("preApproval", "postApproval"):
        out["waitsOn"] = "approval"
        out["approvalTimesOutAt"] = dep.approvals[dep.phase.removesuffix("Approval")].deadline
    elif dep.phase == "deferred":
        out["waitsOn"], out["nextDeployAt"] = "deferral", deferred_until(dep)
    elif dep.phase in ("preGate", "postGate"):
        gate = dep.gates[dep.phase.removesuffix("Gate")]
        out["waitsOn"], out["nextSampleAt"], out["gateTimesOutAt"] = "gate", gate.next_at, gate.deadline
    elif dep.phase == "window":
        out["waitsOn"], out["nextDeployAt"] = "window", dep.opens_at
    else:
        out["waitsOn"] = "running"
    return out

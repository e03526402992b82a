"""Why a stage of a release is where it is, in words a person can act on."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain import gates
from shared.domain.plan import AFTER_RELEASE, AFTER_STAGES, MANUAL, SCHEDULE
from shared.domain.release import Release, deferred_until
from shared.domain.schedules import next_occurrence, upstream_done
from shared.domain.vocabulary import Kind, Phase, ReleaseStatus, Status, StepStatus


def readable(stamp: object) -> str:
    """An ISO time as people read it (`2026-12-02 01:04 UTC`); anything else as it is."""
    if isinstance(stamp, datetime):
        moment = stamp
    else:
        try:
            moment = datetime.fromisoformat(str(stamp))
        except ValueError:
            return str(stamp)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def why(release: Release, stage_name: str) -> str | None:
    """None when nothing is waiting (the stage finished); otherwise the reason."""
    run = release.stages[stage_name]
    stage = release.plan.stage(stage_name)
    if stage is None:
        return None
    if run.status == Status.IN_PROGRESS and run.current is not None:
        dep = run.current
        if dep.phase in (Phase.PRE_APPROVAL, Phase.POST_APPROVAL):
            approval = dep.approvals[_kind(dep.phase)]
            return (f"waiting for {approval.kind}-deployment approval by {', '.join(approval.waiting_for())} "
                    f"since {readable(approval.requested_at)} (times out {readable(approval.deadline)})")
        if dep.phase in (Phase.PRE_GATE, Phase.POST_GATE):
            return gates.waiting_on(dep.gates[_kind(dep.phase)])
        if dep.phase == Phase.WINDOW:
            return f"{dep.waits_for}: next opening {readable(dep.opens_at)}"
        if dep.phase == Phase.DEFERRED:
            return f"deferred until {readable(deferred_until(dep))}"
        if dep.phase == Phase.INTERVENTION:
            waiting = next((s for s in dep.steps if "intervention" in s.state and s.status == StepStatus.IN_PROGRESS),
                           None)
            if waiting is not None:
                it = waiting.state["intervention"]
                return (f"waiting for manual intervention '{waiting.name}' by "
                        f"{', '.join(it.get('assignees') or []) or 'a release manager'} ({it.get('onTimeout')}s at "
                        f"{readable(it.get('deadline'))})")
        step = next((s for s in dep.steps if s.status == StepStatus.IN_PROGRESS), None)
        if step is None:
            return "finishing"
        text = f"running step {step.index + 1} of {len(dep.steps)}: '{step.name}'"
        return f"{text} ({step.message})" if step.message else text
    if run.status == Status.QUEUED:
        if stage.writes_slot:
            return "queued: the stage changes its slot, so it deploys one release at a time"
        return f"queued: the stage deploys at most {stage.limit} release(s) at a time"
    if run.status != Status.NOT_STARTED:
        return None
    if release.status == ReleaseStatus.ABANDONED:
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
        blocked: list[str] = []
        waiting_for: list[str] = []
        for up in stage.after:
            status = release.stages[up].status
            if status == Status.SUCCEEDED or (status == Status.PARTIALLY_SUCCEEDED and stage.allow_partial):
                continue
            still_possible = status in (Status.NOT_STARTED, Status.IN_PROGRESS)
            (waiting_for if still_possible else blocked).append(f"{up} ({status})")
        if blocked:
            return "will not start automatically: upstream " + ", ".join(blocked) + " did not succeed"
        if waiting_for:
            return "waiting for upstream " + ", ".join(waiting_for)
    return None



def preview(release: Release, stage_name: str, now: datetime | None = None) -> dict[str, object]:
    """What a stage waits for (trigger, schedule, queue, approval, deferral, window, running) and
    when it may deploy next, as far as Slipway can know it."""
    run = release.stages[stage_name]
    dep = run.current
    out: dict[str, object] = {"stage": stage_name, "status": run.status, "waitingFor": why(release, stage_name),
                              "waitsOn": None, "nextDeployAt": None}
    if dep is None or run.status not in (Status.IN_PROGRESS, Status.QUEUED):
        out["waitsOn"] = "trigger" if out["waitingFor"] else None
        stage = release.plan.stage(stage_name)
        if stage is not None and stage.trigger == SCHEDULE and run.status == Status.NOT_STARTED and out["waitingFor"]:
            out["waitsOn"] = "schedule"
            if now is not None and stage.schedules:
                out["nextDeployAt"] = min(next_occurrence(s["cron"], s.get("timeZone", "UTC"), now)
                                          for s in stage.schedules).isoformat()
        return out
    if dep.phase == Phase.QUEUED:
        out["waitsOn"] = "queue"
    elif dep.phase in (Phase.PRE_APPROVAL, Phase.POST_APPROVAL):
        out["waitsOn"] = "approval"
        out["approvalTimesOutAt"] = dep.approvals[_kind(dep.phase)].deadline
    elif dep.phase == Phase.DEFERRED:
        out["waitsOn"], out["nextDeployAt"] = "deferral", deferred_until(dep)
    elif dep.phase in (Phase.PRE_GATE, Phase.POST_GATE):
        gate = dep.gates[_kind(dep.phase)]
        out["waitsOn"], out["nextSampleAt"], out["gateTimesOutAt"] = "gate", gate.next_at, gate.deadline
    elif dep.phase == Phase.WINDOW:
        out["waitsOn"], out["nextDeployAt"] = "window", dep.opens_at
    else:
        out["waitsOn"] = "running"
    return out


def _kind(phase: Phase) -> Kind:
    return Kind.PRE if phase in (Phase.PRE_APPROVAL, Phase.PRE_GATE) else Kind.POST

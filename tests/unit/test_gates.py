"""Gates, decision by decision with a fixed clock: samples, steady success, limits, provider faults,
duplicate and late messages, and what a gate's outcome does to the deployment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.domain.access import Forbidden, Principal
from shared.domain.gates import Reading
from shared.domain.release import Release
from shared.domain.transitions import (
    ArmTimer,
    DeployStage,
    EnqueueGate,
    EnqueueStep,
    GateClaim,
    GateSample,
    IgnoreGate,
    decide,
)
from shared.domain.waiting import preview, why
from tests.unit.test_transitions import NOW, TARGET, finish_stage, release

ADMIN = Principal("ops@contoso.com", frozenset(), frozenset({"admin", "releaseManager", "reader"}), "user")
GREEN = {"errors": Reading("errors", value=0.0), "latency": Reading("latency", value=120.0)}


def production(post: dict[str, Any] | None = None, pre: dict[str, Any] | None = None,
               steps: list[dict[str, Any]] | None = None) -> Release:
    signals = [{"name": "errors", "type": "metric", "metric": "Http5xx", "aggregation": "Total", "operator": "<=",
                "threshold": 0},
               {"name": "latency", "type": "metric", "metric": "HttpResponseTime", "aggregation": "Average",
                "operator": "<", "threshold": 500}]
    stage: dict[str, Any] = {"name": "Production", "target": TARGET, "trigger": {"type": "manual"},
                             "steps": steps or [{"type": "wait", "seconds": 0}]}
    if post is not None:
        stage["postGates"] = {"signals": signals, "intervalMinutes": 1, "timeoutMinutes": 10, **post}
    if pre is not None:
        stage["preGates"] = {"signals": signals, "intervalMinutes": 1, "timeoutMinutes": 10, **pre}
    return release(stage)


def deploy(rel: Release) -> Release:
    rel = decide(rel, DeployStage("Production", "amita"), NOW).release
    return finish_stage(rel, "Production")


class Gate:
    """Drives one gate as the sample messages would, minute by minute."""

    def __init__(self, rel: Release, kind: str = "post") -> None:
        self.rel, self.kind, self.now, self.effects = rel, kind, NOW, []

    @property
    def run(self) -> Any:
        return self.rel.stages["Production"].current.gates[self.kind]  # type: ignore[union-attr]

    def sample(self, readings: dict[str, Reading], *, advance: float = 60, token: str = "t") -> Any:
        """As the sample's message would: it holds the claim the write that sent it took (or claims first)."""
        self.now += timedelta(seconds=advance)
        seq = self.run.next_seq
        if self.run.claim:
            token = self.run.claim
        else:
            self.rel = decide(self.rel, GateClaim("Production", 1, self.kind, seq, token), self.now).release
        decision = decide(self.rel, GateSample("Production", 1, self.kind, seq, token, tuple(readings.values())),
                          self.now)
        self.rel, self.effects = decision.release, decision.effects
        return decision

    def status(self) -> str:
        return str(self.rel.stages["Production"].status)


def test_a_post_gate_starts_after_the_steps_with_its_first_message_and_no_timer() -> None:
    """Its samples' chain ends at the timeout, and the sweeper backs up lost ones: no timer message."""
    rel = decide(production(post={"delayMinutes": 2}), DeployStage("Production", "amita"), NOW).release
    dep = rel.stages["Production"].current
    assert dep is not None
    live = dep.steps[0]
    decision = decide(rel, _complete(live), NOW)
    assert decision.release.stages["Production"].current.phase == "postGate"  # type: ignore[union-attr]
    assert EnqueueGate("Production", 1, "post", 1, 120.0, "sample 1 due 2026-11-23T09:02:00+00:00") in decision.effects
    assert not [e for e in decision.effects if isinstance(e, ArmTimer)]
    assert "first sample at" in str(why(decision.release, "Production"))


def _complete(step: Any) -> Any:
    from shared.domain.transitions import CompleteStep

    return CompleteStep("Production", 1, step.index, step.run, True)


def test_all_signals_green_in_the_same_sample_pass_and_the_deployment_succeeds() -> None:
    gate = Gate(deploy(production(post={})))
    gate.sample(GREEN)
    assert gate.run.status == "succeeded" and gate.status() == "succeeded"
    sample = gate.run.samples[-1]
    assert sample["verdict"] == "pass"
    assert [(s["name"], s["value"], s["threshold"], s["verdict"]) for s in sample["signals"]] == [
        ("errors", 0.0, 0, "pass"), ("latency", 120.0, 500, "pass")]


def test_green_in_different_samples_is_never_a_pass_and_the_gate_times_out() -> None:
    gate = Gate(deploy(production(post={"timeoutMinutes": 5})))
    for i in range(5):
        if i % 2:
            gate.sample({"errors": Reading("errors", value=0.0), "latency": Reading("latency", value=900.0)})
        else:
            gate.sample({"errors": Reading("errors", value=3.0), "latency": Reading("latency", value=100.0)})
    assert gate.run.status == "failed" and gate.status() == "failed"
    assert gate.run.reason.startswith("timed out") and gate.run.sample_count == 5
    assert "post-deployment gate failed" in str(gate.rel.stages["Production"].current.failure)  # type: ignore


def test_the_steady_duration_is_reset_by_one_red_sample() -> None:
    gate = Gate(deploy(production(post={"minimumSuccessMinutes": 3, "timeoutMinutes": 20})))
    gate.sample(GREEN)
    gate.sample(GREEN)
    gate.sample({**GREEN, "latency": Reading("latency", value=800.0)})  # red: start over
    assert gate.run.green_since is None
    gate.sample(GREEN)
    gate.sample(GREEN)
    gate.sample(GREEN)
    assert gate.run.status == "evaluating"  # green for 2 minutes only
    gate.sample(GREEN)
    assert gate.run.status == "succeeded" and gate.run.sample_count == 7


@pytest.mark.parametrize("limit, reading, status, reason", [
    ({"maxFailedSamples": 1}, Reading("errors", value=5.0), "failed", "2 failed samples (limit 1)"),
    ({"maxInconclusiveSamples": 1}, Reading("errors", inconclusive="no Http5xx data"), "failed",
     "2 inconclusive samples"),
    ({}, Reading("errors", error="HTTP 500: boom"), "errored", "4 samples in a row could not be read (limit 4)"),
    ({"maxConsecutiveErrors": 2}, Reading("errors", error="throttled", retry_after=30), "errored",
     "2 samples in a row"),
])
def test_each_limit_ends_the_gate_failed_or_errored(limit: dict[str, Any], reading: Reading, status: str,
                                                    reason: str) -> None:
    """Signals that said no fail the gate; signals that could not be read leave it errored (technical)."""
    gate = Gate(deploy(production(post={"timeoutMinutes": 60, **limit})))
    for _ in range(6):
        if gate.run.status != "evaluating":
            break
        gate.sample({**GREEN, "errors": reading})
    assert gate.run.status == status and reason in gate.run.reason


def test_errors_in_a_row_reset_when_a_sample_is_read() -> None:
    gate = Gate(deploy(production(post={"timeoutMinutes": 60})))
    broken = {**GREEN, "errors": Reading("errors", error="timeout")}
    for readings in (broken, broken, broken, {**GREEN, "errors": Reading("errors", value=2.0)}, broken, broken):
        gate.sample(readings)
    assert gate.run.status == "evaluating" and gate.run.errors_in_row == 2


@pytest.mark.parametrize("reading, verdict", [
    (Reading("errors", error="HTTP 500: server error"), "error"),
    (Reading("errors", error="throttled: HTTP 429", retry_after=90), "error"),
    (Reading("errors", error="ServiceRequestTimeoutError: timed out"), "error"),
    (Reading("errors", inconclusive="no Http5xx data in the last 0:05:00"), "inconclusive"),
    (Reading("errors", error="unreadable answer: JSONDecodeError"), "error"),
    (Reading("errors", value="not a number"), "inconclusive"),
    (Reading("errors", value=None), "inconclusive"),
])
def test_no_provider_fault_is_ever_a_pass(reading: Reading, verdict: str) -> None:
    gate = Gate(deploy(production(post={})))
    decision = gate.sample({**GREEN, "errors": reading})
    assert gate.run.samples[-1]["verdict"] == verdict and gate.run.status == "evaluating"
    [nxt] = [e for e in decision.effects if isinstance(e, EnqueueGate)]
    assert nxt.delay_seconds == (90 if reading.retry_after else 60)  # Retry-After is honoured


def test_a_duplicated_or_late_message_takes_no_second_sample() -> None:
    gate = Gate(deploy(production(post={"timeoutMinutes": 60})))
    gate.sample({**GREEN, "latency": Reading("latency", value=900.0)})
    rel = gate.rel
    stale = decide(rel, GateClaim("Production", 1, "post", 1, "late"), gate.now)
    assert not stale.changed  # sample 1 is taken already
    claimed = decide(rel, GateClaim("Production", 1, "post", 2, "first"), gate.now).release
    assert not decide(claimed, GateClaim("Production", 1, "post", 2, "second"), gate.now).changed
    intruder = decide(claimed, GateSample("Production", 1, "post", 2, "second", tuple(GREEN.values())), gate.now)
    assert not intruder.changed
    after_lease = decide(claimed, GateClaim("Production", 1, "post", 2, "second"), gate.now + timedelta(minutes=3))
    assert after_lease.changed  # the first evaluation died: another may take the sample


def test_a_failed_post_gate_after_a_swap_swaps_back() -> None:
    steps = [{"type": "swap", "slot": "preprod"}]
    rel = decide(production(post={"timeoutMinutes": 2}, steps=steps), DeployStage("Production", "amita"), NOW).release
    rel = finish_stage(rel, "Production")
    gate = Gate(rel)
    gate.sample({**GREEN, "errors": Reading("errors", value=12.0)})
    decision = gate.sample({**GREEN, "errors": Reading("errors", value=9.0)})
    dep = gate.rel.stages["Production"].current
    assert dep is not None and dep.steps[-1].type == "swap-back" and dep.steps[-1].status == "inProgress"
    assert any(isinstance(e, EnqueueStep) for e in decision.effects)
    done = finish_stage(gate.rel, "Production").stages["Production"].current
    assert done is not None and done.status == "failed"
    assert "post-deployment gate failed" in str(done.failure) and "swapped back" in str(done.failure)


def test_a_failed_pre_gate_rejects_the_deployment_before_any_step() -> None:
    rel = decide(production(pre={"timeoutMinutes": 1}), DeployStage("Production", "amita"), NOW).release
    assert rel.stages["Production"].current.phase == "preGate"  # type: ignore[union-attr]
    gate = Gate(rel, "pre")
    gate.sample({**GREEN, "errors": Reading("errors", value=1.0)})
    dep = gate.rel.stages["Production"].current
    assert dep is not None and dep.status == "rejected" and dep.steps[0].status == "pending"


def test_the_approvals_may_say_where_the_gate_goes_and_a_definition_where_both_disagree_is_refused() -> None:
    from shared.domain.errors import Invalid
    from shared.schemas.definition import parse_definition

    rel = production(pre={})
    rel.definition["stages"][0]["preApprovals"] = {"approvers": ["tim@contoso.com"], "order": "afterGates"}
    rel = Release.from_dict(rel.to_dict())
    assert decide(rel, DeployStage("Production", "amita"), NOW).release.stages["Production"].current.phase \
        == "preGate"  # type: ignore[union-attr]
    rel.definition["stages"][0]["preApprovals"]["order"] = "beforeGates"
    rel = Release.from_dict(rel.to_dict())
    assert decide(rel, DeployStage("Production", "amita"), NOW).release.stages["Production"].current.phase \
        == "preApproval"  # type: ignore[union-attr]
    stage = {**rel.definition["stages"][0], "preGates": {**rel.definition["stages"][0]["preGates"],
                                                          "order": "afterApprovals"},
             "preApprovals": {"approvers": ["tim@contoso.com"], "order": "afterGates"}}
    with pytest.raises(Invalid, match="disagree"):
        parse_definition({"name": "T", "artifacts": [{"alias": "web", "source": "web"}], "stages": [stage]})


def test_a_pre_gate_that_cannot_read_its_signals_fails_the_deployment_it_does_not_reject_it() -> None:
    """Errored is technical, as Argo Rollouts and Kargo keep it: nobody decided against this build."""
    rel = decide(production(pre={"timeoutMinutes": 10, "maxConsecutiveErrors": 2}),
                 DeployStage("Production", "amita"), NOW).release
    gate = Gate(rel, "pre")
    broken = {**GREEN, "errors": Reading("errors", error="HTTP 503: monitor unavailable")}
    gate.sample(broken)
    decision = gate.sample(broken)
    dep = gate.rel.stages["Production"].current
    assert dep is not None and gate.run.status == "errored"
    assert dep.status == "failed" and dep.steps[0].status == "pending"
    assert "pre-deployment gate errored" in str(dep.failure)
    assert [e.type for e in decision.events][-2:] == ["gateErrored", "deploymentFailed"]


def test_an_errored_post_gate_after_a_swap_swaps_back() -> None:
    steps = [{"type": "swap", "slot": "preprod"}]
    rel = decide(production(post={"maxConsecutiveErrors": 1}, steps=steps), DeployStage("Production", "amita"),
                 NOW).release
    gate = Gate(finish_stage(rel, "Production"))
    gate.sample({**GREEN, "errors": Reading("errors", error="throttled")})
    dep = gate.rel.stages["Production"].current
    assert dep is not None and gate.run.status == "errored"
    assert dep.steps[-1].type == "swap-back" and dep.steps[-1].status == "inProgress"
    done = finish_stage(gate.rel, "Production").stages["Production"].current
    assert done is not None and done.status == "failed" and "post-deployment gate errored" in str(done.failure)


def test_a_pre_gate_waits_for_approvals_by_default_and_before_them_when_asked() -> None:
    approvals = {"approvers": ["tim@contoso.com"]}
    after = production(pre={})
    after.definition["stages"][0]["preApprovals"] = approvals
    assert decide(after, DeployStage("Production", "amita"), NOW).release.stages["Production"].current.phase == \
        "preApproval"  # type: ignore[union-attr]
    before = production(pre={"order": "beforeApprovals"})
    before.definition["stages"][0]["preApprovals"] = approvals
    rel = decide(before, DeployStage("Production", "amita"), NOW).release
    assert rel.stages["Production"].current.phase == "preGate"  # type: ignore[union-attr]
    gate = Gate(rel, "pre")
    gate.sample(GREEN)
    assert gate.rel.stages["Production"].current.phase == "preApproval"  # type: ignore[union-attr]


def test_an_admin_ignores_a_gate_with_a_comment_and_others_may_not() -> None:
    gate = Gate(deploy(production(post={"timeoutMinutes": 60})))
    gate.sample({**GREEN, "errors": Reading("errors", value=3.0)})
    reader = Principal("tim@contoso.com", frozenset(), frozenset(), "user")
    with pytest.raises(Forbidden):
        decide(gate.rel, IgnoreGate("Production", "post", reader, "go"), gate.now)
    decision = decide(gate.rel, IgnoreGate("Production", "post", ADMIN, "known noisy metric"), gate.now)
    dep = decision.release.stages["Production"].current
    assert dep is not None and dep.status == "succeeded" and dep.gates["post"].status == "ignored"
    assert [(e.type, e.by, e.message) for e in decision.events][0] == (
        "gateIgnored", "ops@contoso.com", "post: known noisy metric")


def test_waiting_says_which_signal_and_since_when() -> None:
    gate = Gate(deploy(production(post={"timeoutMinutes": 60})))
    gate.sample({**GREEN, "latency": Reading("latency", value=700.0)})
    first = gate.now
    gate.sample({**GREEN, "latency": Reading("latency", value=650.0)})
    text = str(why(gate.rel, "Production"))
    assert "latency (fail: 650 < 500 is false) since " + first.isoformat() in text and "errors" not in text
    assert preview(gate.rel, "Production")["waitsOn"] == "gate"


def test_a_wake_past_the_timeout_fails_a_gate_whose_messages_were_lost() -> None:
    from shared.domain.transitions import Wake

    gate = Gate(deploy(production(post={"timeoutMinutes": 10})))
    early = decide(gate.rel, Wake("Production", 1), NOW + timedelta(minutes=5))
    assert not early.changed
    late = decide(gate.rel, Wake("Production", 1), NOW + timedelta(minutes=10))
    assert late.release.stages["Production"].status == "failed"


def test_the_sweeper_asks_again_for_a_sample_whose_evaluation_died_or_whose_message_was_lost() -> None:
    from shared.domain.transitions import EnqueueGate, GateClaim, Sweep

    rel = Gate(deploy(production(post={"timeoutMinutes": 60}))).rel
    dep = rel.stages["Production"].current
    assert dep is not None and dep.phase == "postGate"
    due = datetime.fromisoformat(dep.gates["post"].next_at)

    def resent(decision: Any) -> list[Any]:
        return [e for e in decision.effects if isinstance(e, EnqueueGate)]

    assert not resent(decide(rel, Sweep(30, 3), due + timedelta(seconds=59)))  # the message may be queued
    assert resent(decide(rel, Sweep(30, 3), due + timedelta(seconds=61))) == [EnqueueGate("Production", 1, "post",
                                                                                            1, 0)]
    claimed = decide(rel, GateClaim("Production", 1, "post", 1, "host-a"), due).release
    assert not resent(decide(claimed, Sweep(30, 3), due + timedelta(seconds=59)))  # its evaluation holds the claim
    died = decide(claimed, Sweep(30, 3), due + timedelta(seconds=61))
    assert resent(died) == [EnqueueGate("Production", 1, "post", 1, 0)]
    retaken = decide(died.release, GateClaim("Production", 1, "post", 1, "host-b"), due + timedelta(seconds=62))
    assert retaken.release.stages["Production"].current.gates["post"].claim == "host-b"  # type: ignore[union-attr]


def test_each_sample_is_claimed_for_its_message_by_the_write_that_sends_it() -> None:
    """The gate's start claims the first sample for its message and each record the next: the message's
    handler takes it without a write of its own, and a message without the claim cannot take it meanwhile."""
    from shared.domain.transitions import EnqueueGate, GateClaim

    gate = Gate(deploy(production(post={"timeoutMinutes": 60})))
    first = gate.run.claim
    assert first and gate.run.next_seq == 1
    due = datetime.fromisoformat(gate.run.next_at)
    other = decide(gate.rel, GateClaim("Production", 1, "post", 1, "a copy without it"), due)
    assert other.release.stages["Production"].current.gates["post"].claim == first  # type: ignore[union-attr]
    decision = gate.sample({**GREEN, "latency": Reading("latency", value=900.0)})  # red: it samples again
    sent = [e for e in decision.effects if isinstance(e, EnqueueGate)]
    assert [(e.seq, e.token) for e in sent] == [(2, gate.run.claim)] and gate.run.claim not in ("", first)
    again = decide(gate.rel, GateSample("Production", 1, "post", 1, first, tuple(GREEN.values())), gate.now)
    assert not again.changed  # that sample is recorded: its message delivered again does nothing

"""Release gates: health signals sampled together until they pass together.

As Azure DevOps does: a delay before the first sample, a sampling interval, a timeout and a
minimum duration of steady success; every signal of a gate is read in each sample and the gate
passes only when all pass in the same sample and keep passing for the steady duration. As Argo
Rollouts learned: a provider error, an empty series or a throttled call is never a pass, and
failed, inconclusive and errored samples each have a limit. Every sample is kept with each
signal's value, threshold, verdict and reason.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.vocabulary import GATE_RUNNING, GateStatus, Kind, Verdict

KEPT_SAMPLES = 40
"""Samples kept on the release for its page; every sample is also an event in its history."""
DEFAULTS: dict[str, Any] = {"delayMinutes": 0.0, "intervalMinutes": 5.0, "timeoutMinutes": 60.0,
                            "minimumSuccessMinutes": 0.0, "maxFailedSamples": None, "maxInconclusiveSamples": None,
                            "maxConsecutiveErrors": 4}
JSON_PATH = re.compile(r"^\$(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$")


def setting(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    return DEFAULTS[name] if value is None else value


@dataclass(frozen=True)
class Reading:
    """What one provider call returned for one signal in one sample."""

    name: str
    value: float | str | bool | None = None
    error: str | None = None
    """The provider failed, timed out, throttled or answered something unreadable."""
    inconclusive: str | None = None
    """It answered, but with nothing to judge (an empty series, no rows)."""
    failed: str | None = None
    """Red whatever the threshold (a REST probe answered another status than expected)."""
    retry_after: float | None = None


@dataclass
class GateRun:
    """One gate of one deployment (pre or post) and the samples taken so far."""

    kind: Kind
    status: GateStatus
    started_at: str
    evaluate_from: str
    deadline: str
    next_seq: int = 1
    next_at: str = ""
    claim: str | None = None
    """The evaluation that holds the next sample (a random token), and until when."""
    claimed_until: str | None = None
    green_since: str | None = None
    failed: int = 0
    inconclusive: int = 0
    errors_in_row: int = 0
    sample_count: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    ignored_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateRun:
        return cls(**{**data, "kind": Kind(data["kind"]), "status": GateStatus(data["status"])})


def start(kind: Kind, config: dict[str, Any], now: datetime) -> GateRun:
    begin = now + timedelta(minutes=float(setting(config, "delayMinutes")))
    deadline = now + timedelta(minutes=float(setting(config, "timeoutMinutes")))
    return GateRun(kind=kind, status=GateStatus.WAITING if begin > now else GateStatus.EVALUATING,
                   started_at=now.isoformat(),
                   evaluate_from=begin.isoformat(), deadline=deadline.isoformat(), next_at=begin.isoformat())


def judge(signal: dict[str, Any], reading: Reading | None) -> tuple[Verdict, str]:
    """The verdict on one signal and why, in words."""
    if reading is None:
        return Verdict.ERROR, "no reading"
    if reading.error:
        return Verdict.ERROR, reading.error
    if reading.failed:
        return Verdict.FAIL, reading.failed
    if reading.inconclusive or reading.value is None:
        return Verdict.INCONCLUSIVE, reading.inconclusive or "no value"
    op, threshold = condition(signal)
    ok = compare(reading.value, op, threshold)
    if ok is None:
        return Verdict.INCONCLUSIVE, f"{reading.value!r} cannot be compared with {threshold!r}"
    said = f"{_show(reading.value)} {op} {_show(threshold)} is {'true' if ok else 'false'}"
    return (Verdict.PASS if ok else Verdict.FAIL), said


def condition(signal: dict[str, Any]) -> tuple[str, Any]:
    """The operator and threshold; alerts pass with none firing, REST probes on the expected status."""
    default = {"alerts": 0, "rest": True}.get(signal.get("type", ""))
    threshold = signal.get("threshold")
    return signal.get("operator") or "==", default if threshold is None else threshold


def compare(value: Any, op: str, threshold: Any) -> bool | None:
    if isinstance(value, bool) or isinstance(threshold, bool) or isinstance(value, str) or isinstance(threshold, str):
        if op not in ("==", "!="):
            return None
        same = str(value).lower() == str(threshold).lower()
        return same if op == "==" else not same
    try:
        left, right = float(value), float(threshold)
    except (TypeError, ValueError):
        return None
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right,
            "==": left == right, "!=": left != right}[op]


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sample_verdict(verdicts: list[Verdict]) -> Verdict:
    """All pass, or the worst: a red signal is a failure even when another provider errored."""
    for kind in (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if kind in verdicts:
            return kind
    return Verdict.PASS


def record(gate: GateRun, config: dict[str, Any], readings: list[Reading], now: datetime,
           ) -> tuple[GateStatus, float]:
    """Add one sample. Returns the gate's status after it and the seconds until the next sample."""
    by_name = {r.name: r for r in readings}
    signals = []
    for signal in config.get("signals", []):
        verdict, why = judge(signal, by_name.get(signal["name"]))
        reading = by_name.get(signal["name"])
        op, threshold = condition(signal)
        signals.append({"name": signal["name"], "value": reading.value if reading else None,
                        "operator": op, "threshold": threshold,
                        "verdict": verdict, "reason": why})
    verdict = sample_verdict([s["verdict"] for s in signals])
    gate.sample_count += 1
    gate.next_seq += 1
    gate.claim = gate.claimed_until = None
    gate.samples = [*gate.samples, {"seq": gate.sample_count, "at": now.isoformat(), "verdict": verdict,
                                    "signals": signals}][-KEPT_SAMPLES:]
    gate.errors_in_row = gate.errors_in_row + 1 if verdict == Verdict.ERROR else 0
    gate.failed += verdict == Verdict.FAIL
    gate.inconclusive += verdict == Verdict.INCONCLUSIVE
    if verdict == Verdict.PASS:
        gate.green_since = gate.green_since or now.isoformat()
        steady = now - datetime.fromisoformat(gate.green_since)
        if steady >= timedelta(minutes=float(setting(config, "minimumSuccessMinutes"))):
            return _end(gate, GateStatus.SUCCEEDED, f"all signals passed (sample {gate.sample_count})"), 0.0
    else:
        gate.green_since = None
    limit = _limit_hit(gate, config)
    if limit:
        return _end(gate, *limit), 0.0
    deadline = datetime.fromisoformat(gate.deadline)
    if now >= deadline:
        return _end(gate, GateStatus.FAILED, f"timed out at {gate.deadline}: {_red(signals)}"), 0.0
    wait = float(setting(config, "intervalMinutes")) * 60
    retry_after = max((r.retry_after or 0.0) for r in readings) if readings else 0.0
    wait = min(max(wait, retry_after), max(0.0, (deadline - now).total_seconds()))
    gate.next_at = (now + timedelta(seconds=wait)).isoformat()
    gate.status = GateStatus.EVALUATING
    return GateStatus.EVALUATING, wait


def _limit_hit(gate: GateRun, config: dict[str, Any]) -> tuple[GateStatus, str] | None:
    """A limit the samples reached: too many errors in a row is an errored gate (nothing could be
    read), too many failed or inconclusive samples a failed one."""
    errors = int(setting(config, "maxConsecutiveErrors"))
    if gate.errors_in_row >= errors:
        return GateStatus.ERRORED, f"{gate.errors_in_row} samples in a row could not be read (limit {errors})"
    for count, name, word in ((gate.failed, "maxFailedSamples", "failed"),
                              (gate.inconclusive, "maxInconclusiveSamples", "inconclusive")):
        limit = config.get(name)
        if limit is not None and count > int(limit):
            return GateStatus.FAILED, f"{count} {word} samples (limit {limit})"
    return None


def _red(signals: list[dict[str, Any]]) -> str:
    red = [f"{s['name']} ({s['reason']})" for s in signals if s["verdict"] != Verdict.PASS]
    return "; ".join(red) or "not steady long enough"


def _end(gate: GateRun, status: GateStatus, reason: str) -> GateStatus:
    gate.status, gate.reason = status, reason
    gate.claim = gate.claimed_until = None
    return status


def timed_out(gate: GateRun, now: datetime) -> bool:
    return gate.status in GATE_RUNNING and now >= datetime.fromisoformat(gate.deadline)


def waiting_on(gate: GateRun) -> str:
    """Which signals the gate waits for, and since when (for the release's `waitingFor`)."""
    if gate.status == GateStatus.WAITING:
        return f"{gate.kind}-deployment gate: first sample at {gate.evaluate_from}"
    if not gate.samples:
        return f"{gate.kind}-deployment gate: first sample due {gate.next_at}"
    last = gate.samples[-1]
    red = [s for s in last["signals"] if s["verdict"] != Verdict.PASS]
    if not red:
        return f"{gate.kind}-deployment gate: all signals pass since {gate.green_since}; staying green"
    parts = []
    for signal in red:
        since = last["at"]
        for sample in reversed(gate.samples):
            match = next((s for s in sample["signals"] if s["name"] == signal["name"]), None)
            if match is None or match["verdict"] == Verdict.PASS:
                break
            since = sample["at"]
        parts.append(f"{signal['name']} ({signal['verdict']}: {signal['reason']}) since {since}")
    return f"{gate.kind}-deployment gate waits for " + "; ".join(parts) + f"; next sample {gate.next_at}"

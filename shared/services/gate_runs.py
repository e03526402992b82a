"""Taking a gate's samples: a delayed message per sample, exactly one provider call per signal.

A message names the sample it is for, and the claim on it that the write sending it took: the gate's
start claims the first sample, each sample's record the next. A message holding its sample's claim
reads every signal at once and records the sample (ETag-guarded), and that decision claims and sends
the next one; a duplicate finds the sample recorded and does nothing. A message without a claim (the
sweeper's, for a sample whose message was lost) claims its sample first. A gate that is not due has no
message in flight and costs nothing.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from shared import plugins
from shared.config import GATES_QUEUE
from shared.domain import variables
from shared.domain.gates import GateRun, Reading
from shared.domain.release import Release
from shared.domain.target import Target
from shared.domain.transitions.commands import GateClaim, GateSample
from shared.domain.transitions.gates import CLAIM_SECONDS, gate_config, live_gate
from shared.domain.vocabulary import Kind
from shared.messages import TakeSample, decode, encode
from shared.ports import TargetError
from shared.services import events
from shared.services.apply import change
from shared.services.deps import Deps

logger = logging.getLogger(__name__)


def handle(deps: Deps, body: str, delivery: str = "") -> str:
    msg = decode(GATES_QUEUE, body)
    if not isinstance(msg, TakeSample):
        logger.error("dropping a gate message that is not ours: %.200s", body)
        return "malformed"
    return take_sample(deps, msg)


def take_sample(deps: Deps, msg: TakeSample, delivery: str = "") -> str:
    did, rid, stage, attempt, kind, seq = msg.definition_id, msg.release_id, msg.stage, msg.attempt, msg.gate, msg.seq
    loaded = deps.store.release(did, rid)
    if loaded is None:
        return "no such release"
    gate = _gate_of(loaded[0], stage, attempt, kind)
    if gate is None or gate.next_seq != seq:
        return "stale"
    left = (datetime.fromisoformat(gate.next_at) - deps.clock.now()).total_seconds()
    if left > 1:  # early: queues cap a delay at 7 days
        deps.bus.send(GATES_QUEUE, encode(msg), left)
        return "re-armed"
    written: tuple[Release, str] | None = loaded
    ours = bool(msg.token) and gate.claim == msg.token  # the write that sent this message claimed the sample
    if ours and _lasts(gate, deps.clock.now()):
        token, claimed = msg.token, loaded[0]
    else:
        token = msg.token if ours else uuid.uuid4().hex  # received late, it renews the claim it holds
        claim = change(deps, did, rid, GateClaim(stage, attempt, kind, seq, token), read=loaded)
        claimed = claim.decision.release
        held = _gate_of(claimed, stage, attempt, kind)
        if held is None or held.claim != token:
            return "taken by another evaluation"
        written = claim.read if claim.decision.changed else None
    plan = claimed.plan.stage(stage)
    config = gate_config(plan, kind) or {}
    resource_id = Target.from_dict(plan.environment).resource_id if plan else ""  # where the release ends up
    try:
        signals, secrets = _expanded(deps, claimed, stage, config.get("signals", []))
        readings = [_masked(r, secrets) for r in read_all(deps, signals, resource_id, secrets)]
    except (variables.UnknownVariable, TargetError) as exc:  # a sample that cannot be taken is an error sample
        readings = [Reading(str(s.get("name")), error=str(exc)) for s in config.get("signals", [])]
    # written on the release as the claim wrote it (if anything wrote it since, the write is a 412 and reads again)
    applied = change(deps, did, rid, GateSample(stage, attempt, kind, seq, token, tuple(readings)), read=written,
                     hand_turns=True)
    events.hand_over(deps, applied.turns)  # a gate that ends its deployment lets the lane's next release in
    after = applied.decision.release
    done = after.stages[stage].deployments[attempt - 1].gates[kind]
    return f"{kind} gate sample {seq}: {done.samples[-1]['verdict'] if done.samples else '?'} -> {done.status}"


def _lasts(gate: GateRun, now: datetime) -> bool:
    """Does the claim last at least half its length from now? A message received late (a busy queue) takes
    a claim of its own rather than sample while the sweeper may think the sample lost."""
    return gate.claimed_until is not None and \
        now + timedelta(seconds=CLAIM_SECONDS / 2) < datetime.fromisoformat(gate.claimed_until)


def _expanded(deps: Deps, release: Release, stage: str, signals: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], set[str]]:
    """The signals with `$(Name)` variables substituted (a Key Vault secret read now), and the secret values
    read: masked in the readings, which every reader of the release sees."""
    dep = release.stages[stage].current
    known = {**variables.custom(release, stage), **variables.predefined(release, stage, dep)}
    secrets: set[str] = set()

    def secret(reference: str) -> str:
        value = deps.secrets.get(reference)
        secrets.add(value)
        return value

    expanded = [{k: (v if k in ("type", "name") else variables.expand_all(v, known, secret)) for k, v in s.items()}
                for s in signals]
    return expanded, secrets


def _masked(reading: Reading, secrets: set[str]) -> Reading:
    if not secrets:
        return reading
    return Reading(**{k: variables.mask(v, secrets) for k, v in asdict(reading).items()})


def read_all(deps: Deps, signals: list[dict[str, Any]], resource_id: str,
             secrets: set[str] | None = None) -> list[Reading]:
    """Every signal of the sample at once (the sample is one moment), one call each. `secrets`: the values
    expanded into the signals, masked in what is logged here."""
    if not signals:
        return []
    now = deps.clock.now()
    with ThreadPoolExecutor(max_workers=min(10, len(signals))) as pool:
        return list(pool.map(lambda s: _safe(deps, s, resource_id, now, secrets or set()), signals))


def _safe(deps: Deps, signal: dict[str, Any], resource_id: str, now: datetime, secrets: set[str]) -> Reading:
    name = str(signal.get("name"))
    loaded = plugins.current().signal(str(signal.get("type")))
    try:
        if loaded is None or loaded.kind.reader is None:
            return deps.signals.read(signal, resource_id, now)
        reader = plugins.current().readers()[loaded.name]
        what = f"signal '{loaded.name}'"
        reading = plugins.call(what, loaded.kind.timeout_seconds, reader, signal, resource_id, now)
        if not isinstance(reading, Reading):  # garbage is an error, never a pass
            return Reading(name, error=f"plugin {what} answered {type(reading).__name__}, not a Reading")
        return reading
    except plugins.NoAnswer as exc:
        return Reading(name, error=str(exc))
    except Exception as exc:  # a provider bug is an errored reading, never a pass and never a crash
        # one masked line without the traceback: the signal's settings were expanded with secrets, and the
        # message (or a chained exception's) may quote them
        reason = variables.mask(f"{type(exc).__name__}: {exc}", secrets)
        logger.warning("signal %s failed: %s", variables.mask(name, secrets), reason)
        return Reading(name, error=reason)


def _gate_of(release: Release, stage: str, attempt: int, kind: Kind) -> GateRun | None:
    live = live_gate(release, stage, attempt, kind)
    return live[1] if live else None

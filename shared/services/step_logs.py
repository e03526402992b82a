"""Step logs: the lines of each step run (and of a callback, a stop) as parts in the release's partition,
written with the change that records the run, so a run costs no storage operation of its own for its log
and its lines land with the state they explain. Logs written before parts existed are blobs: read when a
step has no part for its first run."""

from __future__ import annotations

from shared.domain.keys import key_hash
from shared.domain.release import Release
from shared.records import LogPart
from shared.services.deps import Deps

MAX_PART = 200_000
"""Characters one part keeps (a table row holds about twice that): a run that wrote more keeps its first and
last halves, with a line saying how much was left out between them."""
CALLBACK, RUN, STOP = 0, 1, 2
"""Where a part goes among those of the same run: a callback's lines before the run that takes them in."""


def stage_key(stage: str) -> str:
    """A readable key that is still one stage's own: stages named `A-B` and `A_B` (or any that differ only in
    characters a key leaves out) get different keys by their digest."""
    readable = "".join(c if c.isascii() and c.isalnum() else "_" for c in stage)[:40]
    return f"{readable}-{key_hash(stage)[:10]}"


def log_name(release: Release, stage: str, attempt: int, step: int) -> str:
    """The blob of a step's log as logs were written before parts (read, and deleted by retention)."""
    return f"{release.definition_id}/{release.id}/{stage_key(stage)}/{attempt}/{step}.log"


def log_key(stage: str, attempt: int, step: int) -> str:
    return f"{stage_key(stage)}|{attempt}|{step}"


def part(stage: str, attempt: int, step: int, run: int, lines: list[str], kind: int = RUN) -> LogPart:
    """The part that adds `lines` to a step's log for run `run`."""
    text = "".join(line.rstrip("\n") + "\n" for line in lines)
    if len(text) > MAX_PART:
        half = MAX_PART // 2
        text = (text[:half] + f"\n… {len(text) - 2 * half:,} characters of this run's output left out "
                f"(a run keeps its first and last {half:,}) …\n" + text[-half:])
    return LogPart(log_key(stage, attempt, step), f"{run:06d}.{kind}", text)


def read(deps: Deps, release: Release, stage: str, attempt: int, step: int) -> str | None:
    """A step's log so far, or None when it has none yet."""
    parts = deps.store.log_parts(int(release.definition_id), release.id, log_key(stage, attempt, step))
    return _joined(deps, release, stage, attempt, step, parts)


def ran(release: Release) -> list[tuple[str, int, int]]:
    """(stage, attempt, step) of every step of the release that was ever sent: those that can have a log."""
    return [(name, dep.attempt, step.index) for name, run in release.stages.items() for dep in run.deployments
            for step in dep.steps if step.run > 0]


def read_all(deps: Deps, release: Release) -> dict[tuple[str, int, int], str]:
    """Every step's log of the release, by (stage, attempt, step): one read of its parts."""
    by_log: dict[str, list[LogPart]] = {}
    for found in deps.store.log_parts(int(release.definition_id), release.id):
        by_log.setdefault(found.log, []).append(found)
    logs = {}
    for stage, attempt, step in ran(release):
        text = _joined(deps, release, stage, attempt, step, by_log.get(log_key(stage, attempt, step), []))
        if text is not None:
            logs[(stage, attempt, step)] = text
    return logs


def blobs(deps: Deps, release: Release) -> list[str]:
    """The blobs an earlier version may have written the release's step logs in (retention deletes them): those
    of the steps that ran but whose first run has no part."""
    first = {p.log for p in deps.store.log_parts(int(release.definition_id), release.id) if _of_first_run(p)}
    return [log_name(release, *where) for where in ran(release) if log_key(*where) not in first]


def _of_first_run(found: LogPart) -> bool:
    return found.order.startswith(f"{1:06d}.")


def _joined(deps: Deps, release: Release, stage: str, attempt: int, step: int, parts: list[LogPart]) -> str | None:
    """The parts in order, after the blob an earlier version wrote when the first run has no part (a step that
    began before parts existed; or one whose first run's host died before it wrote anything)."""
    parts = sorted(parts, key=lambda p: p.order)
    older = None
    if not parts or not _of_first_run(parts[0]):
        older = deps.logs.read(log_name(release, stage, attempt, step))
    if older is None and not parts:
        return None
    return (older or "") + "".join(p.text for p in parts)

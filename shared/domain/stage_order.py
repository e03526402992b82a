"""The order of a pipeline's stages as people read it: upstream before downstream.

A definition lists its stages in any order (cloning Production into QA puts QA after Production),
so every place that lists stages (the diagram, release lists, a release's stages) sorts them by
the trigger graph instead: a stage comes after the stages it waits for (`afterStages`) and after
the stages a schedule or manual trigger requires (`stages` on those). Among stages free to go next,
the one listed first in the definition goes first (a stable topological sort), so a definition
already in pipeline order keeps its order. Pure: plain dicts in, names out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def upstream(stage: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """The stages `stage` comes after: the named stages of its trigger that the definition has."""
    trigger = stage.get("trigger") or {}
    names = set(known)
    found: list[str] = []
    for name in trigger.get("stages") or []:
        if isinstance(name, str) and name in names and name != stage.get("name") and name not in found:
            found.append(name)
    return found


def pipeline_order(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stage names, upstream first; ties by definition order. A cycle (which validation refuses)
    cannot hide a stage: what is left is appended in definition order."""
    names = [str(s.get("name")) for s in stages]
    ups = {str(s.get("name")): set(upstream(s, names)) for s in stages}
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        ready = next((n for n in names if n not in placed and ups[n] <= placed), None)
        if ready is None:
            done.extend(n for n in names if n not in placed)
            break
        done.append(ready)
        placed.add(ready)
    return done


def depths(stages: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How far each stage is from the start: 0 for a stage that waits for no other stage
    (after release, manual, scheduled), else one more than its deepest upstream stage."""
    by_name = {str(s.get("name")): s for s in stages}
    names = list(by_name)
    out: dict[str, int] = {}
    for name in pipeline_order(stages):
        out[name] = 1 + max((out[u] for u in upstream(by_name[name], names) if u in out), default=-1)
    return out


def in_pipeline_order(stages: Sequence[Mapping[str, Any]], items: Mapping[str, T]) -> list[tuple[str, T]]:
    """`items` (keyed by stage name) in the pipeline order of `stages`; names the stages do not know
    (a release of an older revision) keep their own order, after the known ones."""
    order = pipeline_order(stages)
    known = [(n, items[n]) for n in order if n in items]
    return known + [(n, v) for n, v in items.items() if n not in set(order)]

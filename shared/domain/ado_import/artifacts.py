"""Artifacts → `artifacts`: an alias Slipway accepts, the build pipeline's name as the source its webhook
registers builds under, and which one is primary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.ado_import.model import CHANGED, MAPPED
from shared.domain.ado_import.names import token
from shared.domain.ado_import.reading import Path, flag, get, mapping, refuse, sequence, text
from shared.domain.ado_import.report import Report

MAX_ARTIFACTS = 10


@dataclass
class Artifacts:
    items: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    """Azure DevOps alias (case-folded) → Slipway alias."""
    positions: dict[str, int] = field(default_factory=dict)
    primary: str | None = None


def artifacts(value: Any, path: Path, report: Report) -> Artifacts:
    out = Artifacts()
    listed = sequence(value, path)
    if len(listed) > MAX_ARTIFACTS:
        refuse(path, f"Slipway takes at most {MAX_ARTIFACTS} artifacts")
    taken: set[str] = set()
    for k, item in enumerate(listed):
        where = (*path, k)
        data = mapping(item, where, required=True)
        original = text(get(data, "alias")).strip()
        reference = mapping(get(data, "definitionReference"), (*where, "definitionReference"))
        build = get(reference, "definition")
        build_name = text(get(build, "name")).strip() if isinstance(build, dict) else ""
        alias = _unique(token(original) or token(build_name) or f"artifact{k + 1}", taken)
        source = token(build_name) or alias
        notes = []
        if alias != original:
            notes.append(f"alias '{original}' is '{alias}' in Slipway (an alias starts with a letter or digit and "
                         f"holds letters, digits, . _ -); paths and variables that named it were translated")
        kind = text(get(data, "type")).strip()
        if kind and kind.casefold() != "build":
            notes.append(f"a {kind} artifact: Slipway's artifacts are builds registered by its webhook; register "
                         f"each version under source {source}")
        entry: dict[str, Any] = {"alias": alias, "source": source}
        if flag(get(data, "isPrimary")) and out.primary is None:
            entry["isPrimary"] = True
            out.primary = alias
        out.aliases.setdefault(original.casefold(), alias)
        out.positions[alias] = len(out.items)
        out.items.append(entry)
        report.add(where, "artifact", original or alias, CHANGED if notes else MAPPED, f"artifacts[{k}]",
                   "; ".join([f"builds of {build_name or source} registered under source {source}"
                              + (" (primary)" if entry.get("isPrimary") else ""), *notes]) + ".")
    if out.items and out.primary is None:
        out.primary = out.items[0]["alias"]
    return out


def _unique(alias: str, taken: set[str]) -> str:
    candidate, n = alias, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{alias[:60]}-{n}"
    taken.add(candidate.casefold())
    return candidate

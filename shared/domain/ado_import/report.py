"""The migration report: one entry per element of the Azure DevOps document, in the document's order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.domain.ado_import.model import ReportEntry
from shared.domain.ado_import.reading import Path, clean, render

_LAST = 1 << 30


class Report:
    """Entries are added as the import meets them (stages in rank order, say) and read back in the order
    of the document, which is the order a user reading the export side by side expects."""

    def __init__(self, document: Any, mask: Callable[[str], str]) -> None:
        self._document = document
        self._mask = mask
        self._rows: list[tuple[tuple[int, ...], ReportEntry]] = []

    def add(self, path: Path, kind: str, name: str, outcome: str, became: str, note: str) -> None:
        entry = ReportEntry(render(path), kind, self._mask(clean(name)), outcome, became,
                            self._mask(clean(note)))
        self._rows.append(((*self._position(path), len(self._rows)), entry))

    def entries(self) -> list[ReportEntry]:
        return [entry for _, entry in sorted(self._rows, key=lambda row: row[0])]

    def _position(self, path: Path) -> tuple[int, ...]:
        """Where `path` is in the document: the index of each key among its object's keys (JSON objects
        keep their order once parsed) and of each item in its list."""
        here: Any = self._document
        out: list[int] = []
        for segment in path:
            if isinstance(segment, str) and isinstance(here, dict):
                keys = list(here)
                out.append(keys.index(segment) if segment in here else _LAST)
                here = here.get(segment)
            elif isinstance(segment, int) and isinstance(here, list) and 0 <= segment < len(here):
                out.append(segment)
                here = here[segment]
            else:
                out.append(_LAST)
                here = None
        return (*out, -1)  # -1: a path sorts before the longer paths that extend it

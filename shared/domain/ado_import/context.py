"""What every part of one import shares: the options, the report, the definition's variables and
artifacts, and the tasks strict mode refuses."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.domain.ado_import.model import ImportOptions
from shared.domain.ado_import.refs import Scope
from shared.domain.ado_import.report import Report
from shared.domain.errors import FieldError


@dataclass
class Context:
    options: ImportOptions
    report: Report
    scope: Scope
    has_artifacts: bool
    refusals: list[FieldError] = field(default_factory=list)
    """Tasks with no Slipway equivalent, when the import is strict."""

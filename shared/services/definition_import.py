"""Import an Azure DevOps classic release definition: map it, check it as any definition is checked,
and save it as one new definition, or nothing.

The mapping is the domain's (`shared.domain.ado_import`); this use case adds what needs the app: the
same validation a created definition gets (slots that exist, variable groups that exist), a dry run
that shows the result and its problems without saving, and one atomic create.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from shared.domain.ado_import import ImportOptions, ImportResult, import_definition
from shared.domain.errors import Invalid
from shared.schemas.fields import clip
from shared.services import definitions
from shared.services.deps import Deps

IMPORTED_FROM = "Imported from Azure DevOps"


def run(deps: Deps, document: Any, options: ImportOptions, *, dry_run: bool, by: str) -> dict[str, Any]:
    """The migration report and the definition: saved (`saved` true, with its id) unless `dry_run`.

    A dry run answers even when the result would not save, listing why in `problems`; a real import
    raises Invalid then (nothing is written). One `definitions.create` is one transaction: an import
    never leaves half a definition behind."""
    result = import_definition(document, options)
    body = _described(result)
    answer: dict[str, Any] = {"report": [asdict(entry) for entry in result.report],
                              "summary": dict(Counter(entry.outcome for entry in result.report))}
    if dry_run:
        try:
            answer["definition"] = definitions.validate(deps, body)
            answer["problems"] = []
        except Invalid as exc:
            answer["definition"] = body
            answer["problems"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        answer["saved"] = False
        return answer
    answer["definition"] = definitions.create(deps, body, by=by)
    answer["saved"] = True
    return answer


def _described(result: ImportResult) -> dict[str, Any]:
    """The definition with a first line saying where it came from, so its page tells a reader why
    some steps are "Imported: …" manual interventions."""
    body = dict(result.definition)
    replaced = sum(1 for entry in result.report if entry.outcome == "replaced")
    note = IMPORTED_FROM + (f": {replaced} task(s) Slipway cannot run were replaced by manual interventions "
                            "named 'Imported: …'" if replaced else "")
    description = str(body.get("description") or "")
    if not description.startswith(IMPORTED_FROM):
        text = note + ("\n\n" + description if description else "")
        body["description"] = clip(text)
    return body

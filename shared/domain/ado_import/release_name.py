"""`releaseNameFormat`: Slipway fills in `$(rev:r)`, `$(Build.BuildNumber)` and `$(Release.DefinitionName)`
only (`shared/schemas/definition.py` NAME_TOKENS); Azure DevOps' other tokens (`$(date:yyyyMMdd)`,
`$(Build.SourceBranch)`, …) are taken out and reported."""

from __future__ import annotations

import re

from shared.domain.ado_import.refs import ADO_REFERENCE

DEFAULT = "Release-$(rev:r)"
"""Azure DevOps' default, which an empty format stands for."""
_KNOWN = {"build.buildnumber": "Build.BuildNumber", "release.definitionname": "Release.DefinitionName"}


def release_name(raw: str) -> tuple[str, list[str]]:
    """The format, and the tokens taken out of it."""
    if not raw.strip():
        return DEFAULT, []
    dropped: list[str] = []
    kept: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        folded = name.casefold()
        if re.fullmatch(r"rev:r+", folded):
            kept.append(f"$({folded})")
        elif folded in _KNOWN:
            kept.append(f"$({_KNOWN[folded]})")
        else:
            dropped.append(match.group(0))
            return ""
        return f"\x00{len(kept) - 1}\x00"

    text = ADO_REFERENCE.sub(one, raw.strip().replace("\x00", "")).replace("$(", "(")
    text = re.sub(r"([-_. ])\1+", r"\1", text).strip(" -_.")
    text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    if len(text) > 256 or not re.search(r"[A-Za-z0-9]", text):
        return DEFAULT, dropped
    return text, dropped

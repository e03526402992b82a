"""Variables as a stage sees them, and `$(Name)` references in the text carried into steps.

Slipway refuses at save a `$(Name)` in the predefined namespaces that it does not define, and fails a
step (or a manual intervention) at run time on any name nothing defines; Azure DevOps' agent variables
(`$(System.DefaultWorkingDirectory)`, `$(Build.BuildId)`, …) must therefore be translated or taken out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.domain.ado_import.names import reserved
from shared.domain.variables import ARTIFACT_FIELDS, RELEASE_NAMES, VARIABLE

ADO_REFERENCE = re.compile(r"\$\(([^()]{1,200})\)")
"""Any Azure DevOps macro reference, including the ones Slipway's syntax does not read (`$(date:yyyy)`)."""
_RELEASE_NAMES = {n.casefold(): n for n in RELEASE_NAMES}
_ARTIFACT_FIELDS = {f.casefold(): f for f in ARTIFACT_FIELDS}
_BUILD_OF_PRIMARY = {"build.buildid": "BuildId", "build.sourcebranch": "SourceBranch",
                     "build.sourceversion": "SourceVersion"}
"""Azure DevOps' `Build.*` variables describe the primary artifact's build."""
_ROOTS = ("$(system.defaultworkingdirectory)", "$(system.artifactsdirectory)", "$(agent.releasedirectory)",
          "$(release.artifactsdirectory)", "$(pipeline.workspace)")
"""Where the agent downloads artifacts: `<root>/<alias>/<path inside the artifact>`."""
PLACEHOLDER = "REPLACE-ME"
ALWAYS_DEFINED = {n.casefold(): n for n in (
    "Release.ReleaseId", "Release.ReleaseName", "Release.DefinitionId", "Release.DefinitionName",
    "Release.RequestedFor", "Release.Reason", "Release.EnvironmentName", "Release.Environments.Name",
    "Release.ReleaseDescription", "Release.AttemptNumber", "Release.Deployment.RequestedFor")}
"""Names every deployment defines (`shared/domain/variables.py` predefined): an artifact's may be missing
(a build registered without a branch), and a manual intervention fails on a name it cannot fill in."""


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    """Empty for secrets: their values are never carried anywhere."""
    secret: bool
    carried: bool
    """Declared in the Slipway definition (its name is one Slipway accepts)."""


@dataclass(frozen=True)
class Rewritten:
    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactFile:
    alias: str | None
    """The Slipway alias of the artifact the path starts in; None when the path names none (the primary)."""
    inner: str
    """The path inside the artifact."""
    named: bool
    """The path started at the agent's artifact folder (`$(System.DefaultWorkingDirectory)/…`)."""


@dataclass
class Scope:
    variables: dict[str, Variable]
    """By case-folded name: the definition's, then the stage's over them."""
    aliases: dict[str, str]
    """Azure DevOps alias (case-folded) → Slipway alias."""
    primary: str | None
    secrets: tuple[str, ...] = ()
    """Secret values found in the document: masked wherever text is shown."""

    def child(self, variables: dict[str, Variable]) -> Scope:
        return Scope({**self.variables, **variables}, self.aliases, self.primary, self.secrets)

    def literal(self, raw: str) -> str | None:
        """The value of `raw` with the definition's plain variables substituted; None when a reference
        is to a secret, to nothing or to something only known when a deployment runs."""
        value = raw.strip()
        for _ in range(4):
            if "$(" not in value:
                return value or None
            parts: list[str] = []
            last = 0
            for match in ADO_REFERENCE.finditer(value):
                found = self.variables.get(match.group(1).strip().casefold())
                if found is None or found.secret or not found.value.strip():
                    return None
                parts += [value[last:match.start()], found.value]
                last = match.end()
            if last == 0:
                return None
            value = ("".join(parts) + value[last:]).strip()
        return None

    def translate(self, name: str) -> str | None:
        """A Slipway name for an Azure DevOps predefined variable, or None."""
        folded = name.casefold()
        if folded in _RELEASE_NAMES:
            return _RELEASE_NAMES[folded]
        if folded in _BUILD_OF_PRIMARY and self.primary:
            return f"Release.Artifacts.{self.primary}.{_BUILD_OF_PRIMARY[folded]}"
        if folded.startswith("release.artifacts."):
            alias, _, tail = name[len("Release.Artifacts."):].rpartition(".")
            slipway = self.aliases.get(alias.casefold())
            if slipway and tail.casefold() in _ARTIFACT_FIELDS:
                return f"Release.Artifacts.{slipway}.{_ARTIFACT_FIELDS[tail.casefold()]}"
        return None

    def rewrite(self, text: str) -> Rewritten:
        """`text` for a step's field: references to the definition's variables stay, Azure DevOps'
        predefined ones become Slipway's, those with no equivalent become `REPLACE-ME(Name)`."""
        notes: list[str] = []

        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            declared = self.variables.get(name.casefold())
            if declared is not None and declared.carried:
                return match.group(0)
            slipway = self.translate(name)
            if slipway is not None:
                if slipway != name:
                    notes.append(f"$({name}) became $({slipway})")
                return f"$({slipway})"
            if reserved(name):
                notes.append(f"$({name}) has no Slipway equivalent: replace {PLACEHOLDER}({name})")
                return f"{PLACEHOLDER}({name})"
            notes.append(f"$({name}) is not a variable of this definition: define it (a variable group, a "
                         f"stage variable) or an earlier step's output")
            return match.group(0)

        return Rewritten(VARIABLE.sub(one, text), tuple(dict.fromkeys(notes)))

    def shown(self, text: str) -> str:
        """`text` for instructions, which fail on any name nothing defines: references Slipway always
        fills in stay, the others are shown as `$ (Name)`; secret values are masked."""

        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            declared = self.variables.get(name.casefold())
            if declared is not None and declared.carried:
                return match.group(0)
            safe = ALWAYS_DEFINED.get(name.casefold())
            return f"$({safe})" if safe is not None else f"$ ({name})"

        return self.mask(VARIABLE.sub(one, text))

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def artifact_file(self, raw: str) -> ArtifactFile:
        """A path on the agent (`$(System.DefaultWorkingDirectory)/<alias>/drop/app.zip`) as an artifact
        and a path inside it."""
        value = raw.strip().replace("\\", "/")
        named = False
        for root in _ROOTS:
            if value.casefold().startswith(root):
                value, named = value[len(root):], True
                break
        parts = [p for p in value.split("/") if p not in ("", ".")]
        if named and parts:
            first = parts[0].casefold()
            alias = self.primary if first == "$(release.primaryartifactsourcealias)" else self.aliases.get(first)
            if alias is not None:
                return ArtifactFile(alias, "/".join(parts[1:]), True)
        return ArtifactFile(None, "/".join(parts), named)

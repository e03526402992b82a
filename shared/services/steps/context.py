"""What a step runs with (its release, stage, plan and run) and what it reports back.

A step runs inside one queue-triggered invocation and never sleeps: a check that is not passing
yet, or a wait, asks to be run again later (`Outcome.retry`), keeping its scratch state in the
step row. Running a step twice has the same effect as running it once. The marks are the app
settings by which a slot says which release it runs; they move with swaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain import variables
from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StepRun
from shared.domain.target import Target

RELEASE_MARK = "SLIPWAY_RELEASE_ID"
DIGEST_MARK = "SLIPWAY_PACKAGE_SHA256"
VERSION_MARK = "SLIPWAY_VERSION"
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
RUN_FROM_PACKAGE_IDENTITY = "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"


@dataclass
class Outcome:
    kind: str
    """succeeded | failed | retry"""
    message: str
    delay: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    slots: list[dict[str, Any]] = field(default_factory=list)
    """What runs in which slot now, for the what-runs-where records."""

    @classmethod
    def ok(cls, message: str, slots: list[dict[str, Any]] | None = None,
           state: dict[str, Any] | None = None) -> Outcome:
        return cls("succeeded", message, state=state or {}, slots=slots or [])

    @classmethod
    def fail(cls, message: str) -> Outcome:
        return cls("failed", message)

    @classmethod
    def retry(cls, message: str, delay: float, state: dict[str, Any]) -> Outcome:
        return cls("retry", message, delay, state)


class ClaimLost(Exception):
    """The run's claim is another delivery's now (this host was presumed dead): stop before acting."""


@dataclass
class StepContext:
    release: Release
    stage: StagePlan
    step: StepPlan
    run: StepRun
    now: datetime
    lines: list[str] = field(default_factory=list)
    keep_intent: Callable[[dict[str, Any]], bool] | None = None
    """Stores an intent on the step under the run's claim; False when the claim is lost."""
    read_secret: Callable[[str], str] | None = None
    """Reads a Key Vault reference's value (raises TargetError when the vault cannot answer)."""
    secrets: set[str] = field(default_factory=set)
    """Secret values this run read: masked in everything it writes."""
    read: dict[str, str] = field(default_factory=dict, repr=False)
    """Key Vault reference → its value, for this run only (never stored)."""

    def intend(self, intent: dict[str, Any]) -> None:
        """Record, durably, what the step is about to do and how the world looked, before an act that
        cannot be repeated blindly: a retry after a crash reconciles from it. Raises `ClaimLost`."""
        if self.keep_intent is not None and not self.keep_intent(intent):
            raise ClaimLost("the step's run was taken by another delivery before it acted")
        self.run.state["intent"] = dict(intent)

    @property
    def target(self) -> Target:
        return Target.from_dict(self.stage.target)

    def slot(self, name: str | None) -> Target:
        """The stage's app, at slot `name` (the stage's own slot when None)."""
        if name is None:
            return self.target
        t = self.target
        return Target(t.subscription_id, t.resource_group, t.site, None if name == "production" else name)

    def artifact(self) -> dict[str, Any] | None:
        alias = self.step.config.get("artifact")
        return next((a for a in self.release.artifacts
                     if a["alias"] == alias or (alias is None and a.get("isPrimary"))), None)

    def expand(self, text: str) -> str:
        """`{version}` (the step's or the primary artifact's version), `{release}` and `$(Name)` variables
        (see shared/domain/variables.py) in a step's text; raises UnknownVariable."""
        artifact = self.artifact() or next(iter(self.release.artifacts), None)
        version = str(artifact["version"]) if artifact else ""
        return variables.expand(text.replace("{version}", version).replace("{release}", str(self.release.id)),
                                self.variables(), self.secret)

    def expand_all(self, value: Any) -> Any:
        """`expand` through every string of a JSON value."""
        return variables.expand_all(value, self.variables(), self.secret)

    def variables(self) -> dict[str, str]:
        """What `$(Name)` may name here: the definition's and the stage's variables (with the release's
        values), the predefined ones, and earlier steps' outputs. Secrets are Key Vault references."""
        dep = self.release.stages[self.stage.name].current
        return {**variables.custom(self.release, self.stage.name),
                **variables.predefined(self.release, self.stage.name, dep),
                **variables.outputs(dep, self.step.index)}

    def secret(self, reference: str) -> str:
        """A secret variable's value, read now (never stored): remembered so that every line, message and
        state this run writes masks it."""
        if self.read_secret is None:
            return variables.MASK
        if reference not in self.read:  # one Key Vault read per reference per run, however often it is used
            self.read[reference] = self.read_secret(reference)
            self.secrets.add(self.read[reference])
        return self.read[reference]

    def log(self, text: str) -> None:
        self.lines.append(f"{self.now.strftime('%H:%M:%S')} {variables.mask(text, self.secrets)}")

    def debug(self, text: str) -> None:
        """A line only releases created with `debug` write."""
        if self.release.debug:
            self.log(f"##[debug] {text}")


def holds(settings: dict[str, str], release_id: int | str, artifact: dict[str, Any]) -> bool:
    """Does a slot with these settings run this release's package? (The markers move with swaps.)"""
    return settings.get(RELEASE_MARK) == str(release_id) and settings.get(DIGEST_MARK) == artifact.get("sha256", "")


def slot_record(target: Target, settings: dict[str, str], how: str, seen_at: datetime) -> dict[str, Any]:
    """What the slot runs, as read at `seen_at`: records of one slot are kept in the order they were
    read, whatever the order their changes commit in (a later read is the truer one)."""
    release = settings.get(RELEASE_MARK)
    return {"slot": target.resource_id, "releaseId": int(release) if release and release.isdigit() else None,
            "version": settings.get(VERSION_MARK), "sha256": settings.get(DIGEST_MARK), "how": how,
            "seenAt": seen_at.isoformat()}

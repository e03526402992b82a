"""A verified Azure DevOps `build.complete` delivery: recorded with what it would release.

Slipway cannot download an Azure DevOps build's artifacts yet (that needs the Build Artifacts REST API with the
app's identity), so a build that a definition consumes is answered 202 with that reason rather than registered
without its package; every other outcome (failed build, another event, filtered branch, no consumer) is as for
GitHub.
"""

from __future__ import annotations

from typing import Any

from shared.domain.build_hooks.azure_devops import read
from shared.domain.build_hooks.github import NotABuild
from shared.schemas.release import BuildIn, parse
from shared.services.build_hooks import consumers, deliveries
from shared.services.deps import Deps

PLATFORM = "azure-devops"
NOT_YET = ("Slipway cannot download Azure DevOps build artifacts yet: register the build from the pipeline "
           "(POST /api/artifacts or the slipway CLI) with its package")


def receive(deps: Deps, delivery: str, payload: Any) -> tuple[int, dict[str, Any]]:
    earlier = deliveries.first_answer(deps, PLATFORM, delivery)
    if earlier is not None:
        return int(earlier["status"]), earlier["answer"]
    meaning = read(payload)
    entry: dict[str, Any] = {"id": delivery, "event": str(payload.get("eventType"))[:50],
                             "at": deps.clock.now().isoformat()}
    if isinstance(meaning, NotABuild):
        answer = {"delivery": delivery, "source": meaning.source, "reason": meaning.reason}
        return deliveries.finish(deps, PLATFORM, meaning.source, entry, meaning.status, answer)
    parse(BuildIn, {k: v for k, v in {"version": meaning.version, "buildId": meaning.build_id,
                                      "branch": meaning.branch, "commit": meaning.commit}.items() if v is not None})
    sources, reason = consumers.sources(deps, (meaning.source,), meaning.branch)
    answer = {"delivery": delivery, "source": meaning.source, "version": meaning.version,
              "reason": reason or f"{NOT_YET} ({', '.join(sources)} would release {meaning.version})"}
    return deliveries.finish(deps, PLATFORM, meaning.source, {**entry, "version": meaning.version}, 202, answer)

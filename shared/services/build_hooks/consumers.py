"""Which definitions a hook's build would release: the sources they spell, or why none would."""

from __future__ import annotations

from shared.domain.release import Release
from shared.schemas.release import ArtifactWebhookIn, BuildIn
from shared.services import releases
from shared.services.definitions import current_body
from shared.services.deps import Deps


def sources(deps: Deps, candidates: tuple[str, ...], branch: str | None) -> tuple[list[str], str]:
    """The definition sources (as definitions spell them; `candidates` match case-insensitively) whose artifact has
    an enabled trigger taking `branch`, or ([], the reason none does). Nothing is downloaded for a build no
    definition would release."""
    wanted = {s.casefold() for s in candidates}
    named, filtered, cursor = False, False, None
    chosen: list[str] = []
    while True:
        rows, cursor = deps.store.definitions_page(cursor=cursor, limit=1000)
        for row in rows:
            for art in current_body(deps, int(row["id"]))[1].get("artifacts", []):
                if str(art.get("source", "")).casefold() not in wanted:
                    continue
                named = True
                trigger = art.get("trigger")
                if not trigger or not trigger.get("enabled", True):
                    continue
                if not releases.branch_matches(branch, trigger.get("branches", {})):
                    filtered = True
                    continue
                if art["source"] not in chosen:
                    chosen.append(art["source"])
        if not cursor:
            break
    if chosen:
        return chosen, ""
    names = " or ".join(candidates)
    if filtered:
        return [], f"branch '{branch}' is filtered out by every trigger on {names}"
    if named:
        return [], f"no definition using {names} has a continuous-deployment trigger"
    return [], f"no definition has an artifact with source {names}"


def release(deps: Deps, sources: list[str], build: BuildIn, *, by: str) -> list[Release]:
    """What `POST /api/artifacts` does, once per source: register the build (downloading its `packageUrl`), then
    release it where continuous deployment asks. The hook's source is not a Token: it is built by the hook."""
    created: list[Release] = []
    for source in sources:
        hook = ArtifactWebhookIn.model_construct(source=source, **build.model_dump(exclude_none=True))
        created += releases.from_build(deps, hook, by=by)
    return created

"""A verified Azure Container Registry push registers the image's digest as a version of `acr:{registry}/{repository}`
and releases it where continuous deployment asks; nothing is downloaded (the slot pulls the image)."""

from __future__ import annotations

from typing import Any

from shared.domain.build_hooks.acr import Image, read
from shared.domain.build_hooks.github import NotABuild
from shared.domain.errors import Conflict, Invalid
from shared.schemas.release import BuildIn, parse
from shared.services.build_hooks import consumers, deliveries
from shared.services.deps import Deps
from shared.services.views import release_summary

PLATFORM = "acr"
BY = "Azure Container Registry webhook"


def receive(deps: Deps, delivery: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) for an authenticated delivery; the same event id again gets the first answer."""
    earlier = deliveries.first_answer(deps, PLATFORM, delivery)
    if earlier is not None:
        return int(earlier["status"]), earlier["answer"]
    meaning = read(payload)
    entry: dict[str, Any] = {"id": delivery, "event": "acr", "at": deps.clock.now().isoformat(),
                             "action": str(payload.get("action"))[:50]}
    if isinstance(meaning, NotABuild):
        answer = {"delivery": delivery, "source": meaning.source, "reason": meaning.reason}
        return deliveries.finish(deps, PLATFORM, meaning.source, entry, meaning.status, answer)
    try:
        status, answer = _release(deps, delivery, meaning)
    except (Conflict, Invalid) as exc:
        deliveries.note(deps, meaning.source, {**entry, "version": meaning.version,
                                               "status": 409 if isinstance(exc, Conflict) else 400,
                                               "reason": str(exc)[:500]})
        raise
    return deliveries.finish(deps, PLATFORM, meaning.source, {**entry, "version": meaning.version}, status, answer)


def _release(deps: Deps, delivery: str, image: Image) -> tuple[int, dict[str, Any]]:
    base = {"delivery": delivery, "source": image.source, "version": image.version, "image": image.image}
    build = parse(BuildIn, {"version": image.version, "sha256": image.version,
                            **({"buildId": image.tag} if image.tag else {})})
    sources, reason = consumers.sources(deps, (image.source,), None)
    if not sources:
        return 202, {**base, "reason": reason}
    created = consumers.release(deps, sources, build, by=BY)
    return (201 if created else 200), {**base, "registered": sources,
                                       "releases": [release_summary(r) for r in created]}

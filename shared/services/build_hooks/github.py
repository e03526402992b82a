"""A verified GitHub delivery becomes what `POST /api/artifacts` does: the build's package downloaded, digested and
registered under each source a definition consumes, then released where continuous deployment asks (a container
image published to GitHub's Container registry is registered by its digest, with nothing to download).

Only what would release is downloaded: a source counts when a definition's artifact names it (case-insensitive)
with an enabled trigger whose branch filters take the build's branch. Anything else is answered 202 with the
reason, and every delivery (with its outcome) is listed under `github:{owner}/{repo}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared.domain.build_hooks.github import Build, ContainerImage, NotABuild, ReleaseAsset, read
from shared.domain.errors import Conflict, Invalid
from shared.ports import TargetError
from shared.schemas.release import BuildIn, parse
from shared.services.build_hooks import consumers, deliveries
from shared.services.deps import Deps
from shared.services.views import release_summary

PLATFORM = "github"
BY = "GitHub webhook"


class DownloadLinks(Protocol):
    """Where GitHub lets the build's package be downloaded (pre-signed, short-lived links)."""

    def run_artifact_link(self, repo: str, run_id: int, token: str) -> tuple[str, str] | None: ...

    def asset_link(self, repo: str, asset_id: int, token: str) -> str: ...


class DownloadFailed(Exception):
    """GitHub did not hand out the package (HTTP 502): not settled, so a redelivery tries again."""


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: Any


def receive(deps: Deps, links: DownloadLinks, token: str, delivery: Delivery) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) for a delivery whose signature was verified; the same delivery id again gets the
    first answer."""
    earlier = deliveries.first_answer(deps, PLATFORM, delivery.id)
    if earlier is not None:
        return int(earlier["status"]), earlier["answer"]
    meaning = read(delivery.event, delivery.payload)
    entry: dict[str, Any] = {"id": delivery.id, "event": delivery.event, "at": deps.clock.now().isoformat()}
    action = delivery.payload.get("action") if isinstance(delivery.payload, dict) else None
    if isinstance(action, str):
        entry["action"] = action[:50]
    if isinstance(meaning, NotABuild):
        status, answer = meaning.status, {"delivery": delivery.id, "source": meaning.source, "reason": meaning.reason}
        return deliveries.finish(deps, PLATFORM, meaning.source, entry, status, answer)
    try:
        status, answer = _release(deps, links, token, delivery, meaning)
    except DownloadFailed as exc:
        deliveries.note(deps, meaning.source, {**entry, "version": meaning.version, "status": 502, "reason": str(exc)})
        raise
    except (Conflict, Invalid) as exc:
        deliveries.note(deps, meaning.source, {**entry, "version": meaning.version, "status": 409 if isinstance(
            exc, Conflict) else 400, "reason": str(exc)[:500]})
        raise
    return deliveries.finish(deps, PLATFORM, meaning.source, {**entry, "version": meaning.version}, status, answer)


def _release(deps: Deps, links: DownloadLinks, token: str, delivery: Delivery, build: Build
             ) -> tuple[int, dict[str, Any]]:
    base: dict[str, Any] = {"delivery": delivery.id, "source": build.source, "version": build.version}
    fields = {"version": build.version, "buildId": build.build_id, "branch": build.branch, "commit": build.commit}
    image = isinstance(build.fetch, ContainerImage)
    if isinstance(build.fetch, ContainerImage):  # nothing to download: the digest is the version and its sha256
        fields["sha256"] = build.version
        base["image"] = build.fetch.image
    parse(BuildIn, {k: v for k, v in fields.items() if v is not None})  # a 400 naming the field, before any work
    sources, reason = consumers.sources(deps, build.sources, build.branch)
    if not sources:
        return 202, {**base, "reason": reason}
    url = None
    if not image and any(deps.store.artifact(s, build.version) is None for s in sources):
        url, reason = _link(links, token, build)
        if url is None:
            return 202, {**base, "reason": reason}
    build_in = parse(BuildIn, {**{k: v for k, v in fields.items() if v is not None},
                               **({"packageUrl": url} if url else {})})
    try:
        created = consumers.release(deps, sources, build_in, by=BY)
    except Invalid as exc:
        if any(e.field.endswith("packageUrl") for e in exc.errors):
            raise DownloadFailed(f"the package's download failed: {exc}"[:500]) from None
        raise
    answer = {**base, "registered": sources, "releases": [release_summary(r) for r in created]}
    return (201 if created else 200), answer


def _link(links: DownloadLinks, token: str, build: Build) -> tuple[str | None, str]:
    assert not isinstance(build.fetch, ContainerImage)
    if not token:
        raise DownloadFailed("SLIPWAY_GITHUB_TOKEN is not set: Slipway cannot download the build's package")
    try:
        if isinstance(build.fetch, ReleaseAsset):
            return links.asset_link(build.fetch.repo, build.fetch.asset_id, token), ""
        found = links.run_artifact_link(build.fetch.repo, build.fetch.run_id, token)
    except TargetError as exc:
        raise DownloadFailed(str(exc)[:500]) from None
    if found is None:
        return None, (f"workflow run {build.build_id} has no artifact to release: it must upload one, or one "
                      "named 'package' among several (unexpired)")
    return found[1], ""

"""A verified Azure DevOps delivery (`build.complete`, or a YAML pipeline's run completed) becomes what
`POST /api/artifacts` does: the build's package downloaded, digested and registered, then released where
continuous deployment asks.

The delivery only says which build to look at. With `SLIPWAY_AZURE_DEVOPS_HOOK_ORGANIZATION` set, the build is read
back from that organization (Builds - Get) as Slipway's managed identity, and everything released comes from the
API's answer (its pipeline, project, number, result, branch and commit), so a delivery cannot make Slipway release
a build that did not succeed. The package is the build's artifact (the only one, or the one named `package` or
`drop`), and inside it the zip the App Service task would deploy (the only `.zip`, or `package.zip`); an artifact
without a zip is itself the site's files (its top folder dropped). Anything else is answered 202 with the reason, and
every delivery is listed under the source it names.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zipfile
from typing import IO, Any

from shared.domain.build_hooks.azure_devops import AdoBuild, choose_artifact, from_api, inner_package, read
from shared.domain.build_hooks.github import NotABuild
from shared.domain.errors import Conflict, Invalid
from shared.ports import TargetError
from shared.schemas.release import BuildIn, parse
from shared.services.build_hooks import consumers, deliveries
from shared.services.deps import Deps
from shared.services.views import release_summary

PLATFORM = "azure-devops"
BY = "Azure DevOps service hook"
MAX_ARTIFACT = 2 * 1024**3
"""App Service's zip deployment takes up to 2 GB; a larger artifact cannot be deployed anyway."""
NO_ORGANIZATION = ("SLIPWAY_AZURE_DEVOPS_HOOK_ORGANIZATION is not set: Slipway cannot read the build back from Azure "
                   "DevOps, so it releases nothing from this delivery")


class DownloadFailed(Exception):
    """Azure DevOps did not hand out the build or its package (HTTP 502): not settled, so a redelivery (or
    "Resend" on the subscription's history) tries again."""


def receive(deps: Deps, delivery: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) for an authenticated delivery; the same event id again gets the first answer."""
    earlier = deliveries.first_answer(deps, PLATFORM, delivery)
    if earlier is not None:
        return int(earlier["status"]), earlier["answer"]
    claim = read(payload)
    entry: dict[str, Any] = {"id": delivery, "event": str(payload.get("eventType"))[:50],
                             "at": deps.clock.now().isoformat()}
    if isinstance(claim, NotABuild):
        answer = {"delivery": delivery, "source": claim.source, "reason": claim.reason}
        return deliveries.finish(deps, PLATFORM, claim.source, entry, claim.status, answer)
    organization = deps.settings.azure_devops_hook_organization
    if not organization:
        sources, reason = consumers.sources(deps, (claim.source,), claim.branch)
        answer = {"delivery": delivery, "source": claim.source, "version": claim.version,
                  "reason": NO_ORGANIZATION if sources else reason}
        return deliveries.finish(deps, PLATFORM, claim.source, {**entry, "version": claim.version}, 202, answer)
    source = claim.source
    try:
        build = _read_back(deps, organization, claim)
        if isinstance(build, NotABuild):
            source = build.source or claim.source
            answer = {"delivery": delivery, "source": source, "reason": build.reason}
            return deliveries.finish(deps, PLATFORM, source, entry, 202, answer)
        source = build.source
        status, answer = _release(deps, organization, delivery, build)
    except DownloadFailed as exc:
        deliveries.note(deps, source, {**entry, "version": claim.version, "status": 502, "reason": str(exc)})
        raise
    except (Conflict, Invalid) as exc:
        deliveries.note(deps, source, {**entry, "version": claim.version,
                                       "status": 409 if isinstance(exc, Conflict) else 400,
                                       "reason": str(exc)[:500]})
        raise
    return deliveries.finish(deps, PLATFORM, build.source, {**entry, "version": build.version}, status, answer)


def _read_back(deps: Deps, organization: str, claim: AdoBuild) -> AdoBuild | NotABuild:
    try:
        found = deps.azure_pipelines.build(organization, claim.project, claim.build_id)
    except TargetError as exc:
        raise DownloadFailed(str(exc)[:500]) from None
    return from_api(found)


def _release(deps: Deps, organization: str, delivery: str, build: AdoBuild) -> tuple[int, dict[str, Any]]:
    base = {"delivery": delivery, "source": build.source, "version": build.version}
    fields = {"version": build.version, "buildId": str(build.build_id), "branch": build.branch,
              "commit": build.commit}
    parse(BuildIn, {k: v for k, v in fields.items() if v is not None})  # a 400 naming the field, before any work
    sources, reason = consumers.sources(deps, (build.source,), build.branch)
    if not sources:
        return 202, {**base, "reason": reason}
    upload = None
    if any(deps.store.artifact(s, build.version) is None for s in sources):
        upload, reason = _fetch(deps, organization, build)
        if upload is None:
            return 202, {**base, "reason": reason}
    build_in = parse(BuildIn, {**{k: v for k, v in fields.items() if v is not None},
                               **({"package": upload} if upload else {})})
    created = consumers.release(deps, sources, build_in, by=BY)
    return (201 if created else 200), {**base, "registered": sources,
                                       "releases": [release_summary(r) for r in created]}


def _fetch(deps: Deps, organization: str, build: AdoBuild) -> tuple[str | None, str]:
    """The build's package put in the upload container (its blob name), or (None, why there is none)."""
    try:
        listed = deps.azure_pipelines.artifacts(organization, build.project, build.build_id)
    except TargetError as exc:
        raise DownloadFailed(str(exc)[:500]) from None
    chosen = choose_artifact(listed)
    if chosen is None:
        what = "no artifact" if not listed else f"{len(listed)} artifacts and none is named package or drop"
        return None, f"build {build.version} has {what}: it must publish one, or one named 'package' or 'drop'"
    name = str(chosen["name"])
    with tempfile.TemporaryDirectory(prefix="slipway-ado-") as work:
        outer = os.path.join(work, "artifact.zip")
        try:
            with open(outer, "wb") as out:
                deps.azure_pipelines.download_artifact(organization, build.project, build.build_id, name, out,
                                                       MAX_ARTIFACT)
        except TargetError as exc:
            raise DownloadFailed(str(exc)[:500]) from None
        package = os.path.join(work, "package.zip")
        problem = _unwrap(outer, package)
        if problem:
            return None, f"artifact '{name}' of build {build.version}: {problem}"
        blob = f"azure-devops/{build.build_id}/{uuid.uuid4().hex}.zip"
        deps.packages.upload(blob, package)
    return blob, ""


def _unwrap(outer: str, package: str) -> str:
    """Write the package inside the artifact's zip to `package`; the problem, if there is none to write."""
    try:
        with zipfile.ZipFile(outer) as artifact:
            names = [i.filename for i in artifact.infolist() if not i.is_dir()]
            inner = inner_package(names)
            if inner is None and sum(n.lower().endswith(".zip") for n in names) > 1:
                return "it holds several zips and none is named package.zip"
            if inner is not None:
                with artifact.open(inner) as source, open(package, "wb") as out:
                    _copy(source, out, [MAX_ARTIFACT])
                return ""
            if not names:
                return "it is empty"
            top = {n.split("/", 1)[0] for n in names}
            strip = len(top) == 1 and all("/" in n for n in names)
            budget = [MAX_ARTIFACT]
            with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as out_zip:
                for info in artifact.infolist():
                    if info.is_dir():
                        continue
                    inside = info.filename.split("/", 1)[1] if strip else info.filename
                    with artifact.open(info) as source, out_zip.open(zipfile.ZipInfo(inside, info.date_time),
                                                                      "w") as target:
                        _copy(source, target, budget)
            return ""
    except zipfile.BadZipFile:
        return "Azure DevOps did not answer a zip"
    except _TooLarge:
        return f"its package unpacks to more than {MAX_ARTIFACT} bytes"


class _TooLarge(Exception):
    pass


def _copy(source: IO[bytes], target: IO[bytes], budget: list[int]) -> None:
    """Copy in chunks, spending `budget` (bytes left across copies): a zip that inflates beyond it stops."""
    while chunk := source.read(1024 * 1024):
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _TooLarge()
        target.write(chunk)

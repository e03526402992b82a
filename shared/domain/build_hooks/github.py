"""A GitHub webhook delivery read as a build: which sources it feeds, its version, and what to download.

Payload shapes: docs.github.com/webhooks/webhook-events-and-payloads (`workflow_run`, `release`, `package`,
`registry_package`, `ping`), checked against every example of the `@octokit/webhooks-examples` package.

Sources: a delivery feeds the definition artifacts whose `source` is `github:{owner}/{repo}` (any workflow of
the repository, and published releases) or `github:{owner}/{repo}/{workflow file}` (only that workflow's runs,
e.g. `github:contoso/tailspin/build.yml`); GitHub names are case-insensitive, so the match is too. A container
image published to GitHub's Container registry feeds `ghcr:{owner}/{image}` (lower case), versioned by its digest
as an Azure Container Registry push is (build_hooks/acr.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import FieldError, Invalid

PREFIX = "github:"
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
"""What an artifact version may be (shared/schemas/release.py `Version`)."""
SHA = re.compile(r"^[0-9a-fA-F]{40}$")
GHCR = "ghcr.io"
GHCR_PREFIX = "ghcr:"
CONTAINER_KINDS = {"container", "docker"}
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
IMAGE_PATH = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$")
"""`{owner}/{name}` by the OCI distribution spec's repository grammar."""
PACKAGE_NAME = "package"
"""With several artifacts on a run (or assets on a release), the one with this name (or `package.zip`)."""


@dataclass(frozen=True)
class RunArtifact:
    """The artifact a workflow run uploaded (GitHub REST "List workflow run artifacts", then "Download an
    artifact")."""

    repo: str
    run_id: int


@dataclass(frozen=True)
class ReleaseAsset:
    """One asset of a release, chosen here (GitHub REST "Get a release asset" with `application/octet-stream`)."""

    repo: str
    asset_id: int
    name: str


@dataclass(frozen=True)
class ContainerImage:
    """An image pushed to GitHub's Container registry: nothing to download (the slot pulls it)."""

    image: str
    """`ghcr.io/{owner}/{name}@sha256:{digest}`."""


@dataclass(frozen=True)
class Build:
    source: str
    """`github:{owner}/{repo}`: the delivery list it is recorded in."""
    sources: tuple[str, ...]
    """The definition sources it feeds, most specific first."""
    version: str
    build_id: str
    branch: str | None
    commit: str | None
    fetch: RunArtifact | ReleaseAsset | ContainerImage


@dataclass(frozen=True)
class NotABuild:
    """A delivery that creates nothing, and why; `status` 200 for a ping (all is well), 202 otherwise."""

    source: str | None
    reason: str
    status: int = 202


def read(event: str, payload: Any) -> Build | NotABuild:
    """What the `X-GitHub-Event` `event` with this body means; a body without the fields its event must have
    is a 400 naming them."""
    if not isinstance(payload, dict):
        raise Invalid([FieldError("body", "a JSON object is expected")])
    if event == "ping":
        repo = payload.get("repository")
        name = repo.get("full_name") if isinstance(repo, dict) else None
        return NotABuild(source_of(name) if isinstance(name, str) and "/" in name else None,
                         "ping: the webhook reaches Slipway", 200)
    full_name = _text(payload, "repository", "full_name")
    if "/" not in full_name:
        raise Invalid([FieldError("repository.full_name", "must be owner/name")])
    source = source_of(full_name)
    action = payload.get("action")
    if event == "workflow_run":
        return _workflow_run(source, full_name, action, payload)
    if event == "release":
        return _release(source, full_name, action, payload)
    if event in ("package", "registry_package"):
        return _package(source, event, action, payload)
    return NotABuild(source, f"event '{event}' is not a build: Slipway reads workflow_run, release, "
                             "registry_package, package and ping")


def source_of(full_name: str) -> str:
    return f"{PREFIX}{full_name}"


def _workflow_run(source: str, repo: str, action: Any, payload: dict[str, Any]) -> Build | NotABuild:
    run = payload.get("workflow_run")
    if not isinstance(run, dict):
        raise Invalid([FieldError("workflow_run", "an object is required")])
    if action != "completed":
        return NotABuild(source, f"workflow_run {action}: only a completed run is a build")
    conclusion = run.get("conclusion")
    if conclusion != "success":
        return NotABuild(source, f"the workflow run concluded '{conclusion}', not 'success'")
    run_id, number = _int(run, "id"), _int(run, "run_number")
    attempt = run.get("run_attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise Invalid([FieldError("workflow_run.run_attempt", "must be a positive integer")])
    sha = _text(payload, "workflow_run", "head_sha")
    if not SHA.match(sha):
        raise Invalid([FieldError("workflow_run.head_sha", "must be a 40-character commit SHA")])
    branch = run.get("head_branch")
    if branch is not None and not isinstance(branch, str):
        raise Invalid([FieldError("workflow_run.head_branch", "must be a string or null")])
    path = run.get("path")
    workflow = path.rsplit("/", 1)[-1] if isinstance(path, str) and path.strip("/") else None
    sources = ((f"{source}/{workflow}",) if workflow else ()) + (source,)
    # The run number counts runs of one workflow; the attempt tells re-runs apart (they upload anew); the
    # commit makes the version readable against the repository.
    return Build(source, sources, f"{number}.{attempt}+{sha[:7].lower()}", str(run_id), branch or None,
                 sha.lower(), RunArtifact(repo, run_id))


def _release(source: str, repo: str, action: Any, payload: dict[str, Any]) -> Build | NotABuild:
    release = payload.get("release")
    if not isinstance(release, dict):
        raise Invalid([FieldError("release", "an object is required")])
    if action != "published":
        return NotABuild(source, f"release {action}: only a published release is a build")
    tag = _text(payload, "release", "tag_name")
    if not VERSION.match(tag):
        return NotABuild(source, f"the release's tag '{tag[:100]}' is not a version Slipway accepts "
                                 "(letters, digits, `.`, `_`, `+`, `-`; at most 100)")
    assets = release.get("assets")
    if not isinstance(assets, list):
        raise Invalid([FieldError("release.assets", "a list is required")])
    uploaded = [a for a in assets if isinstance(a, dict) and a.get("state", "uploaded") == "uploaded"
                and isinstance(a.get("id"), int) and isinstance(a.get("name"), str)]
    chosen = _choose(uploaded)
    if chosen is None:
        what = "has no uploaded asset" if not uploaded else \
            f"has {len(uploaded)} assets and none is named {PACKAGE_NAME}.zip"
        return NotABuild(source, f"release {tag} {what}")
    target = release.get("target_commitish")
    branch = target if isinstance(target, str) and target and not SHA.match(target) else None
    commit = target.lower() if isinstance(target, str) and SHA.match(target) else None
    return Build(source, (source,), tag, str(_int(release, "id", "release")), branch, commit,
                 ReleaseAsset(repo, chosen["id"], chosen["name"]))


def _package(source: str, event: str, action: Any, payload: dict[str, Any]) -> Build | NotABuild:
    """A container image published to GitHub's Container registry, pinned by its digest. GitHub's `package` and
    `registry_package` payloads name the kind in `package_type` (`CONTAINER`, or `docker` for the older Docker
    registry) and `registry.type`; the image's digest is `package_version.version` (or `container_metadata.tag
    .digest`), its name `package_version.package_url` (`ghcr.io/{owner}/{name}:{tag}`)."""
    if action != "published":
        return NotABuild(source, f"{event} {action}: only a published package is a build")
    package = payload.get(event)
    if not isinstance(package, dict):
        raise Invalid([FieldError(event, "an object is required")])
    registry = package.get("registry")
    kinds = {str(package.get("package_type") or "").lower(),
             str(registry.get("type") or "").lower() if isinstance(registry, dict) else ""}
    if not kinds & CONTAINER_KINDS:
        kind = package.get("package_type") or "package"
        return NotABuild(source, f"a published {kind} package cannot become a release: Slipway releases container "
                                 "images (by digest) and zip packages (a release asset or a workflow run's artifact)")
    version = package.get("package_version")
    if not isinstance(version, dict):
        raise Invalid([FieldError(f"{event}.package_version", "an object is required")])
    metadata = version.get("container_metadata")
    tag = metadata.get("tag") if isinstance(metadata, dict) else None
    digest = next((d[7:].lower() for d in (version.get("version"), tag.get("digest") if isinstance(tag, dict)
                                            else None) if isinstance(d, str) and IMAGE_DIGEST.match(d)), None)
    if digest is None:
        return NotABuild(source, "the published image has no sha256 digest in its package_version")
    image = _image_name(package, version)
    if image is None:
        raise Invalid([FieldError(f"{event}.package_version.package_url", "the image's name is required")])
    tag_name = tag.get("name") if isinstance(tag, dict) else None
    target, oid = version.get("target_commitish"), version.get("target_oid")
    return Build(source, (f"{GHCR_PREFIX}{image.removeprefix(GHCR + '/')}",), digest,
                 tag_name[:100] if isinstance(tag_name, str) and tag_name else str(_int(version, "id", event)),
                 target if isinstance(target, str) and target and not SHA.match(target) else None,
                 oid.lower() if isinstance(oid, str) and SHA.match(oid) else None,
                 ContainerImage(f"{image}@sha256:{digest}"))


def _image_name(package: dict[str, Any], version: dict[str, Any]) -> str | None:
    """`ghcr.io/{owner}/{name}` in lower case (OCI repository names are), from the version's `package_url`, or
    from the package's owner and name."""
    url = version.get("package_url")
    if isinstance(url, str) and url.lower().startswith(GHCR + "/"):
        name = url.rsplit("@", 1)[0]
        name = name[:name.rindex(":")] if ":" in name else name
        path = name.lower()[len(GHCR) + 1:]
    else:
        owner = package.get("owner")
        login = owner.get("login") if isinstance(owner, dict) else None
        if not isinstance(login, str) or not isinstance(package.get("name"), str):
            return None
        path = f"{login}/{package['name']}".lower()
    return f"{GHCR}/{path}" if IMAGE_PATH.match(path) else None


def _choose(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The only one, or the one named `package` / `package.zip`."""
    if len(items) == 1:
        return items[0]
    named = [i for i in items if str(i.get("name")).lower() in (PACKAGE_NAME, f"{PACKAGE_NAME}.zip")]
    return named[0] if len(named) == 1 else None


def choose_artifact(artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of a run's artifacts (GitHub's list), the one that is the package: unexpired, and the only one or the
    one named `package`."""
    live = [a for a in artifacts if isinstance(a, dict) and not a.get("expired") and isinstance(a.get("id"), int)]
    return _choose(live)


def _text(payload: dict[str, Any], outer: str, name: str) -> str:
    holder = payload.get(outer)
    value = holder.get(name) if isinstance(holder, dict) else None
    if not isinstance(value, str) or not value:
        raise Invalid([FieldError(f"{outer}.{name}", "a non-empty string is required")])
    return value


def _int(holder: dict[str, Any], name: str, outer: str = "workflow_run") -> int:
    value = holder.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid([FieldError(f"{outer}.{name}", "a non-negative integer is required")])
    return value

"""An Azure Container Registry webhook delivery read as a build: an image pushed, pinned by its digest.

Payload: learn.microsoft.com/azure/container-registry/container-registry-webhook-reference ("Push event":
`id`, `action`, `target.{digest, repository, tag, mediaType}`, `request.host`). The build feeds the artifacts whose
`source` is `acr:{registry host}/{repository}` (case-insensitive). Its version is the digest's hex, so that a
`deploy-container` step names the image as `{registry}/{repository}@sha256:{version}`; the artifact's sha256 is
the same digest (the step checks the image against it), and `buildId` is the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.build_hooks.github import NotABuild
from shared.domain.errors import FieldError, Invalid

PREFIX = "acr:"
DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?$")
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
"""The OCI distribution spec's repository name grammar (github.com/distribution/reference regexp.go)."""


@dataclass(frozen=True)
class Image:
    source: str
    version: str
    """The digest's 64 hex characters."""
    tag: str | None
    image: str
    """`{registry}/{repository}@sha256:{digest}`."""


def read(payload: Any) -> Image | NotABuild:
    """What the delivery means; a push without a digest, repository or registry host is a 400 naming it."""
    if not isinstance(payload, dict):
        raise Invalid([FieldError("body", "a JSON object is expected")])
    target, request = payload.get("target"), payload.get("request")
    repository = target.get("repository") if isinstance(target, dict) else None
    host = request.get("host") if isinstance(request, dict) else None
    source = f"{PREFIX}{host}/{repository}" if isinstance(host, str) and HOST.match(host) and isinstance(
        repository, str) and REPOSITORY.match(repository) else None
    action = payload.get("action")
    if action != "push":
        return NotABuild(source, f"action '{action}': only an image push is a build")
    if not isinstance(target, dict):
        raise Invalid([FieldError("target", "an object is required")])
    if not isinstance(repository, str) or not REPOSITORY.match(repository):
        raise Invalid([FieldError("target.repository", "a repository name is required")])
    if not isinstance(host, str) or not HOST.match(host):
        raise Invalid([FieldError("request.host", "the registry's host name is required")])
    digest = target.get("digest")
    found = DIGEST.match(digest) if isinstance(digest, str) else None
    if found is None:
        raise Invalid([FieldError("target.digest", "must be sha256:<64 lower-case hex>")])
    tag = target.get("tag")
    assert source is not None
    return Image(source, found[1], tag[:100] if isinstance(tag, str) and tag else None,
                 f"{host}/{repository}@sha256:{found[1]}")

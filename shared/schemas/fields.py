"""Constrained string types shared by the request schemas, and pydantic errors as field errors."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints, ValidationError

from shared import plugins
from shared.domain.errors import FieldError


def _printable(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with spaces")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise ValueError("must not contain control characters")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable)]
LongName = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_printable)]
MAX_TEXT_BYTES = 4000


def _bounded_bytes(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError(f"at most {MAX_TEXT_BYTES} bytes of UTF-8 (a character outside the BMP takes 4)")
    return value


Text = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_bounded_bytes)]
"""Free text (descriptions, comments, reasons): bounded in bytes, so that what a release keeps of it
stays small whatever the script (Table Storage counts UTF-16)."""


def clip(text: str, size: int = MAX_TEXT_BYTES) -> str:
    """At most `size` bytes of UTF-8, cut on a character boundary (form fields, which are not rejected)."""
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore")
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def _no_trailing_dot_or_space(value: str) -> str:
    if value.endswith((".", " ")):
        raise ValueError("must not end with a dot or a space")
    return value


_SOURCE_PART = r"[A-Za-z0-9][A-Za-z0-9 ._:()+-]*"
Source = Annotated[str, StringConstraints(pattern=rf"^{_SOURCE_PART}(/{_SOURCE_PART})*$", max_length=256),
                   AfterValidator(_no_trailing_dot_or_space)]
"""Where builds come from: a plain name, or a platform's (`github:owner/repo[/workflow.yml]`,
`azure-devops:Project/Pipeline name`, `acr:registry/repository`, `ghcr:owner/image`); it starts the package
blobs' names, so each `/` part starts with a letter or digit and nothing ends with a dot (blob naming rules)."""
"""Identifier-like names: artifact aliases and sources."""
Guid = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")]
ResourceGroup = Annotated[str, StringConstraints(pattern=r"^[-\w._()]{0,89}[-\w_()]$", max_length=90)]
SiteName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$")]
SlotName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}[A-Za-z0-9])?$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as the dotted path a user reads (union tags left out)."""
    out, previous = "", None
    registry = plugins.current()
    tags = {*registry.steps.kinds, *registry.signals.kinds}
    for part in loc:
        tag = isinstance(previous, int) and part in tags  # a union's tag after its index
        previous = part
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-after", "tagged-union")) or tag:
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "type")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "union_tag_invalid":
            broken = plugins.current().failure(str(err["ctx"].get("tag")))
            message = (f"type '{broken.name}' comes from a plugin that failed to load ({broken.value}): {broken.reason}"
                       if broken else f"unknown type; expected one of {err['ctx']['expected_tags']}")
        errors.append(FieldError(field_path(loc), message))
    return errors

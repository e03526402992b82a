"""Errors the domain reports: a field error names what is wrong and where (for RFC 7807 answers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    """Dotted path into the request body, e.g. `stages[2].trigger.stages[0]`."""
    message: str


class Conflict(Exception):
    """The command does not fit the current state (HTTP 409): a stage already running, a
    terminal release, an artifact version registered with another digest."""


class NotFound(Exception):
    """The thing named does not exist (HTTP 404)."""


class Invalid(Exception):
    """Input broke a rule; carries every field error found (HTTP 400)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class PreconditionFailed(Exception):
    """If-Match named another version than the current one (HTTP 412)."""


class PreconditionRequired(Exception):
    """A change that must name the version it was made on came without If-Match (HTTP 428)."""


class Unprocessable(Exception):
    """Well-formed, but it contradicts what was sent before (HTTP 422): an Idempotency-Key reused
    with another body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.errors = [FieldError(field, message)]

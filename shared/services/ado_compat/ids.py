"""Integer ids for what Slipway names by (release, stage, attempt, side, entry): Azure DevOps' clients
type every id as an integer (`int` in the Python and .NET models), while Slipway names stages by name
and deployments by attempt. An id is a number built from those parts, so it decodes back without any
storage lookup; the stage is its index in the release's definition snapshot (fixed for the release),
so only turning that index into a name reads the release.

Each kind packs its parts, least significant first (bits):

| kind                   | parts below the release          | bits S | attempt |
|------------------------|----------------------------------|--------|---------|
| environment            | stage 6                          | 6      | no      |
| definition environment | stage 6 (the definition's)       | 6      | no      |
| deployment             | stage 6                          | 6      | yes     |
| gate step              | side 1, stage 6                  | 7      | yes     |
| approval               | approver entry 6, side 1, stage 6| 13     | yes     |
| manual intervention    | step 6, stage 6                  | 12     | yes     |

Two tiers keep the common ids below 2^31 (the .NET client's Int32):
- compact, 1 ≤ id < 2^31: `release << S | parts`, for a first attempt of a release below 2^(31-S)
  (environments: releases below 33,554,432; approvals: below 262,144);
- wide, 2^31 ≤ id < 2^53 (still exact in JavaScript): `2^31 + ((release << 10 | attempt-1) << S | parts)`
  for everything else: attempts 1 to 1024, releases up to 2^31 (approvals: up to about 2^30, where
  the 53 bits run out).
Each thing has exactly one id: a wide id that would fit the compact tier is not one this scheme
issues, and decoding refuses it. Stage, side, entry and step indexes stay within their bits
(a definition has at most 50 stages, a stage at most 50 steps and 50 approvers).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPACT_END = 2**31
WIDE_END = 2**53
ATTEMPT_BITS = 10
MAX_ATTEMPT = 2**ATTEMPT_BITS
MAX_RELEASE = 2**31 - 1
INDEX_BITS = 6
PRE, POST = 0, 1


class IdOutOfRange(ValueError):
    """A part does not fit its bits, or a number is not an id this scheme issues."""


@dataclass(frozen=True)
class Parts:
    """What an id names: `owner` is the release (the definition for a definition environment)."""

    owner: int
    stage: int
    attempt: int = 1
    side: int = PRE
    index: int = 0
    """The approver entry (approvals) or the step (manual interventions)."""


@dataclass(frozen=True)
class Kind:
    name: str
    fields: tuple[tuple[str, int], ...]
    """(part, bits), least significant first."""
    attempts: bool

    @property
    def bits(self) -> int:
        return sum(width for _, width in self.fields)


ENVIRONMENT = Kind("environment", (("stage", INDEX_BITS),), attempts=False)
DEFINITION_ENVIRONMENT = Kind("definition environment", (("stage", INDEX_BITS),), attempts=False)
DEPLOYMENT = Kind("deployment", (("stage", INDEX_BITS),), attempts=True)
GATE = Kind("gate step", (("side", 1), ("stage", INDEX_BITS)), attempts=True)
APPROVAL = Kind("approval", (("index", INDEX_BITS), ("side", 1), ("stage", INDEX_BITS)), attempts=True)
INTERVENTION = Kind("manual intervention", (("index", INDEX_BITS), ("stage", INDEX_BITS)), attempts=True)


def encode(kind: Kind, parts: Parts) -> int:
    if not 1 <= parts.owner <= MAX_RELEASE:
        raise IdOutOfRange(f"{kind.name}: owner {parts.owner} is not between 1 and {MAX_RELEASE}")
    if not 1 <= parts.attempt <= (MAX_ATTEMPT if kind.attempts else 1):
        raise IdOutOfRange(f"{kind.name}: attempt {parts.attempt} is out of range")
    low = 0
    for name, width in reversed(kind.fields):
        value: int = getattr(parts, name)
        if not 0 <= value < 2**width:
            raise IdOutOfRange(f"{kind.name}: {name} {value} does not fit {width} bits")
        low = low << width | value
    for name in ("side", "index"):
        if name not in dict(kind.fields) and getattr(parts, name) != 0:
            raise IdOutOfRange(f"{kind.name}: has no {name}")
    if parts.attempt == 1 and parts.owner < _compact_owners(kind):
        return parts.owner << kind.bits | low
    high = parts.owner << ATTEMPT_BITS | (parts.attempt - 1) if kind.attempts else parts.owner
    number = COMPACT_END + (high << kind.bits | low)
    if number >= WIDE_END:
        raise IdOutOfRange(f"{kind.name}: owner {parts.owner} with attempt {parts.attempt} needs more than 53 bits")
    return number


def decode(kind: Kind, number: int) -> Parts:
    if not 1 <= number < WIDE_END:
        raise IdOutOfRange(f"{number} is not a {kind.name} id")
    if number < COMPACT_END:
        owner, attempt, low = number >> kind.bits, 1, number & (2**kind.bits - 1)
        if owner == 0:
            raise IdOutOfRange(f"{number} is not a {kind.name} id")
    else:
        wide = number - COMPACT_END
        high, low = wide >> kind.bits, wide & (2**kind.bits - 1)
        owner, attempt = (high >> ATTEMPT_BITS, (high & (MAX_ATTEMPT - 1)) + 1) if kind.attempts else (high, 1)
        if not 1 <= owner <= MAX_RELEASE or (attempt == 1 and owner < _compact_owners(kind)):
            raise IdOutOfRange(f"{number} is not a {kind.name} id")
    values: dict[str, int] = {}
    for name, width in kind.fields:
        values[name], low = low & (2**width - 1), low >> width
    return Parts(owner, attempt=attempt, **values)


def _compact_owners(kind: Kind) -> int:
    return 1 << (31 - kind.bits)


# -- the ids the surface uses


def environment_id(release: int, stage: int) -> int:
    return encode(ENVIRONMENT, Parts(release, stage))


def definition_environment_id(definition: int, stage: int) -> int:
    return encode(DEFINITION_ENVIRONMENT, Parts(definition, stage))


def deployment_id(release: int, stage: int, attempt: int) -> int:
    return encode(DEPLOYMENT, Parts(release, stage, attempt))


def gate_id(release: int, stage: int, attempt: int, side: int) -> int:
    return encode(GATE, Parts(release, stage, attempt, side))


def approval_id(release: int, stage: int, attempt: int, side: int, entry: int) -> int:
    return encode(APPROVAL, Parts(release, stage, attempt, side, entry))


def intervention_id(release: int, stage: int, attempt: int, step: int) -> int:
    return encode(INTERVENTION, Parts(release, stage, attempt, index=step))

"""The integer ids of the Azure DevOps-compatible surface: every id decodes to what it was made from,
common ones stay below 2^31, and nothing outside the scheme is accepted."""

from __future__ import annotations

import pytest

from shared.services.ado_compat import ids
from shared.services.ado_compat.ids import APPROVAL, DEFINITION_ENVIRONMENT, DEPLOYMENT, ENVIRONMENT, GATE, INTERVENTION
from shared.services.ado_compat.ids import Parts as P

ROUND_TRIPS = [
    # kind, parts, below 2^31?
    (ENVIRONMENT, P(1, 0), True),
    (ENVIRONMENT, P(12345, 49), True),
    (ENVIRONMENT, P(2**25 - 1, 63), True),
    (ENVIRONMENT, P(2**25, 0), False),
    (ENVIRONMENT, P(2**31 - 1, 63), False),
    (DEFINITION_ENVIRONMENT, P(7, 3), True),
    (DEPLOYMENT, P(1, 0, 1), True),
    (DEPLOYMENT, P(1, 0, 2), False),
    (DEPLOYMENT, P(2**25 - 1, 5, 1), True),
    (DEPLOYMENT, P(2**25, 5, 1), False),
    (DEPLOYMENT, P(2**31 - 1, 63, 1024), False),
    (GATE, P(99, 2, 1, ids.POST), True),
    (GATE, P(99, 2, 3, ids.PRE), False),
    (GATE, P(2**24 - 1, 63, 1, ids.POST), True),
    (APPROVAL, P(1, 0, 1, ids.PRE, 0), True),
    (APPROVAL, P(2**18 - 1, 63, 1, ids.POST, 63), True),
    (APPROVAL, P(2**18, 0, 1, ids.PRE, 0), False),
    (APPROVAL, P(500_000, 49, 1024, ids.POST, 49), False),
    (INTERVENTION, P(42, 1, 1, index=5), True),
    (INTERVENTION, P(2**19, 1, 1, index=5), False),
    (INTERVENTION, P(42, 1, 9, index=49), False),
]


@pytest.mark.parametrize(("kind", "parts", "compact"), ROUND_TRIPS)
def test_an_id_decodes_to_what_it_was_made_from(kind: ids.Kind, parts: ids.Parts, compact: bool) -> None:
    number = ids.encode(kind, parts)
    assert ids.decode(kind, number) == parts
    assert (number < 2**31) is compact
    assert 1 <= number < 2**53


def test_ids_of_one_kind_never_collide() -> None:
    made = {ids.encode(APPROVAL, P(r, s, a, side, e)) for r in (1, 2, 2**18 - 1, 2**18, 2**20)
            for s in (0, 1, 49) for a in (1, 2, 1024) for side in (ids.PRE, ids.POST) for e in (0, 1, 49)}
    assert len(made) == 5 * 3 * 3 * 2 * 3


OUT_OF_RANGE = [
    (ENVIRONMENT, P(0, 0)),
    (ENVIRONMENT, P(2**31, 0)),
    (ENVIRONMENT, P(1, 64)),
    (ENVIRONMENT, P(1, -1)),
    (ENVIRONMENT, P(1, 0, 2)),  # environments have no attempts
    (ENVIRONMENT, P(1, 0, side=ids.POST)),  # nor sides
    (DEPLOYMENT, P(1, 0, 0)),
    (DEPLOYMENT, P(1, 0, 1025)),
    (DEPLOYMENT, P(1, 0, index=3)),
    (GATE, P(1, 0, 1, 2)),
    (APPROVAL, P(1, 0, 1, ids.PRE, 64)),
    (APPROVAL, P(2**31 - 1, 0, 1024, ids.POST, 0)),  # beyond 2^53
    (INTERVENTION, P(1, 0, 1, index=64)),
]


@pytest.mark.parametrize(("kind", "parts"), OUT_OF_RANGE)
def test_parts_that_do_not_fit_are_refused(kind: ids.Kind, parts: ids.Parts) -> None:
    with pytest.raises(ids.IdOutOfRange):
        ids.encode(kind, parts)


NOT_IDS = [
    (ENVIRONMENT, 0),
    (ENVIRONMENT, -64),
    (ENVIRONMENT, 63),  # release 0
    (DEPLOYMENT, 2**53),
    (APPROVAL, 2**31 + 5),  # the wide spelling of a compact id: release 0
    (DEPLOYMENT, 2**31 + (5 << 6)),  # release 0, attempt 6
    (DEPLOYMENT, 2**31 + ((7 << 10) << 6)),  # release 7, attempt 1: that id is 7 << 6
]


@pytest.mark.parametrize(("kind", "number"), NOT_IDS)
def test_numbers_the_scheme_never_issues_are_refused(kind: ids.Kind, number: int) -> None:
    with pytest.raises(ids.IdOutOfRange):
        ids.decode(kind, number)


def test_the_helpers_are_the_table() -> None:
    assert ids.environment_id(3, 1) == ids.encode(ENVIRONMENT, P(3, 1)) == 3 * 64 + 1
    assert ids.approval_id(3, 1, 2, ids.POST, 4) == ids.encode(APPROVAL, P(3, 1, 2, ids.POST, 4))
    assert ids.decode(INTERVENTION, ids.intervention_id(3, 1, 2, 7)) == P(3, 1, 2, index=7)
    assert ids.decode(GATE, ids.gate_id(3, 1, 1, ids.POST)) == P(3, 1, 1, ids.POST)
    assert ids.deployment_id(3, 1, 1) == ids.environment_id(3, 1)  # separate kinds may share numbers

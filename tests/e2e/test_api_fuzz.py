"""schemathesis against the running local stack: no 5xx, and every answer fits the API document.

Driven through schemathesis' Python API (its pytest plugin does not run on pytest 9 yet): every
operation of /api/openapi.json gets generated requests, each answer is checked; one test per operation
(listed from the same document the route serves), so a failure names it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.stack import LocalStack
from shared.openapi import document

pytestmark = pytest.mark.e2e
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(persistent=False, fixed_ports=False, max_polling_interval=0.1) as running:
        yield running


@pytest.fixture(scope="module")
def served(stack: LocalStack) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.api}/openapi.json")


OPERATIONS = [f"{r.ok().method.upper()} {r.ok().path}"
              for r in schemathesis.openapi.from_dict(document()).get_all_operations()]


def test_the_document_has_the_operations_the_api_serves() -> None:
    assert len(OPERATIONS) >= 18


@pytest.mark.parametrize("label", OPERATIONS)  # one test each: a slow machine's time is per operation
def test_the_api_answers_generated_requests_within_its_document(served: BaseSchema, stack: LocalStack,
                                                                 label: str) -> None:
    method, path = label.split(" ", 1)
    operation = served[path][method]
    calls: list[str] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=stack.api, checks=CHECKS)
        calls.append(case.operation.label)

    check()
    assert calls  # the operation was called

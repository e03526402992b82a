"""Fixtures shared by every test: one in-memory Azurite per test session."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.azurite import Azurite  # noqa: E402


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running Azurite; every test names its own tables, queues and containers."""
    with Azurite() as running:
        yield running


@pytest.fixture
def storage_connection(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def unique() -> str:
    """A short random suffix that is valid in table, queue and container names."""
    return uuid.uuid4().hex[:10]


SLOW_FIRST = ("test_load.py", "test_crash.py", "test_schedule_week.py", "test_gates.py", "test_slots.py",
              "test_clock.py", "test_browser.py")
"""Modules that take the longest (a simulated week runs on the wall clock): started first, so that
parallel workers (`make test` runs one per core) end together instead of waiting for them at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if "e2e" in item.path.parts and name in SLOW_FIRST:
            return SLOW_FIRST.index(name)
        return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
